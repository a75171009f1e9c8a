"""The gate never lets more than its limit in, even under concurrent acquire/release."""

from __future__ import annotations

import asyncio
import random

import pytest

from jobgate.gate import Gate, GateError


def test_admit_until_full_then_refuse() -> None:
    gate = Gate(3)
    for _ in range(3):
        gate.admit()
    assert gate.available == 0
    assert not gate.can_admit()
    with pytest.raises(GateError):
        gate.admit()
    gate.release()
    assert gate.available == 1


def test_cost_counts_several_slots() -> None:
    gate = Gate(3)
    gate.admit(2)
    assert not gate.can_admit(2)
    assert gate.can_admit(1)


def test_lowering_keeps_running_jobs_and_admits_nothing() -> None:
    gate = Gate(5)
    for _ in range(5):
        gate.admit()
    gate.resize(2)
    assert gate.in_use == 5 and gate.available == 0
    for _ in range(3):
        gate.release()
        assert not gate.can_admit()
    gate.release()
    assert gate.can_admit()


def test_release_more_than_held_is_a_bug() -> None:
    with pytest.raises(GateError):
        Gate(2).release()


def test_negative_limit_refused() -> None:
    with pytest.raises(GateError):
        Gate(-1)


async def test_concurrent_workers_with_live_resizes_never_exceed_limit() -> None:
    """200 tasks contend; the limit changes underneath them; in_use never passes it."""
    gate = Gate(10)
    rng = random.Random(7)
    overshoot: list[tuple[int, int]] = []
    done = 0

    async def worker() -> None:
        nonlocal done
        while not gate.can_admit():
            await asyncio.sleep(0)
        gate.admit()
        if gate.in_use > gate.limit:
            overshoot.append((gate.in_use, gate.limit))
        await asyncio.sleep(rng.random() / 1000)
        gate.release()
        done += 1

    async def resizer() -> None:
        for limit in [3, 15, 1, 8, 10]:
            await asyncio.sleep(0.002)
            gate.resize(limit)

    await asyncio.gather(resizer(), *(worker() for _ in range(200)))
    assert done == 200
    assert overshoot == []
    assert gate.peak <= 15
    assert gate.in_use == 0
