"""``python -m jobgate``: run the operator (also the console script ``jobgate``)."""

from __future__ import annotations

import logging
import sys

import kopf
from pythonjsonlogger.json import JsonFormatter

from jobgate.config import ConfigError, Settings
from jobgate.handlers import build_registry


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
    kopf.run(
        registry=build_registry(settings),
        standalone=settings.standalone,
        clusterwide=not settings.watch_namespaces,
        namespaces=settings.watch_namespaces,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
