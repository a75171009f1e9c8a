"""Reading an AlgorithmJob's ``spec`` into a :class:`JobRequest`, or a clear refusal.

The CRD schema already refuses wrong types and ranges at admission; this layer checks what
the schema cannot: that the algorithm exists and that its params make sense. A refusal is a
:class:`SpecError` carrying the reason and message that end the job as ``Failed``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from jobgate.algorithms import Algorithm, AlgorithmRegistry, InvalidParams, Params
from jobgate.status import Reason


class SpecError(ValueError):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclasses.dataclass(frozen=True)
class Webhook:
    url: str
    secret_name: str | None = None
    secret_key: str | None = None


@dataclasses.dataclass(frozen=True)
class Resources:
    """Per-job limits on the worker process (rlimits): address space and CPU time."""

    memory_mib: int | None = None
    cpu_seconds: int | None = None


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """A validated spec: everything the scheduler needs to queue and run the job."""

    algorithm: Algorithm
    params: Params
    priority: int = 0
    timeout_seconds: float | None = None
    backoff_limit: int = 0
    cancel: bool = False
    webhook: Webhook | None = None
    resources: Resources | None = None


def parse_spec(spec: Mapping[str, Any], registry: AlgorithmRegistry) -> JobRequest:
    """Validate ``spec``; raise :class:`SpecError` naming the field and the fix."""
    name = spec.get("algorithm")
    if not isinstance(name, str) or not name:
        raise SpecError(Reason.INVALID_SPEC, "spec.algorithm is required, e.g. PrimeChecker")
    algorithm = registry.get(name)
    if algorithm is None:
        raise SpecError(
            Reason.UNKNOWN_ALGORITHM,
            f"spec.algorithm {name!r} is not registered; known: {', '.join(registry.names())}",
        )
    raw_params = spec.get("params")
    if raw_params is None:
        raw_params = {}
    if not isinstance(raw_params, Mapping):
        raise SpecError(Reason.INVALID_SPEC, "spec.params must be an object")
    try:
        params = algorithm.check_params(raw_params)
    except InvalidParams as exc:
        raise SpecError(Reason.INVALID_SPEC, str(exc)) from exc
    return JobRequest(
        algorithm=algorithm,
        params=params,
        priority=_int(spec, "priority", 0),
        timeout_seconds=_timeout(spec),
        backoff_limit=_int(spec, "backoffLimit", 0),
        cancel=spec.get("cancel") is True,
        webhook=parse_webhook(spec.get("webhook")),
        resources=_resources(spec.get("resources"), algorithm),
    )


def _int(spec: Mapping[str, Any], field: str, default: int) -> int:
    value = spec.get(field, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(Reason.INVALID_SPEC, f"spec.{field} must be an integer, got {value!r}")
    return value


def _resources(value: Any, algorithm: Algorithm) -> Resources | None:
    if not value:
        return None
    if not isinstance(value, Mapping):
        raise SpecError(Reason.INVALID_SPEC, "spec.resources must be an object")
    if algorithm.compute is None:
        raise SpecError(
            Reason.INVALID_SPEC,
            f"spec.resources limits worker processes, but {algorithm.name} runs on the event "
            "loop without one; remove spec.resources",
        )
    limits = {}
    for field in ("memoryMiB", "cpuSeconds"):
        number = value.get(field)
        if number is not None and (
            isinstance(number, bool) or not isinstance(number, int) or number < 1
        ):
            raise SpecError(
                Reason.INVALID_SPEC, f"spec.resources.{field} must be a positive integer"
            )
        limits[field] = number
    return Resources(memory_mib=limits["memoryMiB"], cpu_seconds=limits["cpuSeconds"])


def _timeout(spec: Mapping[str, Any]) -> float | None:
    value = spec.get("timeoutSeconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SpecError(
            Reason.INVALID_SPEC, f"spec.timeoutSeconds must be a positive number, got {value!r}"
        )
    return float(value)


def parse_webhook(value: Any, *, strict: bool = True) -> Webhook | None:
    """The webhook to call; with ``strict=False`` a broken one is None instead of an error."""
    if value is None:
        return None
    try:
        if not isinstance(value, Mapping) or not isinstance(value.get("url"), str):
            raise SpecError(
                Reason.INVALID_SPEC, "spec.webhook.url is required when spec.webhook is set"
            )
        url = value["url"]
        if not url.startswith(("http://", "https://")):
            raise SpecError(
                Reason.INVALID_SPEC, f"spec.webhook.url {url!r} must be an http:// or https:// URL"
            )
    except SpecError:
        if strict:
            raise
        return None
    ref = value.get("secretRef") or {}
    return Webhook(url=url, secret_name=ref.get("name"), secret_key=ref.get("key"))
