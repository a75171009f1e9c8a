"""The status writer coalesces, keeps per-job order, retries, and drops deleted objects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from jobgate.kube import Gone
from jobgate.writer import StatusWriter


class Server:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.fail_next = 0
        self.gone: set[str] = set()
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, key: str, patch: dict[str, Any]) -> None:
        await self.gate.wait()
        if key in self.gone:
            raise Gone(key)
        if self.fail_next:
            self.fail_next -= 1
            raise ApiException(status=503, reason="unavailable")
        self.received.append((key, dict(patch)))


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("jobgate.writer.RETRY_FIRST_DELAY", 0.001)


async def test_patches_waiting_for_one_job_merge_into_one_write() -> None:
    server = Server()
    server.gate.clear()  # the server is slow: patches pile up
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=1)
    writer.start()
    writer.write("a", {"phase": "Running", "startTime": "t0"})
    await asyncio.sleep(0)  # "a" is now in flight
    writer.write("a", {"phase": "Running", "attempts": 1})
    writer.write("a", {"phase": "Succeeded", "result": {"x": 1}})
    server.gate.set()
    await writer.flush()
    await writer.close()
    assert server.received == [
        ("a", {"phase": "Running", "startTime": "t0"}),
        ("a", {"phase": "Succeeded", "attempts": 1, "result": {"x": 1}}),
    ]


async def test_one_request_per_job_in_flight_keeps_order() -> None:
    server = Server()
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=8)
    writer.start()
    for i in range(50):
        writer.write("a", {"step": i})
        writer.write(f"other{i}", {"step": i})
        await asyncio.sleep(0)
    await writer.flush()
    await writer.close()
    steps = [p["step"] for k, p in server.received if k == "a"]
    assert steps == sorted(steps) and steps[-1] == 49


async def test_server_errors_are_retried_until_the_write_lands() -> None:
    server = Server()
    server.fail_next = 3
    outcomes: list[bool] = []
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=1, on_write=outcomes.append)
    writer.start()
    writer.write("a", {"phase": "Succeeded"})
    await writer.flush()
    await writer.close()
    assert server.received == [("a", {"phase": "Succeeded"})]
    assert outcomes == [False, False, False, True]


async def test_deleted_object_is_dropped() -> None:
    server = Server()
    server.gone.add("a")
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=1)
    writer.start()
    writer.write("a", {"phase": "Succeeded"})
    writer.write("b", {"phase": "Succeeded"})
    await writer.flush()
    await writer.close()
    assert server.received == [("b", {"phase": "Succeeded"})]


async def test_running_patch_waits_for_earlier_terminal_patches_to_land() -> None:
    """A watcher never sees the new job Running while the job it replaces still is."""
    server = Server()
    server.gate.clear()
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=4)
    writer.start()
    writer.write("old", {"phase": "Succeeded"}, settles=True)
    writer.write("new", {"phase": "Running"}, after_settled=True)
    writer.write("pending", {"phase": "Pending"})
    await asyncio.sleep(0.01)
    server.gate.set()
    await writer.flush()
    await writer.close()
    order = [key for key, _ in server.received]
    assert order.index("old") < order.index("new")
    assert set(order) == {"old", "new", "pending"}


async def test_held_running_patch_merges_with_its_own_terminal_patch() -> None:
    server = Server()
    server.gate.clear()
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=2)
    writer.start()
    writer.write("old", {"phase": "Succeeded"}, settles=True)
    writer.write("new", {"phase": "Running", "startTime": "t"}, after_settled=True)
    writer.write("new", {"phase": "Succeeded"}, settles=True)
    server.gate.set()
    await writer.flush()
    await writer.close()
    assert server.received == [
        ("old", {"phase": "Succeeded"}),
        ("new", {"phase": "Succeeded", "startTime": "t"}),
    ]


async def test_deleted_terminal_job_releases_held_patches() -> None:
    server = Server()
    server.gone.add("old")
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=1)
    writer.start()
    writer.write("old", {"phase": "Succeeded"}, settles=True)
    writer.write("new", {"phase": "Running"}, after_settled=True)
    await writer.flush()
    writer.discard("old")
    await writer.close()
    assert server.received == [("new", {"phase": "Running"})]


async def test_running_merged_into_a_queued_pending_still_waits() -> None:
    """The Running patch of a job whose Pending patch is still queued must not ride it out
    ahead of the terminal patch of the job whose slot it took."""
    server = Server()
    server.gate.clear()
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=4)
    writer.start()
    writer.write("busy", {"phase": "Running"})
    await asyncio.sleep(0)  # one request in flight, the server is slow
    writer.write("next", {"phase": "Pending"})  # queued behind it
    writer.write("old", {"phase": "Succeeded"}, settles=True)
    writer.write("next", {"phase": "Running"}, after_settled=True)  # merges into Pending
    server.gate.set()
    await writer.flush()
    await writer.close()
    order = [key for key, _ in server.received]
    assert order.index("old") < order.index("next")
    assert server.received[order.index("next")][1] == {"phase": "Running"}


async def test_restarted_jobs_that_run_again_do_not_wait_for_each_other() -> None:
    """After a restart, jobs shown Running are written Pending (settling) and some start
    again at once: their merged patches must not wait on each other (a deadlock), while a
    job that was not Running still waits for the ones leaving Running."""
    server = Server()
    server.gate.clear()
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=2)
    writer.start()
    for key in ("a", "b", "c"):
        writer.write(key, {"phase": "Pending"}, settles=True)
    writer.write("a", {"phase": "Running"}, after_settled=True)
    writer.write("b", {"phase": "Running"}, after_settled=True)
    writer.write("new", {"phase": "Running"}, after_settled=True)
    server.gate.set()
    async with asyncio.timeout(5):
        await writer.flush()
    await writer.close()
    order = [key for key, _ in server.received]
    assert sorted(order) == ["a", "b", "c", "new"]
    assert order.index("c") < order.index("new")


async def test_many_patches_held_on_the_same_ticket_are_all_released() -> None:
    """Held patches tie on their ticket; keys (here JobRefs) need no ordering."""
    from jobgate.kube import JobRef

    sent: list[JobRef] = []
    gate = asyncio.Event()

    async def send(key: JobRef, patch: dict[str, Any]) -> None:
        await gate.wait()
        sent.append(key)

    writer: StatusWriter[JobRef] = StatusWriter(send, concurrency=4)
    writer.start()
    old = JobRef("ns", "old", "u-old")
    writer.write(old, {"phase": "Succeeded"}, settles=True)
    new = [JobRef("ns", f"n{i}", f"u{i}") for i in range(20)]
    for ref in new:
        writer.write(ref, {"phase": "Running"}, after_settled=True)
    gate.set()
    async with asyncio.timeout(5):
        await writer.flush()
    await writer.close()
    assert sent[0] == old and sorted(sent[1:], key=str) == sorted(new, key=str)


async def test_terminal_patch_folded_into_a_retry_still_releases_held_patches() -> None:
    """A failed write is retried with the newest state; when that state includes a
    terminal patch, its landing must release what waits for it."""
    server = Server()
    server.gate.clear()
    server.fail_next = 1
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=2)
    writer.start()
    writer.write("old", {"phase": "Running"})
    await asyncio.sleep(0)  # in flight; it will fail once and be retried
    writer.write("old", {"phase": "Succeeded"}, settles=True)  # folded into the retry
    writer.write("new", {"phase": "Running"}, after_settled=True)
    server.gate.set()
    async with asyncio.timeout(5):
        await writer.flush()
    await writer.close()
    assert server.received == [("old", {"phase": "Succeeded"}), ("new", {"phase": "Running"})]


async def test_terminal_patch_of_an_object_gone_mid_flight_releases_held_patches() -> None:
    server = Server()
    server.gate.clear()
    server.gone.add("old")
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=2)
    writer.start()
    writer.write("old", {"phase": "Running"})
    await asyncio.sleep(0)  # in flight; the object turns out to be deleted
    writer.write("old", {"phase": "Succeeded"}, settles=True)
    writer.write("new", {"phase": "Running"}, after_settled=True)
    server.gate.set()
    async with asyncio.timeout(5):
        await writer.flush()
    await writer.close()
    assert server.received == [("new", {"phase": "Running"})]


async def test_a_retry_does_not_carry_out_a_held_patch() -> None:
    """A held Running patch waits for the terminal patch, even when an earlier write of
    the same job is retried in between."""
    received: list[tuple[str, dict[str, Any]]] = []
    attempts = {"next": 0}
    old_may_land = asyncio.Event()
    retried = asyncio.Event()

    async def send(key: str, patch: dict[str, Any]) -> None:
        if key == "old":
            await old_may_land.wait()
        else:
            attempts[key] += 1
            if attempts[key] == 1:
                await asyncio.sleep(0)  # lets the test write while this request is out
                raise ApiException(status=503, reason="unavailable")
            retried.set()
        received.append((key, dict(patch)))

    writer: StatusWriter[str] = StatusWriter(send, concurrency=2)
    writer.start()
    writer.write("next", {"phase": "Pending"})
    await asyncio.sleep(0)  # in flight; it fails once and is retried
    writer.write("old", {"phase": "Succeeded"}, settles=True)  # cannot land yet
    writer.write("next", {"phase": "Running"}, after_settled=True)  # held behind "old"
    async with asyncio.timeout(5):
        await retried.wait()
    assert received == [("next", {"phase": "Pending"})]
    old_may_land.set()
    async with asyncio.timeout(5):
        await writer.flush()
    await writer.close()
    assert received[1:] == [("old", {"phase": "Succeeded"}), ("next", {"phase": "Running"})]


async def test_background_patches_wait_while_urgent_ones_are_ready() -> None:
    """Queue status yields to results: when the API server is the bottleneck, a job's
    unsent Pending patch merges into its later patches instead of costing a write."""
    server = Server()
    server.gate.clear()
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=1, background_share=0)
    writer.start()
    writer.write("busy", {"phase": "Running"})
    await asyncio.sleep(0)  # the only worker is busy: the rest waits
    for i in range(3):
        writer.write(f"queued{i}", {"phase": "Pending", "queuePosition": i}, background=True)
    writer.write("done", {"phase": "Succeeded"}, settles=True)
    writer.write("queued0", {"phase": "Running"}, after_settled=True)  # merges, now urgent
    server.gate.set()
    await writer.flush()
    await writer.close()
    assert [key for key, _ in server.received] == ["busy", "done", "queued0", "queued1", "queued2"]
    assert server.received[2][1] == {"phase": "Running", "queuePosition": 0}


async def test_background_patches_get_a_share_under_constant_urgent_load() -> None:
    server = Server()
    server.gate.clear()
    writer: StatusWriter[str] = StatusWriter(server.send, concurrency=1, background_share=4)
    writer.start()
    writer.write("busy", {"phase": "Running"})
    await asyncio.sleep(0)
    writer.write("queued", {"phase": "Pending"}, background=True)
    for i in range(10):
        writer.write(f"urgent{i}", {"phase": "Succeeded"})
    server.gate.set()
    await writer.flush()
    await writer.close()
    order = [key for key, _ in server.received]
    assert order.index("queued") <= 4, order
