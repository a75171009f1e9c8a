"""``python -m jobgate``: run the operator (also the console script ``jobgate``)."""

from __future__ import annotations

import asyncio
import logging
import sys

import kopf
from pythonjsonlogger.json import JsonFormatter

from jobgate import endpoints
from jobgate.config import ConfigError, Settings
from jobgate.handlers import build_registry
from jobgate.kube import connect
from jobgate.leader import LeaderElector


class _DropKopfInternals(logging.Filter):
    """kopf attaches its settings object to every record; keep only the object reference."""

    def filter(self, record: logging.LogRecord) -> bool:
        for attr in ("settings", "k8s_skip"):
            record.__dict__.pop(attr, None)
        return True


def configure_logging(level: str) -> None:
    """One JSON object per line on stderr, at the configured level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_DropKopfInternals())
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "asctime": "time"},
            json_default=str,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if root.level > logging.DEBUG:  # kopf logs every handled event at INFO: too chatty
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"jobgate: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if settings.standalone:
        kopf.run(
            registry=build_registry(settings),
            standalone=True,
            clusterwide=not settings.watch_namespaces,
            namespaces=settings.watch_namespaces,
        )
        return 0
    return asyncio.run(run_elected(settings))


async def run_elected(settings: Settings) -> int:
    """Stand by until this replica holds the Lease, then run the operator until it is lost.

    While standing by, the HTTP port answers liveness and readiness (it is ready to take
    over) but the concurrency status answers 503, and ``jobgate_leader`` is 0.
    """
    api = await connect()
    elector = LeaderElector(
        api,
        settings.namespace,
        lease_seconds=settings.lease_seconds,
        retry_seconds=settings.lease_retry_seconds,
        renew_deadline=settings.lease_renew_deadline,
    )
    standby = await endpoints.serve(
        endpoints.build_standby_app(), settings.http_host, settings.http_port
    )
    try:
        await elector.acquire()
    finally:
        await standby.cleanup()
    lost = asyncio.Event()
    holder = asyncio.create_task(elector.hold(on_lost=lost.set), name="lease")
    try:
        await kopf.operator(
            registry=build_registry(settings),
            standalone=True,
            clusterwide=not settings.watch_namespaces,
            namespaces=settings.watch_namespaces,
            stop_flag=lost,
        )
    finally:
        holder.cancel()
        if not lost.is_set():
            await elector.release()
        await api.close()
    return 1 if lost.is_set() else 0  # exit non-zero after losing: restart as a standby


if __name__ == "__main__":
    sys.exit(main())
