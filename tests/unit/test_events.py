"""Events are a side channel: filtered by mode, shed (Normal ones only) when behind."""

from __future__ import annotations

import asyncio
from typing import Any

from jobgate.events import EventRecorder
from jobgate.kube import JobRef
from jobgate.metrics import Metrics

JOB = JobRef("ns", "job", "uid-1")


class Poster:
    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, body: dict[str, Any]) -> None:
        await self.gate.wait()
        self.posted.append(body)


async def drain(recorder: EventRecorder, poster: Poster, count: int) -> None:
    async with asyncio.timeout(5):
        while len(poster.posted) < count:
            await asyncio.sleep(0)
    await recorder.close()


def dropped(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("jobgate_events_dropped_total") or 0.0


async def test_an_event_names_its_job_and_reason() -> None:
    poster, metrics = Poster(), Metrics()
    recorder = EventRecorder(poster, metrics)
    recorder.start()
    recorder.job(JOB, "Started", "attempt 1 started")
    await drain(recorder, poster, 1)
    (body,) = poster.posted
    assert body["involvedObject"] == {
        "apiVersion": "jobgate.dev/v1alpha1",
        "kind": "AlgorithmJob",
        "name": "job",
        "namespace": "ns",
        "uid": "uid-1",
    }
    assert (body["reason"], body["type"], body["metadata"]["namespace"]) == (
        "Started",
        "Normal",
        "ns",
    )


async def test_warnings_mode_posts_only_warnings_and_none_posts_nothing() -> None:
    poster, metrics = Poster(), Metrics()
    warnings = EventRecorder(poster, metrics, mode="warnings")
    warnings.start()
    warnings.job(JOB, "Started", "normal")
    warnings.job(JOB, "Failed", "warning", "Warning")
    await drain(warnings, poster, 1)
    assert [b["reason"] for b in poster.posted] == ["Failed"]
    silent = EventRecorder(poster, metrics, mode="none")
    silent.start()
    silent.job(JOB, "Failed", "warning", "Warning")
    assert len(poster.posted) == 1 and dropped(metrics) == 0


async def test_normal_events_are_shed_past_their_own_backlog_warnings_kept() -> None:
    poster, metrics = Poster(), Metrics()
    poster.gate.clear()  # the API server is slow
    recorder = EventRecorder(poster, metrics, workers=1, backlog_limit=3)
    recorder.start()
    for i in range(6):
        recorder.job(JOB, f"Normal{i}", "n")
    recorder.job(JOB, "Failed", "w", "Warning")
    poster.gate.set()
    await drain(recorder, poster, 4)
    reasons = [b["reason"] for b in poster.posted]
    assert "Failed" in reasons and len(reasons) == 4
    assert dropped(metrics) == 3


async def test_normal_events_yield_while_status_writes_are_behind() -> None:
    poster, metrics = Poster(), Metrics()
    backlog = [500]
    recorder = EventRecorder(
        poster, metrics, status_backlog=lambda: backlog[0], status_backlog_limit=200
    )
    recorder.start()
    recorder.job(JOB, "Started", "shed: status is behind")
    recorder.job(JOB, "Failed", "kept", "Warning")
    backlog[0] = 10
    recorder.job(JOB, "Succeeded", "posted: status caught up")
    await drain(recorder, poster, 2)
    assert sorted(b["reason"] for b in poster.posted) == ["Failed", "Succeeded"]
    assert dropped(metrics) == 1
