"""In-memory fakes for unit tests: a scheduler wired to a recording sink, no cluster."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

from jobgate.algorithms import Algorithm, AlgorithmRegistry, Params, Result
from jobgate.algorithms.primes import PRIME_CHECKER
from jobgate.config import Policy
from jobgate.kube import JobRef
from jobgate.metrics import Metrics
from jobgate.runner import AlgorithmRunner
from jobgate.scheduler import Scheduler
from jobgate.spec import Webhook


class RecordingSink:
    """Keeps every status patch, and the merged status per job, as the API server would."""

    def __init__(self) -> None:
        self.patches: list[tuple[JobRef, dict[str, Any]]] = []
        self.status: dict[str, dict[str, Any]] = {}

    def write(self, key: JobRef, patch: dict[str, Any], **_: bool) -> None:
        self.patches.append((key, patch))
        merged = self.status.setdefault(key.name, {})
        for k, v in patch.items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v

    def discard(self, key: JobRef) -> None:
        pass

    def phases(self, name: str) -> list[str]:
        return [p["phase"] for ref, p in self.patches if ref.name == name and "phase" in p]


class RecordingNotifier:
    def __init__(self) -> None:
        self.calls: list[tuple[JobRef, Webhook, dict[str, Any]]] = []
        self.resumed: list[JobRef] = []

    def notify(self, job: JobRef, webhook: Webhook, status: dict[str, Any]) -> None:
        self.calls.append((job, webhook, status))

    def resume_if_owed(self, job: JobRef, webhook: Webhook, body: Mapping[str, Any]) -> None:
        self.resumed.append(job)

    def forget(self, uid: str) -> None:
        pass


class Holds:
    """A test algorithm ``Hold``: each run waits until the test releases it by name."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.running: set[str] = set()
        self.max_running = 0

    def event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    async def wait(self, params: Params) -> Result:
        name = params["name"]
        self.running.add(name)
        self.max_running = max(self.max_running, len(self.running))
        try:
            await self.event(name).wait()
            if params.get("fail"):
                raise RuntimeError(f"{name} failed on purpose")
            return {"held": name}
        finally:
            self.running.discard(name)

    def algorithm(self, slots: int = 1, name: str = "Hold") -> Algorithm:
        def check(params: Mapping[str, Any]) -> Params:
            return dict(params)

        return Algorithm(name=name, check_params=check, wait=self.wait, slots=slots)


_uids = itertools.count(1)


def job_body(
    name: str,
    spec: dict[str, Any],
    *,
    namespace: str = "ns",
    rv: int | None = None,
    status: dict[str, Any] | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    n = next(_uids)
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": uid or f"uid-{name}-{n}",
            "generation": 1,
            "resourceVersion": str(rv if rv is not None else 1000 + n),
        },
        "spec": spec,
        "status": status or {},
    }


class World:
    def __init__(self, limit: int) -> None:
        self.holds = Holds()
        self.sink = RecordingSink()
        self.notifier = RecordingNotifier()
        self.metrics = Metrics()
        registry = AlgorithmRegistry(
            [PRIME_CHECKER, self.holds.algorithm(), self.holds.algorithm(slots=2, name="HeavyHold")]
        )
        self.runner = AlgorithmRunner(1)
        self.scheduler = Scheduler(
            policy=Policy(max_concurrent_jobs=limit, default_timeout_seconds=30),
            algorithms=registry,
            runner=self.runner,
            sink=self.sink,
            notifier=self.notifier,
            metrics=self.metrics,
        )

    def set_policy(self, **changes: Any) -> None:
        self.scheduler.apply_policy(dataclasses.replace(self.scheduler.policy, **changes))

    def hold(self, name: str, **spec: Any) -> dict[str, Any]:
        body = job_body(name, {"algorithm": "Hold", "params": {"name": name}, **spec})
        self.scheduler.observe(body)
        return body

    async def settle(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    async def until(self, predicate: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.001)
