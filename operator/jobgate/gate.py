"""The concurrency gate: the one owner of the slot limit and of the slots in use.

Unlike the seed's ``asyncio.Semaphore``, the gate's limit can change while jobs hold slots:
raising it lets the scheduler start queued jobs at once; lowering it takes nothing away from
running jobs but admits nothing until ``in_use + cost <= limit`` again. Admission and release
are synchronous (no ``await`` between the check and the update), so on one event loop the
limit can never be exceeded, not even for an instant. Who is admitted, and in which order, is
the scheduler's decision; the gate only counts.
"""

from __future__ import annotations

import dataclasses


class GateError(RuntimeError):
    """A caller broke the gate's accounting (a bug in jobgate, never the user's input)."""


@dataclasses.dataclass
class Gate:
    """Counts slots in use against a live limit."""

    limit: int
    in_use: int = 0
    peak: int = 0
    """The highest ``in_use`` seen; tests and benchmarks check it against the limit."""

    def __post_init__(self) -> None:
        self.resize(self.limit)

    @property
    def available(self) -> int:
        """Free slots; 0 (never negative) while a lowered limit is still being drained."""
        return max(0, self.limit - self.in_use)

    def can_admit(self, cost: int = 1) -> bool:
        return self.in_use + cost <= self.limit

    def admit(self, cost: int = 1) -> None:
        """Take ``cost`` slots; raise rather than ever exceed the limit."""
        if cost < 1:
            raise GateError(f"slot cost must be at least 1, got {cost}")
        if not self.can_admit(cost):
            raise GateError(f"admitting {cost} slot(s) would exceed {self.in_use}/{self.limit}")
        self.in_use += cost
        self.peak = max(self.peak, self.in_use)

    def release(self, cost: int = 1) -> None:
        if cost < 1 or cost > self.in_use:
            raise GateError(f"releasing {cost} slot(s) with only {self.in_use} in use")
        self.in_use -= cost

    def resize(self, limit: int) -> None:
        """Change the limit; running jobs keep their slots (see module docstring)."""
        if limit < 0:
            raise GateError(f"the slot limit cannot be negative, got {limit}")
        self.limit = limit
