"""``python -m jobgate``: run the operator (also the console script ``jobgate``)."""

from __future__ import annotations

import logging
import sys

import kopf
from pythonjsonlogger.json import JsonFormatter

from jobgate.config import ConfigError, Settings
from jobgate.handlers import build_registry


def configure_logging(level: str) -> None:
    """One JSON object per line on stderr, at the configured level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "asctime": "time"},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


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
