"""The seed's "future improvements", end to end on a real kube-apiserver.

Priority queue and its visibility, the live limit (raise, lower, pause, bad values),
timeouts, cancellation, deletion, retries, per-namespace limits, slot costs, per-job
resource limits.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from harness import Kube, OperatorProcess


def phase(job: dict[str, Any]) -> str | None:
    return job.get("status", {}).get("phase")


def condition(job: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in job.get("status", {}).get("conditions", []) if c["type"] == kind]
    assert found, f"{job['metadata']['name']} has no {kind} condition: {job.get('status')}"
    return found[0]


async def wait_status(op: OperatorProcess, predicate: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = await op.get("/jobs/concurrency/status")
        if predicate(status):
            return status
        assert time.monotonic() < deadline, f"status endpoint never got there: {status}"
        await asyncio.sleep(0.05)


async def test_priority_decides_order_and_pending_jobs_show_their_place(
    kube: Kube, start_operator: Any
) -> None:
    await kube.set_limit("1")
    op = await start_operator()
    await kube.create_job("blocker", {"algorithm": "Sleep", "params": {"seconds": 4}})
    await kube.wait_phase("blocker", "Running")
    waiting = [("a-p0", 0), ("b-p5", 5), ("c-p0", 0), ("d-p9", 9), ("e-p5", 5)]
    for name, priority in waiting:
        await kube.create_job(
            name, {"algorithm": "Sleep", "params": {"seconds": 0.2}, "priority": priority}
        )
    expected = ["d-p9", "b-p5", "e-p5", "a-p0", "c-p0"]
    for position, name in enumerate(expected, start=1):
        job = await kube.wait_for(
            name, lambda j, p=position: j.get("status", {}).get("queuePosition") == p, timeout=10
        )
        assert phase(job) == "Pending"
        assert job["status"]["reason"] == "WaitingForSlot"
        admitted = condition(job, "Admitted")
        assert admitted["status"] == "False" and admitted["reason"] == "WaitingForSlot"
    status = await op.get("/jobs/concurrency/status")
    assert status["queued_jobs"] == 5 and status["paused"] is False
    done = await kube.wait_all([n for n, _ in waiting], {"Succeeded"}, timeout=60)
    started = sorted(done, key=lambda n: done[n]["status"]["startTime"])
    assert started == expected
    assert all("queuePosition" not in job["status"] for job in done.values())


async def test_live_limit_raise_lower_pause_and_bad_values(kube: Kube, start_operator: Any) -> None:
    await kube.set_limit("0")
    op = await start_operator()
    names = [f"s{i}" for i in range(4)]
    for name in names:
        await kube.create_job(name, {"algorithm": "Sleep", "params": {"seconds": 2}})
    job = await kube.wait_for("s0", lambda j: j.get("status", {}).get("reason") == "Paused")
    assert "maxConcurrentJobs is 0" in job["status"]["message"]
    status = await wait_status(op, lambda s: s["queued_jobs"] == 4)
    assert status["paused"] is True and status["running_jobs"] == 0

    changed = time.monotonic()
    await kube.set_limit("2")
    status = await wait_status(op, lambda s: s["running_jobs"] == 2, timeout=5)
    assert time.monotonic() - changed < 1.0, "raising the limit took over a second"
    assert status["max_concurrent"] == 2 and status["paused"] is False

    await kube.set_limit("1")  # two run; none may start until running < 1
    await wait_status(op, lambda s: s["max_concurrent"] == 1, timeout=5)
    samples = []
    while len(samples) < 400:
        s = await op.get("/jobs/concurrency/status")
        samples.append(s)
        if s["queued_jobs"] == 1 and s["running_jobs"] == 1:
            break
        await asyncio.sleep(0.02)
    running = [s["running_jobs"] for s in samples]
    first_drop = next(i for i, n in enumerate(running) if n < 2)
    # After the first of the two finishes, the count may not climb back to 2: nothing started.
    assert max(running[first_drop:]) <= 1, running

    await kube.set_limit("abc")
    await asyncio.sleep(1.5)  # give a (wrong) change time to show
    assert (await op.get("/jobs/concurrency/status"))["max_concurrent"] == 1
    assert "maxConcurrentJobs='abc'" in op.log_text()
    await kube.set_limit("4")
    await kube.wait_all(names, {"Succeeded"}, timeout=60)


async def test_timeout_really_stops_cpu_work_and_frees_the_slot(
    kube: Kube, start_operator: Any
) -> None:
    await kube.set_config(maxConcurrentJobs="1", defaultTimeoutSeconds="2")
    op = await start_operator()
    await kube.create_job(
        "spin", {"algorithm": "Burn", "params": {"seconds": 60}, "timeoutSeconds": 1}
    )
    await kube.create_job("spin-default", {"algorithm": "Burn", "params": {"seconds": 60}})
    job = await kube.wait_phase("spin", "Failed", timeout=20)
    assert job["status"]["reason"] == "Timeout"
    assert 1 <= job["status"]["durationSeconds"] < 3
    job = await kube.wait_phase("spin-default", "Failed", timeout=20)
    assert job["status"]["reason"] == "Timeout" and "2s" in job["status"]["message"]
    await wait_status(op, lambda s: s["running_jobs"] == 0 and s["available_slots"] == 1)
    # No process below the operator is still burning CPU.
    before = cpu_seconds(op.descendants())
    await asyncio.sleep(1)
    assert cpu_seconds(op.descendants()) - before < 0.5  # a busy worker would add ~1.0


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks
    return total


async def test_cancel_pending_and_running_jobs(kube: Kube, start_operator: Any) -> None:
    await kube.set_limit("1")
    op = await start_operator()
    await kube.create_job("busy", {"algorithm": "Burn", "params": {"seconds": 60}})
    await kube.create_job("queued", {"algorithm": "Sleep", "params": {"seconds": 0.1}})
    await kube.wait_phase("busy", "Running")
    await kube.wait_phase("queued", "Pending")

    await kube.patch_spec("queued", {"cancel": True})
    job = await kube.wait_phase("queued", "Cancelled")
    assert "startTime" not in job["status"] and job["status"]["reason"] == "Cancelled"

    asked = time.monotonic()
    await kube.patch_spec("busy", {"cancel": True})
    await wait_status(op, lambda s: s["running_jobs"] == 0, timeout=5)
    assert time.monotonic() - asked < 1.0, "cancelling a running job took over a second"
    job = await kube.wait_phase("busy", "Cancelled")
    assert condition(job, "Cancelled")["status"] == "True"


async def test_deleting_a_running_job_stops_it_and_frees_its_slot(
    kube: Kube, start_operator: Any
) -> None:
    await kube.set_limit("1")
    op = await start_operator()
    await kube.create_job("doomed", {"algorithm": "Burn", "params": {"seconds": 60}})
    await kube.create_job("next", {"algorithm": "Sleep", "params": {"seconds": 0.1}})
    job = await kube.wait_phase("doomed", "Running")
    assert not job["metadata"].get("finalizers"), "a finalizer would block deletion"
    await kube.delete_job("doomed")
    await kube.wait_phase("next", "Succeeded", timeout=10)
    await wait_status(op, lambda s: s["running_jobs"] == 0)


async def test_failed_attempts_are_retried_with_backoff(kube: Kube, start_operator: Any) -> None:
    await kube.set_config(maxConcurrentJobs="2", retryBackoffBaseSeconds="0.2")
    await start_operator()
    await kube.create_job(
        "flaky",
        {"algorithm": "Burn", "params": {"seconds": 5}, "timeoutSeconds": 1, "backoffLimit": 2},
    )
    await kube.create_job(
        "invalid", {"algorithm": "Sleep", "params": {"seconds": -1}, "backoffLimit": 3}
    )
    job = await kube.wait_for(
        "flaky", lambda j: j.get("status", {}).get("reason") == "RetryBackoff", timeout=15
    )
    assert phase(job) == "Pending" and "attempt 1 failed" in job["status"]["message"]
    job = await kube.wait_phase("flaky", "Failed", timeout=30)
    assert job["status"]["attempts"] == 3 and job["status"]["reason"] == "Timeout"
    job = await kube.wait_phase("invalid", "Failed")
    assert job["status"].get("attempts", 0) == 0  # deterministic errors are not retried


async def test_namespace_limit_holds_even_with_free_global_slots(
    kube: Kube, start_operator: Any
) -> None:
    team_b = kube.other_namespace()
    await kube.set_config(maxConcurrentJobs="4", namespaceLimits=f"{{{kube.namespace}: 1}}")
    op = await start_operator(JOBGATE_WATCH_NAMESPACES=f"{kube.namespace},{team_b.namespace}")
    for i in range(3):
        await kube.create_job(f"a{i}", {"algorithm": "Sleep", "params": {"seconds": 1.5}})
    await team_b.create_job("b0", {"algorithm": "Sleep", "params": {"seconds": 1.5}})
    await team_b.wait_phase("b0", "Running", timeout=10)
    job = await kube.wait_for(
        "a2", lambda j: j.get("status", {}).get("reason") == "GroupLimit", timeout=10
    )
    assert kube.namespace in job["status"]["message"]
    peak_a = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = await op.get("/jobs/concurrency/status")
        peak_a = max(peak_a, status["namespaces"].get(kube.namespace, 0))
        jobs = await kube.list_jobs()
        if all(phase(j) == "Succeeded" for j in jobs) and len(jobs) == 3:
            break
        await asyncio.sleep(0.05)
    assert peak_a == 1
    await team_b.wait_phase("b0", "Succeeded")


async def test_slot_cost_per_algorithm(kube: Kube, start_operator: Any) -> None:
    await kube.set_config(maxConcurrentJobs="3", algorithmSlots="{Burn: 2}")
    op = await start_operator()
    for name in ("heavy-1", "heavy-2"):
        await kube.create_job(name, {"algorithm": "Burn", "params": {"seconds": 1}})
    status = await wait_status(op, lambda s: s["running_jobs"] == 1)
    assert status["slots_in_use"] == 2 and status["available_slots"] == 1
    await asyncio.sleep(0.3)
    assert (await op.get("/jobs/concurrency/status"))["running_jobs"] == 1
    await kube.wait_all(["heavy-1", "heavy-2"], {"Succeeded"}, timeout=30)


async def test_per_job_resource_limits_end_in_resource_limit(
    kube: Kube, start_operator: Any
) -> None:
    await start_operator()
    await kube.create_job(
        "hog",
        {
            "algorithm": "Burn",
            "params": {"seconds": 0.1, "memoryMiB": 512},
            "resources": {"memoryMiB": 64},
        },
    )
    await kube.create_job(
        "spinner",
        {"algorithm": "Burn", "params": {"seconds": 30}, "resources": {"cpuSeconds": 1}},
    )
    await kube.create_job(
        "fits",
        {
            "algorithm": "Burn",
            "params": {"seconds": 0.1, "memoryMiB": 16},
            "resources": {"memoryMiB": 256, "cpuSeconds": 5},
        },
    )
    await kube.create_job(
        "sleep-with-limits",
        {"algorithm": "Sleep", "params": {"seconds": 0}, "resources": {"memoryMiB": 64}},
    )
    job = await kube.wait_phase("hog", "Failed", timeout=20)
    assert job["status"]["reason"] == "ResourceLimit" and "64 MiB" in job["status"]["message"]
    job = await kube.wait_phase("spinner", "Failed", timeout=20)
    assert job["status"]["reason"] == "ResourceLimit" and "cpuSeconds" in job["status"]["message"]
    assert job["status"]["durationSeconds"] < 5
    job = await kube.wait_phase("fits", "Succeeded", timeout=20)
    assert job["status"]["result"]["allocatedMiB"] == 16
    job = await kube.wait_phase("sleep-with-limits", "Failed")
    assert job["status"]["reason"] == "InvalidSpec"


async def test_kill_9_mid_run_loses_nothing_and_keeps_the_limit(
    kube: Kube, start_operator: Any
) -> None:
    """SIGKILL the operator with 200 jobs queued or running; a new one finishes them all."""
    limit = 20
    await kube.set_limit(str(limit))
    first = await start_operator()
    names = [f"j{i:03d}" for i in range(200)]
    burners = [{"algorithm": "Burn", "params": {"seconds": 60}, "priority": 1}] * 2
    sleepers = [{"algorithm": "Sleep", "params": {"seconds": 1}}] * 198
    await asyncio.gather(
        *(kube.create_job(n, s) for n, s in zip(names, burners + sleepers, strict=True))
    )
    await wait_status(first, lambda s: s["running_jobs"] == limit and s["queued_jobs"] > 100)
    # The endpoint counts a job running the moment it starts; its Running status may still be
    # queued behind the 200 creates. Kill once the API shows the (60 s) Burn jobs Running.
    await asyncio.gather(*(kube.wait_phase(burner, "Running") for burner in names[:2]))
    workers = first.descendants()
    assert workers, "the Burn jobs should run in worker processes"
    first.stop(signal.SIGKILL)

    # The old operator's workers do not outlive it (PR_SET_PDEATHSIG).
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in workers):
        assert time.monotonic() < deadline, "orphaned worker processes are still running"
        await asyncio.sleep(0.1)

    before = {j["metadata"]["name"]: j.get("status", {}) for j in await kube.list_jobs_settled()}
    was_running = {n for n, s in before.items() if s.get("phase") == "Running"}
    assert was_running, "some jobs should have been Running at the kill"
    restarted = time.monotonic()
    second = await start_operator()
    samples: list[dict[str, Any]] = []
    while True:
        status = await second.get("/jobs/concurrency/status")
        samples.append(status)
        if status["queued_jobs"] == 0 and status["running_jobs"] <= 2:  # only the burners
            break
        assert time.monotonic() - restarted < 120, f"not drained: {status}"
        await asyncio.sleep(0.05)
    for burner in names[:2]:
        await kube.patch_spec(burner, {"cancel": True})
    done = await kube.wait_all(names, {"Succeeded", "Cancelled"}, timeout=60)
    assert max(s["running_jobs"] for s in samples) <= limit
    for name, job in done.items():
        status = job["status"]
        if name in names[2:]:
            assert status["phase"] == "Succeeded", (name, status)
        expected_attempts = 2 if name in was_running else 1
        if name not in names[:2]:
            assert status["attempts"] == expected_attempts, (name, status, name in was_running)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
