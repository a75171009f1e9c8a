"""How a job's transitions reach the world: its status, an Event, a log line, the metrics
and, at the end, its webhook.

The scheduler decides what happens to a job; :class:`JobReporter` tells it, through the
ports in :mod:`jobgate.jobs`, so the two can change (and be tested) apart. Nothing here
awaits: status patches go to the coalescing writer, Events to their own bounded queue.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

from jobgate.jobs import EventSink, Job, Notifier, StatusSink
from jobgate.metrics import Metrics
from jobgate.spec import Webhook
from jobgate.status import Phase, Reason, precise_timestamp, summarize, transition

logger = logging.getLogger(__name__)


class JobReporter:
    def __init__(
        self,
        *,
        sink: StatusSink,
        notifier: Notifier,
        metrics: Metrics,
        events: EventSink,
        clock: Callable[[], datetime.datetime],
    ) -> None:
        self._sink = sink
        self._notifier = notifier
        self._metrics = metrics
        self.events = events
        self._clock = clock

    def status(
        self,
        job: Job,
        phase: Phase,
        reason: Reason,
        message: str,
        *,
        settles: bool = False,
        background: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """Queue a status write. Terminal writes (and ``settles``) end a Running display;
        a Running write waits for those written before it; ``background`` (queue status)
        yields to the others (see jobgate.writer)."""
        status = transition(
            phase, reason, message, previous_conditions=job.conditions, now=self._clock(), **fields
        )
        job.phase = phase
        job.conditions = status["conditions"]
        self._sink.write(
            job.ref,
            status,
            settles=settles or phase.terminal,
            after_settled=phase is Phase.RUNNING,
            background=background,
        )
        return status

    def discard(self, job: Job) -> None:
        """The object is gone: drop its status writes still waiting."""
        self._sink.discard(job.ref)

    def started(self, job: Job, *, waited: float, in_use: int, limit: int) -> None:
        self.events.job(
            job.ref,
            "Started",
            f"attempt {job.attempts} started after waiting "
            f"{waited:.1f}s; {in_use} of {limit} slots in use",
        )
        self.status(
            job,
            Phase.RUNNING,
            Reason.STARTED,
            f"attempt {job.attempts} of {job.valid.backoff_limit + 1}",
            attempts=job.attempts,
            startTime=precise_timestamp(self._clock()),
            queuePosition=None,
            completionTime=None,
            durationSeconds=None,
            result=None,
            summary=None,
        )

    def retrying(self, job: Job, reason: Reason, message: str, delay: float) -> None:
        why = f"attempt {job.attempts} failed ({reason}: {message}); retrying in {delay:g}s"
        self.events.job(job.ref, "Retrying", why, "Warning")
        self.status(
            job,
            Phase.PENDING,
            Reason.RETRY_BACKOFF,
            why,
            settles=True,  # it no longer shows Running: the next job's Running may follow
            lastFailure=f"{reason}: {message}",
        )

    def concluded(
        self,
        job: Job,
        phase: Phase,
        reason: Reason,
        message: str,
        *,
        result: dict[str, Any] | None = None,
        elapsed: float | None = None,
        webhook: Webhook | None = None,
    ) -> None:
        """The terminal status (with the webhook owed, so it survives a restart), then the
        metric, log line and Event, then the webhook delivery. ``webhook`` defaults to the
        job's own (a refused spec passes the one it could still read)."""
        webhook = webhook or (job.request.webhook if job.request else None)
        fields: dict[str, Any] = {
            "completionTime": precise_timestamp(self._clock()),
            "queuePosition": None,
        }
        if result is not None:
            fields["result"] = result
            fields["summary"] = summarize(result)
        if elapsed is not None:
            fields["durationSeconds"] = round(elapsed, 3)
        if webhook is not None:
            fields["webhook"] = {"state": "Pending", "attempts": 0}
        status = self.status(job, phase, reason, message, **fields)
        self._metrics.jobs_completed.labels(phase.value, job.algorithm_name).inc()
        logger.info(
            "AlgorithmJob %s %s (%s)",
            job.ref,
            phase.value,
            reason.value,
            extra={
                "job": str(job.ref),
                "phase": phase.value,
                "reason": reason.value,
                "attempts": job.attempts,
            },
        )
        event = {Reason.TIMEOUT: "TimedOut"}.get(reason, phase.value)
        self.events.job(job.ref, event, message, "Warning" if phase is Phase.FAILED else "Normal")
        if webhook is not None:
            self._notifier.notify(job.ref, webhook, status)
