"""Queue status in the API: ``Pending``, why, and ``queuePosition``, under a write bound.

Called about once a second by the runtime (:meth:`QueueStatusReporter.report`). The bound
that keeps long queues cheap is :class:`QueueReporting`'s; the words a user reads
(``WaitingForSlot``, ``Paused``, ``GroupLimit``) come from :meth:`pending_reason`.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

from jobgate.config import Policy
from jobgate.gate import Gate
from jobgate.jobs import EventSink, Job
from jobgate.queue import WaitQueue
from jobgate.status import Phase, Reason

WriteFn = Callable[..., dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class QueueReporting:
    """How queue status reaches the API: the write bound that keeps long queues cheap.

    Each report (about once a second) writes: a first ``Pending`` status for jobs queued
    since the last report (jobs that start before it never get one); exact positions for
    the first ``exact_positions`` jobs whose position or reason changed; and, for the rest,
    a refresh of jobs whose written position is older than ``refresh_seconds`` or whose
    reason changed, at most ``refresh_writes`` per report. So beyond the first Pending write,
    position writes per report are at most ``exact_positions + refresh_writes``, whatever
    the queue length.
    """

    exact_positions: int = 20
    refresh_seconds: float = 60.0
    refresh_writes: int = 20


@dataclasses.dataclass
class QueueStatusReporter:
    """Reads the scheduler's queue and gate; writes through the scheduler's status writes."""

    queue: WaitQueue
    jobs: Mapping[str, Job]
    gate: Gate
    policy: Callable[[], Policy]
    in_use: collections.Counter[str]
    fits_namespace: Callable[[str, str], bool]
    write: WriteFn
    events: EventSink
    rules: QueueReporting = dataclasses.field(default_factory=lambda: QueueReporting())

    def pending_reason(self, job: Job, blocked_namespaces: set[str]) -> tuple[Reason, str]:
        """Why a queued job is still waiting, in the user's words."""
        if self.gate.limit == 0:
            return Reason.PAUSED, "the queue is paused (maxConcurrentJobs is 0)"
        if job.ref.namespace in blocked_namespaces:
            limit = self.policy().namespace_limit(job.ref.namespace)
            return Reason.GROUP_LIMIT, (
                f"namespace {job.ref.namespace} holds {self.in_use[job.ref.namespace]} of its "
                f"{limit} slots (namespaceLimits)"
            )
        if job.slots > self.gate.limit:
            return Reason.WAITING_FOR_SLOT, (
                f"needs {job.slots} slots; the limit is {self.gate.limit}"
            )
        return Reason.WAITING_FOR_SLOT, (
            f"waiting for a free slot: {self.gate.in_use} of {self.gate.limit} in use"
        )

    def report(self) -> int:
        """Write queue status within the :class:`QueueReporting` bound; returns the writes."""
        now = time.monotonic()
        rules = self.rules
        blocked = self.queue.blocked_lanes(self.fits_namespace)
        refreshes = 0
        writes = 0
        for index, uid in enumerate(self.queue):
            job = self.jobs[uid]
            position = index + 1
            reason, message = self.pending_reason(job, blocked)
            shown = job.shown
            if shown is None or job.phase is not Phase.PENDING:
                pass  # first Pending write of this wait: always
            elif position <= rules.exact_positions:
                if (position, reason.value) == shown[:2]:
                    continue
            elif (reason.value == shown[1] and now - shown[2] < rules.refresh_seconds) or (
                refreshes >= rules.refresh_writes
            ):
                continue
            else:
                refreshes += 1
            if shown is None and job.phase is not Phase.PENDING:
                self.events.job(job.ref, "Queued", f"{message}; queue position {position}")
            job.shown = (position, reason.value, now)
            self.write(
                job,
                Phase.PENDING,
                reason,
                message,
                background=True,  # results first when the API server is the bottleneck
                queuePosition=position,
                submitOrder=job.order,
            )
            writes += 1
        return writes
