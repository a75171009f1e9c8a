"""The status writer: coalesced, ordered, retried status merge-patches.

The scheduler never awaits the API server: it hands a status patch to :meth:`write` and
goes on. Patches for one job that are still waiting merge into one (the later keys win), so a
job that starts and finishes before its "Running" patch has gone out costs one write, not
two; under load this halves the writes. At most one request per job is in flight, so patches
for a job reach the server in the order they were written. Failed requests are retried
with capped exponential backoff until they land or the object is gone.

One ordering rule crosses jobs: a job's "Running" patch is held until every terminal patch
written before it has landed. The scheduler reuses a slot the moment a job ends, before that
job's terminal status is written; without the rule a watcher could briefly see one more
Running object than the limit. The slot itself is never held for a write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from kubernetes_asyncio.client.exceptions import ApiException

from jobgate.kube import Gone

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Patch = dict[str, Any]

RETRY_FIRST_DELAY = 0.2
RETRY_MAX_DELAY = 10.0


class StatusWriter(Generic[K]):
    """Per-key latest-wins queue of patches, drained by ``concurrency`` workers."""

    def __init__(
        self,
        send: Callable[[K, Patch], Awaitable[None]],
        *,
        concurrency: int = 32,
        on_write: Callable[[bool], None] | None = None,
    ) -> None:
        self._send = send
        self._concurrency = concurrency
        self._on_write = on_write or (lambda ok: None)
        self._waiting: dict[K, Patch] = {}
        self._in_flight: set[K] = set()
        self._settling: set[K] = set()  # a terminal patch is waiting or in flight
        self._settle_waiting: set[K] = set()  # ... and it is in the waiting patch
        self._blocked: dict[K, set[K]] = {}  # held patch -> terminal patches it waits for
        self._dependents: dict[K, set[K]] = {}
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"status-writer-{i}")
            for i in range(self._concurrency)
        ]

    def write(
        self, key: K, patch: Patch, *, settles: bool = False, after_settled: bool = False
    ) -> None:
        """Queue ``patch`` for ``key``; merges into a patch that has not been sent yet.

        ``settles``: the patch ends a run (a terminal phase). ``after_settled``: hold the
        patch until every ``settles`` patch written before it has landed.
        """
        if settles:
            self._settling.add(key)
            self._settle_waiting.add(key)
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting.update(patch)  # merged: the held-or-queued entry carries it
        else:
            self._waiting[key] = dict(patch)
            self._idle.clear()
        # Hold it (also when merged: a queued Pending must not carry it out early) unless it
        # merged into this job's own unsent settling patch: then the job was Running at the
        # API and stays so, which adds nothing to wait for; holding it there could deadlock
        # two re-queued jobs each waiting for the other's settling patch.
        if after_settled and key not in self._settle_waiting:
            blockers = self._settling - {key}
            if blockers:
                self._blocked.setdefault(key, set()).update(blockers)
                for blocker in blockers:
                    self._dependents.setdefault(blocker, set()).add(key)
        if waiting is None and key not in self._in_flight and key not in self._blocked:
            self._ready.put_nowait(key)

    def discard(self, key: K) -> None:
        """Drop what is still waiting for ``key`` (the object was deleted)."""
        self._waiting.pop(key, None)
        self._blocked.pop(key, None)
        self._settle_waiting.discard(key)
        if key not in self._in_flight:
            self._settled(key)
        self._check_idle()

    def _settled(self, key: K) -> None:
        """``key``'s terminal patch landed (or never will): release what waited for it."""
        self._settling.discard(key)
        for dependent in self._dependents.pop(key, ()):
            blockers = self._blocked.get(dependent)
            if blockers is None:
                continue
            blockers.discard(key)
            if not blockers:
                del self._blocked[dependent]
                if dependent in self._waiting and dependent not in self._in_flight:
                    self._ready.put_nowait(dependent)

    @property
    def backlog(self) -> int:
        return len(self._waiting)

    async def flush(self) -> None:
        """Wait until every queued patch has been sent (or dropped)."""
        await self._idle.wait()

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    def _check_idle(self) -> None:
        if not self._waiting and not self._in_flight:
            self._idle.set()

    async def _work(self) -> None:
        while True:
            key = await self._ready.get()
            if key in self._blocked or key in self._in_flight:
                continue  # re-queued when released / when the flight lands
            patch = self._waiting.pop(key, None)
            if patch is None:
                continue  # discarded while it waited
            settles = key in self._settle_waiting
            self._settle_waiting.discard(key)
            self._in_flight.add(key)
            try:
                await self._deliver(key, patch)
            finally:
                self._in_flight.discard(key)
                if settles and key not in self._settle_waiting:
                    self._settled(key)
                if key in self._waiting and key not in self._blocked:
                    self._ready.put_nowait(key)  # written again while in flight: send next
                self._check_idle()

    async def _deliver(self, key: K, patch: Patch) -> None:
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                await self._send(key, patch)
                self._on_write(True)
                return
            except Gone:
                self._waiting.pop(key, None)
                return
            except asyncio.CancelledError:
                raise
            except ApiException as exc:
                if (
                    exc.status is not None
                    and 400 <= exc.status < 500
                    and exc.status
                    not in (
                        408,
                        409,
                        429,
                    )
                ):
                    self._on_write(False)
                    logger.error(
                        "status of %s was refused (%s): %s; dropping it", key, exc.status, exc.body
                    )
                    return
                error: Exception = exc
            except Exception as exc:  # connection errors and the like: the server may come back
                error = exc
            self._on_write(False)
            logger.warning(
                "writing the status of %s failed (%s); retrying in %.1fs", key, error, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY)
            patch.update(self._waiting.pop(key, {}))  # retry with the newest state
