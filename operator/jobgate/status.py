"""What an AlgorithmJob's ``status`` says: phases, reasons, conditions, timestamps.

Pure functions that build the merge-patch bodies the status writer sends. Conditions follow
the Kubernetes convention (``type``, ``status``, ``reason``, ``message``,
``lastTransitionTime``) so that ``kubectl wait --for=condition=Complete ajob/NAME`` works;
a condition's transition time only moves when its ``status`` flips.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping, Sequence
from typing import Any


class Phase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED)


class Reason(enum.StrEnum):
    """Machine-readable reasons written to ``status.reason`` and to conditions."""

    WAITING_FOR_SLOT = "WaitingForSlot"
    PAUSED = "Paused"
    GROUP_LIMIT = "GroupLimit"
    RETRY_BACKOFF = "RetryBackoff"
    RESOURCE_LIMIT = "ResourceLimit"
    STARTED = "Started"
    SUCCEEDED = "Succeeded"
    INVALID_SPEC = "InvalidSpec"
    UNKNOWN_ALGORITHM = "UnknownAlgorithm"
    TIMEOUT = "Timeout"
    ALGORITHM_ERROR = "AlgorithmError"
    CANCELLED = "Cancelled"


TERMINAL_PHASES = frozenset(p.value for p in Phase if p.terminal)

# Condition types, in the order they appear in status.conditions.
ADMITTED, RUNNING, COMPLETE, FAILED, CANCELLED = (
    "Admitted",
    "Running",
    "Complete",
    "Failed",
    "Cancelled",
)


def timestamp(when: datetime.datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes its own times."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def precise_timestamp(when: datetime.datetime) -> str:
    """RFC 3339 in UTC with microseconds, for start and completion times that get measured."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _condition(kind: str, true: bool, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if true else "False",
        "reason": reason,
        "message": message,
    }


def conditions_for(phase: Phase, reason: str, message: str = "") -> list[dict[str, Any]]:
    """The conditions a job in ``phase`` carries (without transition times)."""
    if phase is Phase.PENDING:
        return [_condition(ADMITTED, False, reason, message)]
    admitted = _condition(ADMITTED, True, "SlotAcquired", "holds a concurrency slot")
    if phase is Phase.RUNNING:
        return [admitted, _condition(RUNNING, True, Reason.STARTED, message)]
    stopped = _condition(RUNNING, False, reason, message)
    if phase is Phase.SUCCEEDED:
        return [admitted, stopped, _condition(COMPLETE, True, reason, message)]
    if phase is Phase.FAILED:
        return [stopped, _condition(FAILED, True, reason, message)]
    return [stopped, _condition(CANCELLED, True, reason, message)]


def merge_conditions(
    previous: Sequence[Mapping[str, Any]], current: Sequence[dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    """Stamp ``lastTransitionTime``: kept from ``previous`` while a condition's status holds.

    ``current`` is the whole truth for the new phase: a condition it leaves out is dropped,
    so a retried job never shows ``Failed=True`` beside ``Running=True``.
    """
    old = {c.get("type"): c for c in previous}
    merged: list[dict[str, Any]] = []
    for cond in current:
        before = old.pop(cond["type"], None)
        same = before is not None and before.get("status") == cond["status"]
        when = before.get("lastTransitionTime", now) if same and before else now
        merged.append({**cond, "lastTransitionTime": when})
    return merged


def transition(
    phase: Phase,
    reason: str,
    message: str,
    *,
    previous_conditions: Sequence[Mapping[str, Any]],
    now: datetime.datetime,
    **fields: Any,
) -> dict[str, Any]:
    """A status merge-patch for moving to ``phase``; ``fields`` are extra status keys.

    A ``None`` in ``fields`` clears that key (merge-patch semantics), which a retry uses to
    drop the previous attempt's result.
    """
    stamp = timestamp(now)
    body: dict[str, Any] = {
        "phase": phase.value,
        "reason": reason,
        "message": message,
        "conditions": merge_conditions(
            previous_conditions, conditions_for(phase, reason, message), stamp
        ),
    }
    body.update(fields)
    return body


def summarize(result: Mapping[str, Any] | None, limit: int = 60) -> str:
    """A one-line summary of a result for ``kubectl get`` (``status.summary``)."""
    if not result:
        return ""
    text = ", ".join(f"{k}={v}" for k, v in result.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"
