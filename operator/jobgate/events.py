"""Kubernetes Events for each job transition, so ``kubectl describe ajob`` tells the story.

Queued, Started, Succeeded, Failed, TimedOut, Cancelled, Retrying, WebhookFailed (and
ConfigInvalid on the ConfigMap). Events are a side channel: they go through their own small
queue and workers, never delay a status write or a slot, and shed load when the API server
falls behind: past ``backlog_limit`` waiting events, or while more than
``status_backlog_limit`` jobs' status writes wait (status comes first when the API server is
the bottleneck), Normal events are dropped (counted in ``jobgate_events_dropped_total``)
while Warnings are kept. ``JOBGATE_EVENTS`` chooses
``all`` (default), ``warnings`` or ``none``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from jobgate.kube import GROUP, KIND, VERSION, JobRef
from jobgate.metrics import Metrics

logger = logging.getLogger(__name__)

NORMAL, WARNING = "Normal", "Warning"


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    namespace: str
    name: str
    uid: str
    kind: str = KIND
    api_version: str = f"{GROUP}/{VERSION}"

    @classmethod
    def job(cls, ref: JobRef) -> ObjectRef:
        return cls(ref.namespace, ref.name, ref.uid)


Poster = Callable[[dict[str, Any]], Awaitable[None]]


class EventRecorder:
    def __init__(
        self,
        post: Poster,
        metrics: Metrics,
        *,
        mode: str = "all",
        workers: int = 4,
        backlog_limit: int = 1000,
        status_backlog: Callable[[], int] = lambda: 0,
        status_backlog_limit: int = 200,
        instance: str = "jobgate",
    ) -> None:
        self._post = post
        self._metrics = metrics
        self._mode = mode
        self._workers_count = workers
        self._backlog_limit = backlog_limit
        self._status_backlog = status_backlog
        self._status_backlog_limit = status_backlog_limit
        self._instance = instance
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._mode != "none":
            self._workers = [
                asyncio.create_task(self._work(), name=f"events-{i}")
                for i in range(self._workers_count)
            ]

    def job(self, ref: JobRef, reason: str, message: str, kind: str = NORMAL) -> None:
        self.record(ObjectRef.job(ref), reason, message, kind)

    def record(self, obj: ObjectRef, reason: str, message: str, kind: str = NORMAL) -> None:
        """Queue one Event; never blocks, never raises."""
        if self._mode == "none" or (self._mode == "warnings" and kind != WARNING):
            return
        if kind == NORMAL and (
            len(self._queue) >= self._backlog_limit
            or self._status_backlog() > self._status_backlog_limit
        ):
            self._metrics.events_dropped.inc()
            return
        self._queue.append(self._body(obj, reason, message, kind))
        self._wakeup.set()

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def _body(self, obj: ObjectRef, reason: str, message: str, kind: str) -> dict[str, Any]:
        now = datetime.datetime.now(datetime.UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{obj.name}.{uuid.uuid4().hex[:16]}", "namespace": obj.namespace},
            "involvedObject": {
                "apiVersion": obj.api_version,
                "kind": obj.kind,
                "name": obj.name,
                "namespace": obj.namespace,
                "uid": obj.uid,
            },
            "reason": reason,
            "message": message[:1024],
            "type": kind,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": "jobgate"},
            "reportingComponent": "jobgate.dev/operator",
            "reportingInstance": self._instance,
        }

    async def _work(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            body = self._queue.popleft()
            try:
                await self._post(body)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an Event is not worth a retry storm
                self._metrics.events_dropped.inc()
                logger.debug("posting Event %s failed: %s", body["reason"], exc)
