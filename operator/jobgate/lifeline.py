"""Tie a process's life to its parent's: the kernel SIGKILLs it when the parent exits.

Used for the worker pool (see ``jobgate.forkserver_guard`` and ``jobgate.runner``), so that
a ``kill -9`` of the operator leaves no computation running beside its successor.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """PR_SET_PDEATHSIG(SIGKILL) for the calling process (Linux; a no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
