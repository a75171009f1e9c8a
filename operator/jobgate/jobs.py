"""What the scheduler knows about one AlgorithmJob, and the ports it reports through.

:class:`Job` is the in-memory record of a job from queued to its terminal write. The
protocols are the scheduler's only ways out: a status sink (the coalescing status writer),
a webhook notifier and an event sink, so unit tests can drive the scheduler with fakes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, Protocol

from jobgate.kube import JobRef
from jobgate.queue import QueueKey
from jobgate.spec import JobRequest, Webhook
from jobgate.status import Phase, Reason


class StatusSink(Protocol):
    def write(
        self,
        key: JobRef,
        patch: dict[str, Any],
        *,
        settles: bool = False,
        after_settled: bool = False,
        background: bool = False,
    ) -> None: ...

    def discard(self, key: JobRef) -> None: ...


class Notifier(Protocol):
    def notify(self, job: JobRef, webhook: Webhook, status: dict[str, Any]) -> None: ...

    def resume_if_owed(self, job: JobRef, webhook: Webhook, body: Mapping[str, Any]) -> None: ...

    def forget(self, uid: str) -> None: ...


class EventSink(Protocol):
    def job(self, ref: JobRef, reason: str, message: str, kind: str = "Normal") -> None: ...


class NoEvents:
    def job(self, ref: JobRef, reason: str, message: str, kind: str = "Normal") -> None:
        pass


@dataclasses.dataclass(eq=False)
class Job:
    """One AlgorithmJob the scheduler is responsible for, from queued to its terminal write."""

    ref: JobRef
    request: JobRequest | None
    """None when the spec was refused: the job ends Failed without ever being queued."""
    generation: int
    order: int
    attempts: int = 0
    phase: Phase | None = None
    conditions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    queued_at: float = 0.0
    slots: int = 1
    task: asyncio.Task[None] | None = None
    stop: tuple[Phase, Reason, str] | None = None
    """Why the scheduler itself stopped the run (cancel, deletion); None for a real end."""
    shown: tuple[int, str, float] | None = None
    """The queue status last written: (position, reason, monotonic time)."""

    @property
    def key(self) -> QueueKey:
        return QueueKey.make(self.valid.priority, self.order, self.ref.uid)

    @property
    def valid(self) -> JobRequest:
        assert self.request is not None, f"{self.ref} has no valid spec"
        return self.request

    @property
    def algorithm_name(self) -> str:
        return self.request.algorithm.name if self.request else "unknown"


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def parse_phase(value: Any) -> Phase | None:
    try:
        return Phase(value)
    except ValueError:
        return None


def creation_order(meta: Mapping[str, Any], status: Mapping[str, Any]) -> int:
    """The etcd revision at creation: kept in status once written, else the resourceVersion."""
    for raw in (status.get("submitOrder"), meta.get("resourceVersion")):
        try:
            return int(str(raw))
        except (TypeError, ValueError):
            continue
    return 0
