"""``python -m bench.memprobe``: run the operator (``python -m jobgate``) under tracemalloc.

Used by ``bench/run.sh B2 --memprobe`` to find where the operator's memory goes without
touching its code. Each SIGUSR1 appends the top allocation sites (by line, and by file) of
the live Python heap to the file named by ``BENCH_MEMPROBE_OUT``. tracemalloc slows the
process down a lot: figures from such a run are not the benchmark's figures.
"""

from __future__ import annotations

import os
import runpy
import signal
import time
import tracemalloc
from types import FrameType

TOP = 25


def dump(signum: int = 0, frame: FrameType | None = None) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    current, peak = tracemalloc.get_traced_memory()
    lines = [
        f"=== {time.strftime('%H:%M:%S')}: traced {current / 2**20:.1f} MiB "
        f"(peak {peak / 2**20:.1f} MiB)"
    ]
    for key in ("lineno", "filename"):
        stats = snapshot.statistics(key)
        lines.append(f"--- top {TOP} by {key}")
        for stat in stats[:TOP]:
            lines.append(f"{stat.size / 2**20:8.1f} MiB {stat.count:9d} blocks  {stat.traceback}")
    with open(os.environ.get("BENCH_MEMPROBE_OUT", "memprobe.txt"), "a") as out:
        out.write("\n".join(lines) + "\n")


def main() -> None:
    tracemalloc.start(1)
    signal.signal(signal.SIGUSR1, dump)
    runpy.run_module("jobgate", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
