"""The scheduler: the wait queue, the gate and the runs, tied together. No kopf, no API calls.

The kopf handlers feed it what the watch sees (:meth:`Scheduler.observe`,
:meth:`Scheduler.forget`); it decides what runs, and a :class:`~jobgate.reports.JobReporter`
tells each change: to a :class:`StatusSink` (the coalescing status writer in production, a
list in unit tests), as an Event, a log line, metrics and the webhook.
Everything that touches the queue or the gate is synchronous, so between two ``await``s the
books always balance and the limit cannot be overshot. A job holds its slot from admission
until its algorithm returns or is stopped; the terminal status write and the webhook happen
after the slot is released.

Queue status (``Pending``, its reason and ``queuePosition``) is written by
:meth:`Scheduler.report_queue`, called about once a second, under a bound that does not grow
with the queue: see :mod:`jobgate.queuestatus`.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jobgate.algorithms import AlgorithmFailure, AlgorithmRegistry
from jobgate.config import Policy
from jobgate.gate import Gate
from jobgate.jobs import (
    EventSink,
    Job,
    NoEvents,
    Notifier,
    StatusSink,
    creation_order,
    parse_phase,
    utcnow,
)
from jobgate.kube import JobRef
from jobgate.metrics import Metrics
from jobgate.queue import WaitQueue
from jobgate.queuestatus import QueueReporting, QueueStatusReporter
from jobgate.reports import JobReporter
from jobgate.runner import AlgorithmRunner, JobTimeout, ResourceLimitExceeded
from jobgate.spec import JobRequest, SpecError, parse_spec, parse_webhook
from jobgate.status import (
    TERMINAL_PHASES,
    Phase,
    Reason,
)

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        *,
        policy: Policy,
        algorithms: AlgorithmRegistry,
        runner: AlgorithmRunner,
        sink: StatusSink,
        notifier: Notifier,
        metrics: Metrics,
        reporting: QueueReporting | None = None,
        events: EventSink | None = None,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self.policy = policy
        self.gate = Gate(policy.max_concurrent_jobs)
        self.queue = WaitQueue()
        self._algorithms = algorithms
        self._runner = runner
        self._notifier = notifier
        self._metrics = metrics
        self._report = JobReporter(
            sink=sink, notifier=notifier, metrics=metrics, events=events or NoEvents(), clock=clock
        )
        self._jobs: dict[str, Job] = {}  # by uid: queued, running or waiting to retry
        self._running: dict[str, Job] = {}
        self._in_use: collections.Counter[str] = collections.Counter()  # slots by namespace
        self._finished: set[str] = set()  # concluded, until the watch shows the final phase
        self._closing = False
        self._holding = False
        self._queue_status = QueueStatusReporter(
            queue=self.queue,
            jobs=self._jobs,
            gate=self.gate,
            policy=lambda: self.policy,
            in_use=self._in_use,
            fits_namespace=self._fits_namespace,
            write=self._report.status,
            events=self._report.events,
            rules=reporting or QueueReporting(),
        )
        metrics.bind_gate(
            limit=lambda: self.gate.limit,
            running=lambda: len(self._running),
            queued=lambda: len(self.queue),
            available=lambda: self.gate.available,
        )

    # ----- what the watch sees -----

    def observe(self, body: Mapping[str, Any]) -> None:
        """An AlgorithmJob was added or modified (or listed at start-up)."""
        meta = body.get("metadata", {})
        status = body.get("status") or {}
        ref = JobRef(meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""))
        terminal = status.get("phase") in TERMINAL_PHASES
        if ref.uid in self._finished:  # our own earlier writes echoing back
            if terminal:
                self._finished.discard(ref.uid)
            return
        job = self._jobs.get(ref.uid)
        if job is None:
            if not terminal and not self._closing:
                self._admit_new(ref, body)
            elif terminal and not self._closing:  # e.g. a webhook owed from before a restart
                webhook = parse_webhook((body.get("spec") or {}).get("webhook"), strict=False)
                if webhook is not None:
                    self._notifier.resume_if_owed(ref, webhook, body)
            return
        generation = int(meta.get("generation", 0))
        if generation != job.generation:
            job.generation = generation
            self._spec_changed(job, body.get("spec") or {})

    def bootstrap(self, bodies: Iterable[Mapping[str, Any]]) -> None:
        """Take in every existing job before starting any, so priority decides, not list order."""
        self._holding = True
        try:
            for body in bodies:
                self.observe(body)
        finally:
            self._holding = False
        # Jobs a previous operator left Running are back in the queue: show that first, so
        # that the new runs' Running writes (held until these land) never outnumber the limit.
        for uid in self.queue:
            job = self._jobs[uid]
            if job.phase is Phase.RUNNING:
                self._report.status(
                    job,
                    Phase.PENDING,
                    Reason.WAITING_FOR_SLOT,
                    "re-queued: the operator restarted while it ran",
                    settles=True,
                )
        self._dispatch()

    def forget(self, uid: str) -> None:
        """The AlgorithmJob was deleted: drop it from the queue, or stop its run."""
        self._finished.discard(uid)
        self._notifier.forget(uid)
        job = self._jobs.pop(uid, None)
        if job is None:
            return
        self._report.discard(job)
        if self.queue.remove(uid):
            self._dispatch()
        elif job.task is not None:
            self._stop(job, (Phase.CANCELLED, Reason.CANCELLED, "the AlgorithmJob was deleted"))

    def apply_policy(self, policy: Policy) -> None:
        """Apply new live settings at once: a raised limit starts queued jobs immediately."""
        if policy.max_concurrent_jobs != self.gate.limit:
            logger.info(
                "slot limit changes from %d to %d", self.gate.limit, policy.max_concurrent_jobs
            )
        self.policy = policy
        self.gate.resize(policy.max_concurrent_jobs)
        for job in self._jobs.values():
            if job.request is not None and job.task is None:
                job.slots = self._slots_for(job.request)
        self._dispatch()

    def snapshot(self) -> dict[str, Any]:
        """The seed's three keys, then the extra counters."""
        return {
            "max_concurrent": self.gate.limit,
            "available_slots": self.gate.available,
            "running_jobs": len(self._running),
            "queued_jobs": len(self.queue),
            "paused": self.gate.limit == 0,
            "slots_in_use": self.gate.in_use,
            "namespaces": {ns: n for ns, n in self._in_use.items() if n},
        }

    async def close(self) -> None:
        """Stop every run without writing a status: a successor re-queues them as Running."""
        self._closing = True
        tasks = [job.task for job in self._running.values() if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ----- decisions -----

    def _admit_new(self, ref: JobRef, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata", {})
        status = body.get("status") or {}
        job = Job(
            ref=ref,
            request=None,
            generation=int(meta.get("generation", 0)),
            order=creation_order(meta, status),
            attempts=int(status.get("attempts") or 0),
            phase=parse_phase(status.get("phase")),
            conditions=list(status.get("conditions") or []),
        )
        if job.phase is Phase.PENDING and isinstance(status.get("queuePosition"), int):
            # Shown already (before a restart): only refresh it under the usual bound.
            job.shown = (status["queuePosition"], str(status.get("reason")), time.monotonic())
        self._jobs[ref.uid] = job
        spec = body.get("spec") or {}
        try:
            job.request = request = parse_spec(spec, self._algorithms)
        except SpecError as exc:
            logger.warning(
                "AlgorithmJob %s refused: %s: %s",
                ref,
                exc.reason,
                exc.message,
                extra={"job": str(ref), "reason": str(exc.reason)},
            )
            self._metrics.jobs_created.labels("unknown").inc()
            webhook = parse_webhook(spec.get("webhook"), strict=False)
            self._conclude(job, Phase.FAILED, exc.reason, exc.message, webhook=webhook)
            return
        self._metrics.jobs_created.labels(request.algorithm.name).inc()
        if request.cancel:
            self._conclude(
                job, Phase.CANCELLED, Reason.CANCELLED, "cancelled by spec.cancel before it started"
            )
            return
        job.slots = self._slots_for(request)
        self._enqueue(job)

    def _slots_for(self, request: JobRequest) -> int:
        name = request.algorithm.name
        return self.policy.algorithm_slots.get(name, request.algorithm.slots)

    def _spec_changed(self, job: Job, spec: Mapping[str, Any]) -> None:
        if spec.get("cancel") is True:
            if job.task is not None:
                self._stop(
                    job,
                    (Phase.CANCELLED, Reason.CANCELLED, "cancelled by spec.cancel while running"),
                )
            else:  # queued, or waiting to retry
                self.queue.remove(job.ref.uid)
                self._conclude(
                    job,
                    Phase.CANCELLED,
                    Reason.CANCELLED,
                    "cancelled by spec.cancel before it started",
                )
                self._dispatch()
            return
        if job.ref.uid in self.queue:  # a waiting job takes its newest spec
            try:
                job.request = parse_spec(spec, self._algorithms)
            except SpecError as exc:
                self.queue.remove(job.ref.uid)
                self._conclude(job, Phase.FAILED, exc.reason, exc.message)
                return
            job.slots = self._slots_for(job.request)
            self.queue.push(job.ref.namespace, job.key)
            self._dispatch()

    def _enqueue(self, job: Job) -> None:
        job.queued_at = time.monotonic()
        self.queue.push(job.ref.namespace, job.key)
        self._dispatch()

    def _fits_namespace(self, namespace: str, uid: str) -> bool:
        limit = self.policy.namespace_limit(namespace)
        return limit is None or self._in_use[namespace] + self._jobs[uid].slots <= limit

    def _dispatch(self) -> None:
        """Start queued jobs, best first, while the best one fits in the gate.

        A namespace at its own limit is passed over (its jobs wait as ``GroupLimit``); the
        best remaining job that does not fit the global gate stops the round, so a job that
        needs several slots is never starved by smaller ones behind it.
        """
        while not self._closing and not self._holding:
            uid = self.queue.best(self._fits_namespace)
            if uid is None or not self.gate.can_admit(self._jobs[uid].slots):
                return
            self.queue.remove(uid)
            self._start(self._jobs[uid])

    def _start(self, job: Job) -> None:
        self.gate.admit(job.slots)
        self._in_use[job.ref.namespace] += job.slots
        self._running[job.ref.uid] = job
        job.attempts += 1
        waited = time.monotonic() - job.queued_at
        self._metrics.queue_wait.observe(waited)
        job.stop = None
        job.shown = None
        self._report.started(
            job,
            waited=waited,
            in_use=self.gate.in_use,
            limit=self.gate.limit,
        )
        job.task = asyncio.create_task(self._run(job), name=f"job {job.ref}")

    async def _run(self, job: Job) -> None:
        request = job.valid
        timeout = request.timeout_seconds or self.policy.default_timeout_seconds
        started = time.monotonic()
        outcome: tuple[Phase, Reason, str] | None = None
        result: dict[str, Any] | None = None
        try:
            result = await self._runner.run(
                request.algorithm, request.params, timeout, request.resources
            )
            outcome = (Phase.SUCCEEDED, Reason.SUCCEEDED, "the algorithm returned a result")
        except JobTimeout as exc:
            outcome = (Phase.FAILED, Reason.TIMEOUT, str(exc))
        except ResourceLimitExceeded as exc:
            outcome = (Phase.FAILED, Reason.RESOURCE_LIMIT, str(exc))
        except AlgorithmFailure as exc:
            outcome = (Phase.FAILED, Reason.ALGORITHM_ERROR, str(exc))
        except asyncio.CancelledError:
            outcome = job.stop
            if outcome is None:  # operator shutdown: leave the status to the successor
                raise
        finally:
            elapsed = time.monotonic() - started
            self._running.pop(job.ref.uid, None)
            self.gate.release(job.slots)
            self._in_use[job.ref.namespace] -= job.slots
            job.task = None
            self._metrics.job_duration.labels(request.algorithm.name).observe(elapsed)
        # The slot is free; queue this job's closing status first, then start the next job,
        # so the next job's Running write is held behind it (see jobgate.writer).
        try:
            phase, reason, message = outcome
            if job.ref.uid not in self._jobs:
                return  # deleted while running: nothing to write
            retryable = reason in (Reason.ALGORITHM_ERROR, Reason.TIMEOUT)
            if retryable and job.attempts <= request.backoff_limit:
                self._retry_later(job, reason, message)
            else:
                self._conclude(job, phase, reason, message, result=result, elapsed=elapsed)
        finally:
            self._dispatch()

    def _retry_later(self, job: Job, reason: Reason, message: str) -> None:
        delay = self.policy.retry_delay(job.attempts)
        self._report.retrying(job, reason, message, delay)
        asyncio.get_running_loop().call_later(delay, self._requeue, job)

    def _requeue(self, job: Job) -> None:
        if self._jobs.get(job.ref.uid) is job and job.task is None and not self._closing:
            job.shown = None
            self._enqueue(job)

    def _stop(self, job: Job, why: tuple[Phase, Reason, str]) -> None:
        job.stop = why
        if job.task is not None:
            job.task.cancel()

    def _conclude(self, job: Job, phase: Phase, reason: Reason, message: str, **end: Any) -> None:
        """Report the end (see :meth:`JobReporter.concluded` for ``end``), and stop tracking
        the job until the watch shows its final phase."""
        self._report.concluded(job, phase, reason, message, **end)
        self._jobs.pop(job.ref.uid, None)
        self._finished.add(job.ref.uid)

    def report_queue(self) -> int:
        """Write queue status now, within the bound (see :mod:`jobgate.queuestatus`)."""
        return self._queue_status.report()
