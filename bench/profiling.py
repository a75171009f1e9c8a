"""Summarise a ``py-spy record --format raw`` profile (collapsed stacks) into top-N tables.

``python -m bench.profiling bench/results/logs-*/profile-b2.txt`` prints: self time by
function (the frame that was on CPU), inclusive time by function (on the stack), and self
time by package (kopf, kubernetes_asyncio, aiohttp, asyncio, jobgate, ...), each as % of
samples. py-spy only records samples where the thread was active (not idle in epoll).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


def parse(text: str) -> list[tuple[list[str], int]]:
    """``frame;frame;...;leaf COUNT`` lines → (frames, count)."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _name(frame: str) -> str:
    """``func (path/file.py:12)`` → ``func (path/file.py)``: one entry per function."""
    match = _FRAME.match(frame)
    return f"{match['func']} ({match['file']})" if match else frame


def package(frame: str) -> str:
    match = _FRAME.match(frame)
    path = match["file"] if match else frame
    top = path.split("/", 1)[0]
    if top.startswith("<frozen") or top in ("", "<string>"):
        return "python-internal"
    if "/" not in path:
        return f"stdlib:{path}"
    return top


def summarize(stacks: list[tuple[list[str], int]], top: int = 15) -> dict[str, Any]:
    total = sum(count for _, count in stacks) or 1
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    by_package_inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        leaf = frames[-1]
        self_time[_name(leaf)] += count
        by_package[package(leaf)] += count
        for name in {_name(f) for f in frames}:
            inclusive[name] += count
        for pkg in {package(f) for f in frames}:
            by_package_inclusive[pkg] += count

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "self": pct(self_time),
        "inclusive": pct(inclusive),
        "self_by_package": pct(by_package),
        "inclusive_by_package": pct(by_package_inclusive),
    }


def render(summary: dict[str, Any]) -> str:
    out = [f"{summary['samples']} samples (active only)"]
    for key, title in (
        ("self_by_package", "self time by package"),
        ("inclusive_by_package", "on the stack, by package"),
        ("self", "self time by function"),
        ("inclusive", "on the stack, by function"),
    ):
        out.append(f"\n{title}:")
        out.extend(f"  {share:5.1f}%  {name}" for name, share in summary[key])
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profiling", description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    print(render(summarize(parse(args.profile.read_text()), args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
