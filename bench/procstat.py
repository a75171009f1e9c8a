"""Memory and CPU time of a process (and its descendants) from ``/proc``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class ProcSample:
    """RSS and peak RSS (VmHWM) in MiB, and CPU seconds (user + system)."""

    rss_mib: float
    hwm_mib: float
    cpu_seconds: float


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def sample(pid: int) -> ProcSample:
    """One process only."""
    return ProcSample(
        rss_mib=_status_kib(pid, "VmRSS") / 1024,
        hwm_mib=_status_kib(pid, "VmHWM") / 1024,
        cpu_seconds=cpu_seconds(pid),
    )


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (by parent pid), not ``pid`` itself."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_sample(pid: int) -> ProcSample:
    """``pid`` plus its live descendants (worker processes): summed RSS, HWM and CPU."""
    total = sample(pid)
    rss, hwm, cpu = total.rss_mib, total.hwm_mib, total.cpu_seconds
    for child in descendants(pid):
        try:
            s = sample(child)
        except OSError:
            continue
        rss, hwm, cpu = rss + s.rss_mib, hwm + s.hwm_mib, cpu + s.cpu_seconds
    return ProcSample(rss, hwm, cpu)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, from the first line of
    /proc/stat: everything but idle and iowait), to tell how much other processes took."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    guest = sum(fields[8:10]) if len(fields) > 9 else 0  # already counted in user/nice
    return (sum(fields) - idle - guest) / _TICKS
