"""What-if runs: ``python -m bench.variants NAME`` runs the operator (``python -m jobgate``)
with one change monkeypatched in at start, so a recommendation can be measured before anyone
edits ``operator/`` (which this never touches). ``bench/run.sh --variant NAME`` uses it.

A variant is an entry in ``VARIANTS``: (module, class, {method name: replacement}); the
replaced originals are kept in ``_ORIGINAL`` for a replacement that wraps them. Several can
be combined: ``python -m bench.variants one,two``.

The registry is empty now: the two variants measured so far (``ticket-writer``, the status
writer's hold rule with tickets instead of sets of keys; ``dispatch-after-conclude``, a
finished job's terminal patch queued before its successor's Running patch) proved out and
are the operator's own code since (``jobgate.writer``, ``Scheduler._run``). Their figures
are in bench/README.md.
"""

from __future__ import annotations

import importlib
import runpy
import sys
from typing import Any

# The originals of what a variant replaces, filled in by apply() (jobgate is imported only
# there, so that ``bench.run`` can list the variants without importing the operator).
_ORIGINAL: dict[str, Any] = {}

VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {}


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
