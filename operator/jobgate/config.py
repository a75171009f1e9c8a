"""Configuration, loaded in one place.

Two layers, in rising precedence after the built-in defaults: environment variables
(read once at start-up into :class:`Settings`) and the ConfigMap ``jobgate-config`` in the
operator's namespace (parsed by :func:`parse_configmap` into :class:`Overrides`, which may
change while the operator runs). Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

CONFIGMAP_NAME = "jobgate-config"
DEFAULT_MAX_CONCURRENT_JOBS = 10


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the setting and the fix."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Process-wide settings from the environment; fixed for the life of the process."""

    max_concurrent_jobs: int = DEFAULT_MAX_CONCURRENT_JOBS
    """``MAX_CONCURRENT_JOBS``: the slot limit unless the ConfigMap sets ``maxConcurrentJobs``."""

    namespace: str = "jobgate-system"
    """``JOBGATE_NAMESPACE``: where the ConfigMap ``jobgate-config`` lives."""

    watch_namespaces: tuple[str, ...] = ()
    """``JOBGATE_WATCH_NAMESPACES``: comma-separated; empty means every namespace."""

    http_host: str = "0.0.0.0"
    """``JOBGATE_HTTP_HOST``: address of the status/metrics server."""

    http_port: int = 8000
    """``JOBGATE_HTTP_PORT``: port of the status/metrics server."""

    default_timeout_seconds: float = 3600.0
    """``JOBGATE_DEFAULT_TIMEOUT_SECONDS``: a job's timeout when its spec sets none."""

    worker_processes: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    """``JOBGATE_WORKER_PROCESSES``: processes for CPU-bound algorithms (default: CPU count)."""

    status_writers: int = 32
    """``JOBGATE_STATUS_WRITERS``: status PATCH requests in flight at once."""

    webhook_timeout_seconds: float = 10.0
    """``JOBGATE_WEBHOOK_TIMEOUT_SECONDS``: time limit of one webhook request."""

    log_level: str = "INFO"
    """``JOBGATE_LOG_LEVEL``: DEBUG, INFO, WARNING or ERROR."""

    standalone: bool = True
    """``JOBGATE_STANDALONE``: ``false`` enables kopf peering (one active replica)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; raise :class:`ConfigError` naming the variable that is wrong."""
        env = os.environ if env is None else env
        base = cls()
        namespaces = env.get("JOBGATE_WATCH_NAMESPACES", "")
        return cls(
            max_concurrent_jobs=_int(env, "MAX_CONCURRENT_JOBS", base.max_concurrent_jobs),
            namespace=env.get("JOBGATE_NAMESPACE", base.namespace) or base.namespace,
            watch_namespaces=tuple(ns.strip() for ns in namespaces.split(",") if ns.strip()),
            http_host=env.get("JOBGATE_HTTP_HOST", base.http_host),
            http_port=_int(env, "JOBGATE_HTTP_PORT", base.http_port, maximum=65535),
            default_timeout_seconds=_float(
                env, "JOBGATE_DEFAULT_TIMEOUT_SECONDS", base.default_timeout_seconds
            ),
            worker_processes=_int(
                env, "JOBGATE_WORKER_PROCESSES", base.worker_processes, minimum=1
            ),
            status_writers=_int(env, "JOBGATE_STATUS_WRITERS", base.status_writers, minimum=1),
            webhook_timeout_seconds=_float(
                env, "JOBGATE_WEBHOOK_TIMEOUT_SECONDS", base.webhook_timeout_seconds
            ),
            log_level=env.get("JOBGATE_LOG_LEVEL", base.log_level).upper(),
            standalone=env.get("JOBGATE_STANDALONE", "true").lower() not in ("0", "false", "no"),
        )


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Settings from the ConfigMap; ``None`` means "not set there, keep the lower layer"."""

    max_concurrent_jobs: int | None = None
    default_timeout_seconds: float | None = None


def parse_configmap(data: Mapping[str, str] | None) -> tuple[Overrides, list[str]]:
    """Parse the ConfigMap's ``data``; bad values are skipped and reported, never fatal.

    Returns the usable overrides and one message per rejected key, so that the caller can
    keep the previous value and tell the user (log line, Event) what to fix.
    """
    data = data or {}
    problems: list[str] = []
    limit: int | None = None
    timeout: float | None = None
    if "maxConcurrentJobs" in data:
        try:
            limit = _parse_int("maxConcurrentJobs", data["maxConcurrentJobs"], minimum=0)
        except ConfigError as exc:
            problems.append(f"ConfigMap {CONFIGMAP_NAME}: {exc}")
    if "defaultTimeoutSeconds" in data:
        try:
            timeout = _parse_float("defaultTimeoutSeconds", data["defaultTimeoutSeconds"])
        except ConfigError as exc:
            problems.append(f"ConfigMap {CONFIGMAP_NAME}: {exc}")
    return Overrides(max_concurrent_jobs=limit, default_timeout_seconds=timeout), problems


def _parse_int(name: str, raw: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    text = str(raw).strip()
    if not text.isdigit():
        raise ConfigError(
            f"{name}={raw!r} is not a non-negative integer; set it to a whole number "
            f"such as 10 (the previous value stays in force)"
        )
    value = int(text)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{name}={raw!r} is out of range; it must be {bound}")
    return value


def _parse_float(name: str, raw: str) -> float:
    try:
        value = float(str(raw).strip())
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name}={raw!r} is not a positive number of seconds, e.g. 600")
    return value


def _int(
    env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return _parse_int(name, raw, minimum=minimum, maximum=maximum)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return _parse_float(name, raw)
