"""What-if runs: ``python -m bench.variants NAME`` runs the operator (``python -m jobgate``)
with one change monkeypatched in at start, so a recommendation can be measured before anyone
edits ``operator/`` (which this never touches). ``bench/run.sh --variant NAME`` uses it.

``ticket-writer``: the status writer's ordering rule ("a Running patch waits until every
terminal patch written before it has landed") kept, but implemented with a ticket counter
instead of per-patch sets of blocking keys. Each terminal patch takes the next ticket; a
held Running patch remembers the last ticket issued when it was written and is released
once no ticket at or below it is outstanding. Cost per patch: O(log n) instead of
O(terminal patches in flight), and no sets of keys copied per Running patch.

``dispatch-after-conclude``: ``Scheduler._dispatch`` runs at the next turn of the event loop
instead of at once. When a job ends, ``Scheduler._run`` releases the slot and dispatches in
its ``finally`` block, before ``_conclude`` queues the terminal status patch; so the
Running patch of the job that takes the slot is not held behind that terminal patch, and
can land first (a watcher then sees limit + 1 objects Running). Deferring the dispatch by
one loop turn queues the terminal patch first; the gate is still checked at admission.

Several can be combined: ``python -m bench.variants ticket-writer,dispatch-after-conclude``.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import importlib
import runpy
import sys
from typing import Any

# The originals of what a variant replaces, filled in by main() (jobgate is imported only
# there, so that ``bench.run`` can list the variants without importing the operator).
_ORIGINAL: dict[str, Any] = {}


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    _ORIGINAL["StatusWriter.__init__"](self, *args, **kwargs)
    self._ticket = 0
    self._outstanding = {}  # key -> ticket of its oldest terminal patch not landed yet
    self._tickets = []  # heap of (ticket, key); entries go stale when settled
    self._held = collections.deque()  # (needs, key), needs non-decreasing
    self._blocked = {}  # key -> needs (the original maps key -> set of keys)


def _lowest_outstanding(self: Any) -> float:
    while self._tickets:
        ticket, key = self._tickets[0]
        if self._outstanding.get(key) == ticket:
            return float(ticket)
        heapq.heappop(self._tickets)
    return float("inf")


def write(
    self: Any,
    key: Any,
    patch: dict[str, Any],
    *,
    settles: bool = False,
    after_settled: bool = False,
) -> None:
    if settles:
        self._settling.add(key)
        self._settle_waiting.add(key)
        if key not in self._outstanding:
            self._ticket += 1
            self._outstanding[key] = self._ticket
            heapq.heappush(self._tickets, (self._ticket, key))
    waiting = self._waiting.get(key)
    if waiting is not None:
        waiting.update(patch)
    else:
        self._waiting[key] = dict(patch)
        self._idle.clear()
    if after_settled and key not in self._settle_waiting:
        needs = self._ticket
        if _lowest_outstanding(self) <= needs:
            self._blocked[key] = needs
            self._held.append((needs, key))
    if waiting is None and key not in self._in_flight and key not in self._blocked:
        self._ready.put_nowait(key)


def _settled(self: Any, key: Any) -> None:
    self._settling.discard(key)
    self._outstanding.pop(key, None)
    lowest = _lowest_outstanding(self)
    while self._held and self._held[0][0] < lowest:
        needs, held = self._held.popleft()
        if self._blocked.get(held) != needs:
            continue  # discarded, or held again later under a newer ticket
        del self._blocked[held]
        if held in self._waiting and held not in self._in_flight:
            self._ready.put_nowait(held)


def _deferred_dispatch(self: Any) -> None:
    if getattr(self, "_dispatch_pending", False):
        return
    self._dispatch_pending = True

    def run() -> None:
        self._dispatch_pending = False
        _ORIGINAL["Scheduler._dispatch"](self)

    try:
        asyncio.get_running_loop().call_soon(run)
    except RuntimeError:  # no loop (bootstrap in tests): as before
        self._dispatch_pending = False
        _ORIGINAL["Scheduler._dispatch"](self)


VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "ticket-writer": (
        "jobgate.writer",
        "StatusWriter",
        {"__init__": _init, "write": write, "_settled": _settled},
    ),
    "dispatch-after-conclude": (
        "jobgate.scheduler",
        "Scheduler",
        {"_dispatch": _deferred_dispatch},
    ),
}


def apply(name: str) -> None:
    """Patch the operator's classes with variant ``name`` (before the operator starts)."""
    module, class_name, methods = VARIANTS[name]
    cls = getattr(importlib.import_module(module), class_name)
    for attr, function in methods.items():
        _ORIGINAL.setdefault(f"{class_name}.{attr}", getattr(cls, attr))
        setattr(cls, attr, function)


def main() -> None:
    chosen = (sys.argv.pop(1) if len(sys.argv) > 1 else "").split(",")
    if not all(name in VARIANTS for name in chosen):
        sys.exit(f"usage: python -m bench.variants NAME[,NAME] (names: {', '.join(VARIANTS)})")
    for name in chosen:
        apply(name)
    runpy.run_module("jobgate", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
