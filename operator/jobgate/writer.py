"""The status writer: coalesced, ordered, retried status merge-patches.

The scheduler never awaits the API server: it hands a status patch to :meth:`write` and
goes on. Patches for one job that are still waiting merge into one (the later keys win), so a
job that starts and finishes before its "Running" patch has gone out costs one write, not
two; under load this halves the writes. At most one request per job is in flight, so patches
for a job reach the server in the order they were written. Failed requests are retried
with capped exponential backoff until they land or the object is gone.

Two classes of patches: urgent ones (a job starts or ends) go before background ones (queue
status: ``Pending`` and ``queuePosition``), which get every ``background_share``-th pick
while urgent ones are ready. When the API server is the bottleneck, a queued job's unsent
Pending patch then merges into its Running or terminal patch instead of costing a write, and
results are not stuck behind positions; positions still move, only more slowly.

One ordering rule crosses jobs: a job's "Running" patch is held until every terminal patch
written before it has landed. The scheduler reuses a slot the moment a job ends, before that
job's terminal status is written; without the rule a watcher could briefly see one more
Running object than the limit. The slot itself is never held for a write.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from kubernetes_asyncio.client.exceptions import ApiException
from sortedcontainers import SortedList

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
        background_share: int = 10,
    ) -> None:
        self._send = send
        self._concurrency = concurrency
        self._on_write = on_write or (lambda ok: None)
        self._waiting: dict[K, Patch] = {}
        self._in_flight: set[K] = set()
        # The hold rule, with tickets: every settling patch takes the next ticket; a held
        # patch waits until no ticket at or below the last one issued before it is still
        # outstanding. O(log n) per write and O(1) memory per held patch.
        self._tickets = itertools.count(1)
        self._last_ticket = 0
        self._outstanding: SortedList[int] = SortedList()  # settling, not landed yet
        self._settle_waiting: dict[K, int] = {}  # ticket carried by the waiting patch
        self._blocked: dict[K, int] = {}  # held patch -> the last ticket it waits for
        # heap of (ticket, sequence, key): the sequence breaks ties, keys need no order
        self._holds: list[tuple[int, int, K]] = []
        self._hold_seq = itertools.count()
        # Keys with a patch to send: urgent first; one token per entry in either deque.
        self._urgent: collections.deque[K] = collections.deque()
        self._background: collections.deque[K] = collections.deque()
        self._background_keys: set[K] = set()  # whose waiting patch is queue status only
        self._tokens = asyncio.Semaphore(0)
        self._background_share = background_share
        self._picks = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"status-writer-{i}")
            for i in range(self._concurrency)
        ]

    def write(
        self,
        key: K,
        patch: Patch,
        *,
        settles: bool = False,
        after_settled: bool = False,
        background: bool = False,
    ) -> None:
        """Queue ``patch`` for ``key``; merges into a patch that has not been sent yet.

        ``settles``: the patch ends a run (a terminal phase). ``after_settled``: hold the
        patch until every ``settles`` patch written before it has landed. ``background``:
        queue status, sent when no urgent patch is ready (or on its share of picks).
        """
        if settles and key not in self._settle_waiting:
            ticket = next(self._tickets)
            self._last_ticket = ticket
            self._outstanding.add(ticket)
            self._settle_waiting[key] = ticket
        waiting = self._waiting.get(key)
        upgraded = False
        if waiting is not None:
            waiting.update(patch)  # merged: the held-or-queued entry carries it
            if not background and key in self._background_keys:
                self._background_keys.discard(key)
                upgraded = True  # queued as background: queue it again as urgent
        else:
            self._waiting[key] = dict(patch)
            if background:
                self._background_keys.add(key)
            self._idle.clear()
        # Hold it (also when merged: a queued Pending must not carry it out early) unless it
        # merged into this job's own unsent settling patch: then the job was Running at the
        # API and stays so, which adds nothing to wait for; holding it there could deadlock
        # two re-queued jobs each waiting for the other's settling patch.
        if after_settled and key not in self._settle_waiting:
            mark = self._last_ticket
            if self._outstanding and self._outstanding[0] <= mark:
                self._blocked[key] = max(mark, self._blocked.get(key, 0))
                heapq.heappush(self._holds, (self._blocked[key], next(self._hold_seq), key))
        if (
            (waiting is None or upgraded)
            and key not in self._in_flight
            and key not in self._blocked
        ):
            self._enqueue(key)

    def _enqueue(self, key: K) -> None:
        if key in self._background_keys:
            self._background.append(key)
        else:
            self._urgent.append(key)
        self._tokens.release()

    def _take(self, key: K) -> Patch | None:
        """Remove and return ``key``'s waiting patch (its background mark goes with it)."""
        self._background_keys.discard(key)
        return self._waiting.pop(key, None)

    def _pick(self) -> K:
        self._picks += 1
        share = self._background_share
        if self._background and (not self._urgent or (share and self._picks % share == 0)):
            return self._background.popleft()
        return self._urgent.popleft()

    def discard(self, key: K) -> None:
        """Drop what is still waiting for ``key`` (the object was deleted)."""
        self._take(key)
        self._blocked.pop(key, None)
        ticket = self._settle_waiting.pop(key, None)
        if ticket is not None:
            self._settled(ticket)
        self._check_idle()

    def _settled(self, ticket: int) -> None:
        """A settling patch landed (or never will): release the held patches now clear."""
        self._outstanding.discard(ticket)
        low = self._outstanding[0] if self._outstanding else None
        while self._holds and (low is None or self._holds[0][0] < low):
            mark, _, key = heapq.heappop(self._holds)
            if self._blocked.get(key) != mark:
                continue  # stale: released already, or held again under a later mark
            del self._blocked[key]
            if key in self._waiting and key not in self._in_flight:
                self._enqueue(key)

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
            await self._tokens.acquire()
            key = self._pick()
            if key in self._blocked or key in self._in_flight:
                continue  # re-queued when released / when the flight lands
            patch = self._take(key)
            if patch is None:
                continue  # discarded while it waited, or sent already (queued twice)
            ticket = self._settle_waiting.pop(key, None)  # settles once this flight lands
            self._in_flight.add(key)
            try:
                await self._deliver(key, patch)
            finally:
                self._in_flight.discard(key)
                if ticket is not None:
                    self._settled(ticket)
                if key not in self._waiting:
                    # its waiting patch rode this flight (a retry sends the newest state) or
                    # was dropped with the object: what it settled has landed or never will
                    self._blocked.pop(key, None)
                    folded = self._settle_waiting.pop(key, None)
                    if folded is not None:
                        self._settled(folded)
                if key in self._waiting and key not in self._blocked:
                    self._enqueue(key)  # written again while in flight: send next
                self._check_idle()

    async def _deliver(self, key: K, patch: Patch) -> None:
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                await self._send(key, patch)
                self._on_write(True)
                return
            except Gone:
                self._take(key)
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
            if key not in self._blocked:  # a held patch must not ride out on the retry
                patch.update(self._take(key) or {})  # retry with the newest state
