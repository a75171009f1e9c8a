"""The load side: a plain asyncio client that creates AlgorithmJobs (and, for the raw ceiling,
patches their status itself), and a watch that follows every job's phase.

One shared ``kubernetes_asyncio`` ``ApiClient`` (one connection pool) makes every call, with a
fixed number of objects in flight. Responses are released unread where the caller does not
need them. The watch is a raw ``?watch=1`` stream on aiohttp: no list calls during a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from bench.cluster import GROUP, MERGE_PATCH, PLURAL, VERSION, Cluster
from jobgate.status import Phase, Reason, precise_timestamp, transition

TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})
IN_FLIGHT = 96


def job_body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AlgorithmJob",
        "metadata": {"name": name},
        "spec": spec,
    }


def prime_spec(number: int | str = 97) -> dict[str, Any]:
    return {"algorithm": "PrimeChecker", "params": {"number": number}}


def sleep_spec(seconds: float) -> dict[str, Any]:
    return {"algorithm": "Sleep", "params": {"seconds": seconds}}


def parse_time(text: str) -> float:
    """An RFC 3339 timestamp (with or without microseconds) as a Unix time."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _checked(call: Any) -> Any:
    """Await a ``_preload_content=False`` call; raise on a non-2xx answer."""
    response = await call
    if not 200 <= response.status <= 299:
        body = await response.text()
        response.release()
        raise ApiException(status=response.status, reason=body[:300])
    return response


@dataclasses.dataclass
class LoadStats:
    """What a load run did, on the bench process's clocks."""

    objects: int = 0
    requests: int = 0
    errors: int = 0
    first_sent: float = 0.0  # perf_counter
    first_sent_wall: float = 0.0  # time.time
    last_done: float = 0.0

    @property
    def seconds(self) -> float:
        return self.last_done - self.first_sent


async def _retrying(make: Callable[[], Any], stats: LoadStats, attempts: int = 5) -> Any:
    for attempt in range(attempts):
        try:
            stats.requests += 1
            return await _checked(make())
        except (TimeoutError, ApiException, OSError) as exc:
            stats.errors += 1
            if isinstance(exc, ApiException) and exc.status == 409:
                raise
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


async def _pool(
    items: Iterable[Any], work: Callable[[Any], Any], concurrency: int, stats: LoadStats
) -> LoadStats:
    iterator: Iterator[Any] = iter(items)
    stats.first_sent = time.perf_counter()
    stats.first_sent_wall = time.time()

    async def worker() -> None:
        for item in iterator:  # shared: each item is taken by exactly one worker
            await work(item)
            stats.objects += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.last_done = time.perf_counter()
    return stats


async def create_jobs(
    cluster: Cluster,
    namespace: str,
    bodies: Iterable[dict[str, Any]],
    *,
    concurrency: int = IN_FLIGHT,
) -> LoadStats:
    """Create every body, ``concurrency`` requests in flight; responses released unread."""
    custom = cluster.custom
    stats = LoadStats()

    async def create(body: dict[str, Any]) -> None:
        response = await _retrying(
            lambda: custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body, _preload_content=False
            ),
            stats,
        )
        response.release()

    return await _pool(bodies, create, concurrency, stats)


async def raw_objects(
    cluster: Cluster,
    namespace: str,
    names: Iterable[str],
    *,
    concurrency: int = IN_FLIGHT,
) -> LoadStats:
    """The raw ceiling's load: for each name, create an AlgorithmJob, then write the same two
    status merge-patches the operator would (Running, then Succeeded), uid-guarded."""
    custom = cluster.custom
    stats = LoadStats()

    async def patch(name: str, uid: str, status: dict[str, Any]) -> None:
        body = {"metadata": {"uid": uid}, "status": status}
        response = await _retrying(
            lambda: custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                body,
                _content_type=MERGE_PATCH,
                _preload_content=False,
            ),
            stats,
        )
        response.release()

    async def one(name: str) -> None:
        response = await _retrying(
            lambda: custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                job_body(name, prime_spec()),
                _preload_content=False,
            ),
            stats,
        )
        uid = json.loads(await response.read())["metadata"]["uid"]
        now = datetime.datetime.now(datetime.UTC)
        running = transition(
            Phase.RUNNING,
            Reason.STARTED,
            "attempt 1 of 1",
            previous_conditions=[],
            now=now,
            attempts=1,
            startTime=precise_timestamp(now),
            queuePosition=None,
        )
        await patch(name, uid, running)
        done = transition(
            Phase.SUCCEEDED,
            Reason.SUCCEEDED,
            "the algorithm returned a result",
            previous_conditions=running["conditions"],
            now=now,
            completionTime=precise_timestamp(datetime.datetime.now(datetime.UTC)),
            queuePosition=None,
            result={"number": 97, "isPrime": True, "certainty": "proven"},
            summary="number=97, isPrime=True, certainty=proven",
            durationSeconds=0.001,
        )
        await patch(name, uid, done)

    return await _pool(names, one, concurrency, stats)


def names(prefix: str, count: int, start: int = 0) -> list[str]:
    return [f"{prefix}-{i:06d}" for i in range(start, start + count)]


def round_robin(*groups: list[Any]) -> list[Any]:
    """Interleave lists: a1, b1, c1, a2, b2, ..."""
    return [x for batch in itertools.zip_longest(*groups) for x in batch if x is not None]


@dataclasses.dataclass
class _Waiter:
    name: str
    predicate: Callable[[dict[str, Any]], bool]
    future: asyncio.Future[dict[str, Any]]


class JobWatch:
    """Follows every AlgorithmJob in a namespace through one watch stream.

    For each event it updates the job's phase and counts the objects whose phase is Running
    at that moment (``max_running`` is the peak). ``terminal`` counts jobs seen in a terminal
    phase, ``last_terminal`` is when the last of them was seen (perf_counter).
    """

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.phases: dict[str, str] = {}
        self.running = 0
        self.max_running = 0
        self.terminal = 0
        self.by_phase: dict[str, int] = {}
        self.events = 0
        self.first_running: float | None = None
        self.last_terminal = 0.0
        self.last_terminal_wall = 0.0
        self.start_times: list[float] = []  # status.startTime of terminal jobs (Unix time)
        self.completion_times: list[float] = []
        self.durations: dict[str, float] = {}  # status.durationSeconds by name
        self.keep_durations = False
        self._waiters: dict[str, list[_Waiter]] = {}
        self._target: tuple[int, asyncio.Event] | None = None
        self._task: asyncio.Task[None] | None = None
        self._resource_version = ""
        self._connected = asyncio.Event()
        self.failure: Exception | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name=f"watch {self.namespace}")
        await asyncio.wait_for(self._connected.wait(), timeout=30)
        self._check()

    def _check(self) -> None:
        if self.failure is not None:
            raise RuntimeError(f"the watch of {self.namespace} failed") from self.failure

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        try:
            await self._stream()
        except Exception as exc:  # wake everyone who waits, with the reason
            self.failure = exc
            for waiters in list(self._waiters.values()):
                for waiter in waiters:
                    if not waiter.future.done():
                        waiter.future.set_exception(exc)
            if self._target is not None:
                self._target[1].set()
            self._connected.set()
            raise

    async def _stream(self) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}"
        # A watch without a resourceVersion waits for a fresh watch cache, which etcd 3.4
        # cannot confirm (no progress notifications): it answers ERROR after ~3 s. Start from
        # a list's resourceVersion instead (one list, before the measured run).
        listed = await self.cluster.get_json(path)
        for item in listed.get("items", []):
            self._event({"type": "ADDED", "object": item})
        self._resource_version = listed["metadata"]["resourceVersion"]
        while True:
            params = {"watch": "1", "timeoutSeconds": "3600", "allowWatchBookmarks": "true"}
            if self._resource_version:
                params["resourceVersion"] = self._resource_version
            async with self.cluster.http.get(
                self.cluster.plane.server + path, params=params, timeout=None
            ) as response:
                response.raise_for_status()
                self._connected.set()
                buffer = b""
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            self._event(json.loads(line))

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        if meta.get("resourceVersion"):
            self._resource_version = meta["resourceVersion"]
        if kind == "ERROR":
            raise RuntimeError(f"the watch of {self.namespace} failed: {obj}")
        if kind == "BOOKMARK":
            return
        self.events += 1
        name = meta.get("name", "")
        status = obj.get("status") or {}
        phase = "" if kind == "DELETED" else status.get("phase", "")
        old = self.phases.get(name, "")
        if phase != old:
            now = time.perf_counter()
            self.phases[name] = phase
            if old:
                self.by_phase[old] -= 1
            if phase:
                self.by_phase[phase] = self.by_phase.get(phase, 0) + 1
            if old == "Running":
                self.running -= 1
            if phase == "Running":
                self.running += 1
                self.max_running = max(self.max_running, self.running)
                if self.first_running is None:
                    self.first_running = now
            if phase in TERMINAL and old not in TERMINAL:
                self.terminal += 1
                self.last_terminal = now
                self.last_terminal_wall = time.time()
                if status.get("startTime") and status.get("completionTime"):
                    self.start_times.append(parse_time(status["startTime"]))
                    self.completion_times.append(parse_time(status["completionTime"]))
                if self.keep_durations and status.get("durationSeconds") is not None:
                    self.durations[name] = float(status["durationSeconds"])
                if self._target and self.terminal >= self._target[0]:
                    self._target[1].set()
        for waiter in list(self._waiters.get(name, [])):
            if not waiter.future.done() and waiter.predicate(obj):
                waiter.future.set_result(obj)

    async def wait_terminal(self, count: int, timeout: float) -> None:
        """Until ``count`` jobs have been seen in a terminal phase."""
        event = asyncio.Event()
        self._target = (count, event)
        if self.terminal < count:
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                raise TimeoutError(
                    f"{self.terminal} of {count} jobs finished in {timeout:.0f}s; "
                    f"phases seen: {self.by_phase}"
                ) from None
        self._check()

    def expect(self, name: str, predicate: Callable[[dict[str, Any]], bool]) -> asyncio.Future[Any]:
        """A future for the first event of ``name`` that satisfies ``predicate``; register it
        before the action that causes the event."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(name, predicate, future)
        self._waiters.setdefault(name, []).append(waiter)

        def forget(_: object) -> None:
            waiters = self._waiters.get(name, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(name, None)

        future.add_done_callback(forget)
        return future
