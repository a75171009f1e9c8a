"""Two replicas with leader election: one runs jobs, the other stands by and takes over."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

from harness import Kube, OperatorProcess

ELECTION = {
    "JOBGATE_STANDALONE": "false",
    "JOBGATE_LEASE_SECONDS": "4",
    "JOBGATE_LEASE_RETRY_SECONDS": "0.5",
    "JOBGATE_LEASE_RENEW_DEADLINE": "3",
}


async def wait_leading(op: OperatorProcess, timeout: float) -> float:
    started = time.monotonic()
    while await op.status_code("/jobs/concurrency/status") != 200:
        assert time.monotonic() - started < timeout, f"no takeover in {timeout}s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_standby_takes_over_without_losing_or_doubling_jobs(
    kube: Kube, start_operator: Any
) -> None:
    limit = 5
    await kube.set_limit(str(limit))
    first = await start_operator(**ELECTION)
    await wait_leading(first, timeout=10)
    second = await start_operator(ready=False, **ELECTION)
    assert await second.status_code("/jobs/concurrency/status") == 503  # standing by
    assert await second.status_code("/readyz") == 200  # ready to take over
    assert "jobgate_leader 0.0" in await second.get("/metrics")
    assert "jobgate_leader 1.0" in await first.get("/metrics")

    names = [f"ha-{i:02d}" for i in range(30)]
    await asyncio.gather(
        *(kube.create_job(n, {"algorithm": "Sleep", "params": {"seconds": 1}}) for n in names)
    )
    while (await first.get("/jobs/concurrency/status"))["running_jobs"] < limit:
        await asyncio.sleep(0.05)
    assert await second.status_code("/jobs/concurrency/status") == 503  # still one leader

    first.stop(signal.SIGKILL)
    running_at_kill = {
        j["metadata"]["name"]
        for j in await kube.list_jobs_settled()
        if j.get("status", {}).get("phase") == "Running"
    }
    takeover = await wait_leading(second, timeout=20)
    assert takeover < 4 + 3, f"takeover took {takeover:.1f}s with a 4s lease"

    peak = 0
    while True:
        status = await second.get("/jobs/concurrency/status")
        peak = max(peak, status["running_jobs"])
        if status["running_jobs"] == 0 and status["queued_jobs"] == 0:
            break
        await asyncio.sleep(0.05)
    done = await kube.wait_all(names, {"Succeeded"}, timeout=60)
    assert peak <= limit
    for name, job in done.items():
        expected = 2 if name in running_at_kill else 1
        assert job["status"]["attempts"] == expected, (name, job["status"])

    # A clean stop hands the Lease over at once: a third replica leads within a second or so.
    third = await start_operator(ready=False, **ELECTION)
    second.stop(signal.SIGTERM)
    handover = await wait_leading(third, timeout=10)
    assert handover < 2.5, f"clean hand-over took {handover:.1f}s"
