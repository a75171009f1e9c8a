"""Configuration, loaded in one place.

Two layers, in rising precedence after the built-in defaults: environment variables
(read once at start-up into :class:`Settings`) and the ConfigMap ``jobgate-config`` in the
operator's namespace (parsed by :func:`parse_configmap` into a :class:`Policy`, which may
change while the operator runs). Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from typing import Any

import yaml

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

    webhook_max_attempts: int = 8
    """``JOBGATE_WEBHOOK_MAX_ATTEMPTS``: deliveries tried before giving up."""

    webhook_backoff_base_seconds: float = 1.0
    """``JOBGATE_WEBHOOK_BACKOFF_BASE_SECONDS``: first retry delay bound; doubles per try."""

    webhook_backoff_max_seconds: float = 300.0
    """``JOBGATE_WEBHOOK_BACKOFF_MAX_SECONDS``: longest retry delay (and Retry-After cap)."""

    webhook_allow_cidrs: tuple[str, ...] = ()
    """``JOBGATE_WEBHOOK_ALLOW_CIDRS``: comma-separated networks opened despite the SSRF
    guard (which refuses link-local and cloud-metadata addresses)."""

    queue_status_interval: float = 1.0
    """``JOBGATE_QUEUE_STATUS_INTERVAL``: seconds between queue-status reports."""

    queue_exact_positions: int = 20
    """``JOBGATE_QUEUE_EXACT_POSITIONS``: head of the queue whose positions stay exact."""

    queue_refresh_seconds: float = 60.0
    """``JOBGATE_QUEUE_REFRESH_SECONDS``: age after which a tail position is refreshed."""

    queue_refresh_writes: int = 20
    """``JOBGATE_QUEUE_REFRESH_WRITES``: tail refreshes per report, at most."""

    events: str = "all"
    """``JOBGATE_EVENTS``: Kubernetes Events to post: ``all``, ``warnings`` or ``none``."""

    log_level: str = "INFO"
    """``JOBGATE_LOG_LEVEL``: DEBUG, INFO, WARNING or ERROR."""

    standalone: bool = True
    """``JOBGATE_STANDALONE``: ``false`` runs with leader election on a Lease (for replicas)."""

    lease_seconds: float = 15.0
    """``JOBGATE_LEASE_SECONDS``: how long a silent leader's Lease stays valid."""

    lease_retry_seconds: float = 2.0
    """``JOBGATE_LEASE_RETRY_SECONDS``: how often the Lease is renewed or tried."""

    lease_renew_deadline: float = 10.0
    """``JOBGATE_LEASE_RENEW_DEADLINE``: a leader that cannot renew this long steps down."""

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
            queue_status_interval=_float(
                env, "JOBGATE_QUEUE_STATUS_INTERVAL", base.queue_status_interval
            ),
            queue_exact_positions=_int(
                env, "JOBGATE_QUEUE_EXACT_POSITIONS", base.queue_exact_positions
            ),
            queue_refresh_seconds=_float(
                env, "JOBGATE_QUEUE_REFRESH_SECONDS", base.queue_refresh_seconds
            ),
            queue_refresh_writes=_int(
                env, "JOBGATE_QUEUE_REFRESH_WRITES", base.queue_refresh_writes
            ),
            webhook_max_attempts=_int(
                env, "JOBGATE_WEBHOOK_MAX_ATTEMPTS", base.webhook_max_attempts, minimum=1
            ),
            webhook_backoff_base_seconds=_float(
                env, "JOBGATE_WEBHOOK_BACKOFF_BASE_SECONDS", base.webhook_backoff_base_seconds
            ),
            webhook_backoff_max_seconds=_float(
                env, "JOBGATE_WEBHOOK_BACKOFF_MAX_SECONDS", base.webhook_backoff_max_seconds
            ),
            webhook_allow_cidrs=_cidrs(env.get("JOBGATE_WEBHOOK_ALLOW_CIDRS", "")),
            events=_choice(env, "JOBGATE_EVENTS", base.events, ("all", "warnings", "none")),
            log_level=env.get("JOBGATE_LOG_LEVEL", base.log_level).upper(),
            standalone=env.get("JOBGATE_STANDALONE", "true").lower() not in ("0", "false", "no"),
            lease_seconds=_float(env, "JOBGATE_LEASE_SECONDS", base.lease_seconds),
            lease_retry_seconds=_float(
                env, "JOBGATE_LEASE_RETRY_SECONDS", base.lease_retry_seconds
            ),
            lease_renew_deadline=_float(
                env, "JOBGATE_LEASE_RENEW_DEADLINE", base.lease_renew_deadline
            ),
        )


@dataclasses.dataclass(frozen=True)
class Policy:
    """The live scheduling settings: the environment's values overlaid with the ConfigMap."""

    max_concurrent_jobs: int
    """``maxConcurrentJobs``: slot limit; 0 pauses the queue."""
    default_timeout_seconds: float
    """``defaultTimeoutSeconds``: timeout of a job whose spec sets none."""
    namespace_limits: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """``namespaceLimits``: slots one namespace may hold at once; key ``"*"`` for the rest."""
    algorithm_slots: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """``algorithmSlots``: slots one run of an algorithm holds (default: the algorithm's own)."""
    retry_base_seconds: float = 1.0
    """``retryBackoffBaseSeconds``: delay before the first retry; doubles each time."""
    retry_max_seconds: float = 300.0
    """``retryBackoffMaxSeconds``: the longest delay between retries."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(settings.max_concurrent_jobs, settings.default_timeout_seconds)

    def namespace_limit(self, namespace: str) -> int | None:
        return self.namespace_limits.get(namespace, self.namespace_limits.get("*"))

    def retry_delay(self, attempt: int) -> float:
        """Delay after failed attempt number ``attempt`` (1-based): base * 2**(attempt-1)."""
        return float(
            min(self.retry_base_seconds * 2 ** max(attempt - 1, 0), self.retry_max_seconds)
        )


def parse_configmap(
    data: Mapping[str, str] | None, settings: Settings, previous: Policy | None = None
) -> tuple[Policy, list[str]]:
    """Build the policy from the ConfigMap's ``data``; bad values never stop the operator.

    A key that is absent falls back to the environment's value; a key whose value is bad
    keeps the previous value in force and yields one message naming the key and the fix.
    """
    data = data or {}
    base = Policy.from_settings(settings)
    previous = previous or base
    problems: list[str] = []

    def read(key: str, parse: Callable[[str, str], Any], fallback: Any, kept: Any) -> Any:
        if key not in data:
            return fallback
        try:
            return parse(key, data[key])
        except ConfigError as exc:
            problems.append(f"ConfigMap {CONFIGMAP_NAME}: {exc}")
            return kept

    policy = Policy(
        max_concurrent_jobs=read(
            "maxConcurrentJobs", _parse_int, base.max_concurrent_jobs, previous.max_concurrent_jobs
        ),
        default_timeout_seconds=read(
            "defaultTimeoutSeconds",
            _parse_float,
            base.default_timeout_seconds,
            previous.default_timeout_seconds,
        ),
        namespace_limits=read("namespaceLimits", _parse_int_map, {}, previous.namespace_limits),
        algorithm_slots=read("algorithmSlots", _parse_slot_map, {}, previous.algorithm_slots),
        retry_base_seconds=read(
            "retryBackoffBaseSeconds",
            _parse_float,
            base.retry_base_seconds,
            previous.retry_base_seconds,
        ),
        retry_max_seconds=read(
            "retryBackoffMaxSeconds",
            _parse_float,
            base.retry_max_seconds,
            previous.retry_max_seconds,
        ),
    )
    known = {
        "maxConcurrentJobs",
        "defaultTimeoutSeconds",
        "namespaceLimits",
        "algorithmSlots",
        "retryBackoffBaseSeconds",
        "retryBackoffMaxSeconds",
    }
    for key in sorted(set(data) - known):
        problems.append(
            f"ConfigMap {CONFIGMAP_NAME}: unknown key {key!r} is ignored; known "
            f"keys: {', '.join(sorted(known))}"
        )
    return policy, problems


def _parse_int_map(name: str, raw: str, *, minimum: int = 0) -> dict[str, int]:
    """A YAML/JSON mapping of names to non-negative integers, e.g. ``{team-a: 3, "*": 5}``."""
    try:
        value = yaml.safe_load(raw) if str(raw).strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name} is not valid YAML ({exc}); write e.g. '{{team-a: 3}}'") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a mapping like '{{team-a: 3}}', got {raw!r}")
    out: dict[str, int] = {}
    for key, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
            raise ConfigError(
                f"{name}: {key}={number!r} must be an integer >= {minimum} "
                "(the previous value stays in force)"
            )
        out[str(key)] = number
    return out


def _parse_slot_map(name: str, raw: str) -> dict[str, int]:
    return _parse_int_map(name, raw, minimum=1)


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
        raise ConfigError(
            f"{name}={raw!r} is not a positive number of seconds, e.g. 600 "
            "(the previous value stays in force)"
        )
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} must be one of: {', '.join(allowed)}")
    return value


def _cidrs(raw: str) -> tuple[str, ...]:
    out = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError as exc:
            raise ConfigError(
                f"JOBGATE_WEBHOOK_ALLOW_CIDRS: {part!r} is not a network; use e.g. 10.0.0.0/8"
            ) from exc
        out.append(part)
    return tuple(out)


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
