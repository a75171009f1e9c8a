"""The scheduler: order, limit, status transitions, cancellation and deletion, no cluster."""

from __future__ import annotations

import asyncio

import pytest
from fakes import World, job_body


async def test_runs_up_to_the_limit_and_queues_the_rest(world: World) -> None:
    for name in "abcd":
        world.hold(name)
    await world.settle()
    world.scheduler.report_queue()
    assert world.holds.running == {"a", "b"}
    assert world.scheduler.snapshot()["running_jobs"] == 2
    assert world.scheduler.snapshot()["available_slots"] == 0
    assert world.scheduler.snapshot()["queued_jobs"] == 2
    assert world.sink.status["c"]["phase"] == "Pending"
    assert world.sink.status["c"]["reason"] == "WaitingForSlot"
    assert world.sink.status["c"]["queuePosition"] == 1
    assert world.sink.status["d"]["queuePosition"] == 2
    world.holds.event("a").set()
    await world.until(lambda: world.holds.running == {"b", "c"})
    assert world.sink.status["a"]["phase"] == "Succeeded"
    assert world.sink.status["a"]["result"] == {"held": "a"}


async def test_never_more_than_limit_with_many_jobs() -> None:
    w = World(limit=5)
    names = [f"j{i}" for i in range(60)]
    for name in names:
        w.hold(name)
    for name in names:
        w.holds.event(name).set()
        await asyncio.sleep(0)
    await w.until(lambda: all(w.sink.status.get(n, {}).get("phase") == "Succeeded" for n in names))
    assert w.holds.max_running == 5
    assert w.scheduler.gate.peak == 5
    await w.scheduler.close()


async def start_order(w: World, count: int) -> list[str]:
    """Release jobs one at a time (limit 1) and record which one the scheduler starts next."""
    started = []
    for _ in range(count):
        await w.until(lambda: len(w.holds.running) == 1)
        (name,) = w.holds.running
        started.append(name)
        w.holds.event(name).set()
        await w.until(lambda name=name: name not in w.holds.running)
    return started


async def test_higher_priority_first_then_creation_order() -> None:
    w = World(limit=1)
    for name, priority in [
        ("first", 0),
        ("second", 0),
        ("low", -1),
        ("old", 5),
        ("new", 5),
        ("mid", 0),
    ]:
        w.hold(name, priority=priority)
    await w.settle()
    assert await start_order(w, 6) == ["first", "old", "new", "second", "mid", "low"]
    await w.scheduler.close()


async def test_bootstrap_orders_by_priority_not_list_order() -> None:
    w = World(limit=1)
    bodies = [
        job_body("z-low", {"algorithm": "Hold", "params": {"name": "z-low"}}, rv=10),
        job_body(
            "y-high", {"algorithm": "Hold", "params": {"name": "y-high"}, "priority": 9}, rv=30
        ),
        job_body(
            "x-mid-old",
            {"algorithm": "Hold", "params": {"name": "x-mid-old"}, "priority": 1},
            rv=20,
        ),
        job_body(
            "w-mid-new",
            {"algorithm": "Hold", "params": {"name": "w-mid-new"}, "priority": 1},
            rv=25,
        ),
    ]
    w.scheduler.bootstrap(bodies)
    assert await start_order(w, 4) == ["y-high", "x-mid-old", "w-mid-new", "z-low"]
    await w.scheduler.close()


async def test_status_goes_pending_running_succeeded_with_times(world: World) -> None:
    world.hold("a")
    world.hold("b")
    world.hold("c")
    await world.settle()
    world.scheduler.report_queue()
    world.holds.event("a").set()
    world.holds.event("c").set()
    await world.until(lambda: world.sink.status["c"].get("phase") == "Succeeded")
    assert world.sink.phases("c") == ["Pending", "Running", "Succeeded"]
    assert world.sink.phases("a") == ["Running", "Succeeded"]
    final = world.sink.status["c"]
    assert final["attempts"] == 1
    assert final["startTime"] <= final["completionTime"]
    assert final["durationSeconds"] >= 0
    conditions = {c["type"]: c["status"] for c in final["conditions"]}
    assert conditions == {"Admitted": "True", "Running": "False", "Complete": "True"}
    assert "queuePosition" not in final


async def test_bad_specs_fail_with_reasons_and_take_no_slot(world: World) -> None:
    cases = {
        "unknown": ({"algorithm": "NoSuch"}, "UnknownAlgorithm", "NoSuch"),
        "abc": (
            {"algorithm": "PrimeChecker", "params": {"number": "abc"}},
            "InvalidSpec",
            "not a decimal integer",
        ),
        "missing": ({"algorithm": "PrimeChecker"}, "InvalidSpec", "params.number is required"),
        "extra": (
            {"algorithm": "PrimeChecker", "params": {"number": 7, "nubmer": 8}},
            "InvalidSpec",
            "nubmer is not a parameter",
        ),
        "huge-int": (
            {"algorithm": "PrimeChecker", "params": {"number": 2**64 + 13}},
            "InvalidSpec",
            "decimal string",
        ),
    }
    for name, (spec, _, _) in cases.items():
        world.scheduler.observe(job_body(name, spec))
    await world.settle()
    for name, (_, reason, words) in cases.items():
        status = world.sink.status[name]
        assert status["phase"] == "Failed", name
        assert status["reason"] == reason, name
        assert words in status["message"], name
        assert {c["type"]: c["status"] for c in status["conditions"]}["Failed"] == "True"
    assert world.scheduler.gate.peak == 0


async def test_cancel_a_pending_job_never_runs_it(world: World) -> None:
    world.hold("a")
    world.hold("b")
    body = world.hold("c")
    await world.settle()
    world.scheduler.report_queue()
    body["spec"]["cancel"] = True
    body["metadata"]["generation"] = 2
    world.scheduler.observe(body)
    await world.settle()
    assert world.sink.status["c"]["phase"] == "Cancelled"
    assert world.scheduler.snapshot()["queued_jobs"] == 0
    assert "c" not in world.holds.events or not world.holds.event("c").is_set()
    assert world.sink.phases("c") == ["Pending", "Cancelled"]


async def test_cancel_a_running_job_frees_its_slot(world: World) -> None:
    body = world.hold("a")
    world.hold("b")
    world.hold("c")
    await world.settle()
    body["spec"]["cancel"] = True
    body["metadata"]["generation"] = 2
    world.scheduler.observe(body)
    await world.until(lambda: "c" in world.holds.running)
    assert world.sink.status["a"]["phase"] == "Cancelled"
    assert world.sink.status["a"]["reason"] == "Cancelled"
    assert world.scheduler.gate.in_use == 2


async def test_deleting_a_running_job_frees_its_slot_and_writes_nothing(world: World) -> None:
    body = world.hold("a")
    world.hold("b")
    world.hold("c")
    await world.settle()
    writes_before = len(world.sink.patches)
    world.scheduler.forget(body["metadata"]["uid"])
    await world.until(lambda: "c" in world.holds.running)
    assert "a" not in world.holds.running
    assert [ref.name for ref, _ in world.sink.patches[writes_before:]] == ["c"]


async def test_own_status_echo_does_not_rerun_a_finished_job(world: World) -> None:
    body = world.hold("a")
    world.holds.event("a").set()
    await world.until(lambda: world.sink.status["a"].get("phase") == "Succeeded")
    body["status"] = {"phase": "Running"}  # a late echo of the Running write
    world.scheduler.observe(body)
    await world.settle()
    assert world.sink.phases("a") == ["Running", "Succeeded"]


async def test_restart_requeues_a_running_job_and_counts_the_attempt(world: World) -> None:
    body = job_body(
        "r",
        {"algorithm": "Hold", "params": {"name": "r"}},
        status={"phase": "Running", "attempts": 1},
    )
    world.scheduler.bootstrap([body])
    await world.until(lambda: "r" in world.holds.running)
    assert world.sink.status["r"]["attempts"] == 2


async def test_failed_attempt_is_retried_up_to_backoff_limit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.set_policy(retry_base_seconds=0.01)
    body = job_body(
        "f", {"algorithm": "Hold", "params": {"name": "f", "fail": True}, "backoffLimit": 1}
    )
    world.holds.event("f").set()
    world.scheduler.observe(body)
    await world.until(lambda: world.sink.status.get("f", {}).get("phase") == "Failed")
    assert world.sink.status["f"]["attempts"] == 2
    assert world.sink.status["f"]["reason"] == "AlgorithmError"
    assert "failed on purpose" in world.sink.status["f"]["message"]


async def test_raising_the_limit_starts_queued_jobs_at_once(world: World) -> None:
    for name in "abcde":
        world.hold(name)
    await world.settle()
    world.set_policy(max_concurrent_jobs=4)
    assert len(world.holds.running) <= 4
    await world.settle()
    assert world.holds.running == {"a", "b", "c", "d"}
    world.set_policy(max_concurrent_jobs=0)
    world.holds.event("a").set()
    await world.until(lambda: "a" not in world.holds.running)
    await world.settle()
    assert "e" not in world.holds.running


async def test_webhook_called_after_the_slot_is_released(world: World) -> None:
    body = job_body(
        "w",
        {
            "algorithm": "Hold",
            "params": {"name": "w"},
            "webhook": {"url": "http://127.0.0.1:9/hook"},
        },
    )
    world.scheduler.observe(body)
    world.holds.event("w").set()
    await world.until(lambda: bool(world.notifier.calls))
    _, webhook, status = world.notifier.calls[0]
    assert webhook.url == "http://127.0.0.1:9/hook"
    assert status["phase"] == "Succeeded"
    assert world.scheduler.gate.in_use == 0


async def test_prime_checker_runs_in_a_worker_process(world: World) -> None:
    world.scheduler.observe(
        job_body("p", {"algorithm": "PrimeChecker", "params": {"number": "2305843009213693951"}})
    )
    await world.until(
        lambda: world.sink.status.get("p", {}).get("phase") == "Succeeded", timeout=30
    )
    assert world.sink.status["p"]["result"]["isPrime"] is True
