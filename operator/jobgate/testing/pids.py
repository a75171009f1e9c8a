"""The control plane's processes by pid: recorded at start, stopped only if still ours.

``stop_recorded`` stops what ``workdir/pids`` lists, but only pids whose command line is
still an etcd or kube-apiserver started for that work directory, so a reused pid is never
signalled. The apiserver goes first: stopped after etcd, it hangs until killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from jobgate.testing.assets import PROGRAMS

STOP_GRACE_SECONDS = 10.0


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def ours(pid: int, workdir: Path) -> bool:
    """Whether ``pid`` is still an etcd or kube-apiserver started for ``workdir``."""
    argv = cmdline(pid)
    return bool(argv) and Path(argv[0]).name in PROGRAMS and any(str(workdir) in a for a in argv)


def read_pids(workdir: Path) -> list[int]:
    try:
        text = (workdir / "pids").read_text()
    except FileNotFoundError:
        return []
    return [int(word) for word in text.split() if word.isdigit()]


def stop_recorded(workdir: Path, grace: float = STOP_GRACE_SECONDS) -> int:
    """Stop the processes recorded in ``workdir/pids`` that still look like our etcd or
    kube-apiserver (SIGTERM, SIGKILL after ``grace`` s); return how many were stopped.

    The apiserver goes first: stopped after etcd, it hangs in its shutdown until killed.
    """
    workdir = workdir.resolve()
    pids = [pid for pid in read_pids(workdir) if ours(pid, workdir)]
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid) and ours(pid, workdir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (workdir / "pids").unlink()
    return len(pids)
