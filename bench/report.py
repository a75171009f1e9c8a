"""Figures, goals, the printed table and the JSON results file."""

from __future__ import annotations

import dataclasses
import datetime
import json
import operator
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
    ">": operator.gt,
    "==": lambda a, b: abs(a - b) < 1e-9,
}


@dataclasses.dataclass(frozen=True)
class Goal:
    """``value OP threshold``, e.g. ``Goal(">=", 0.75)``."""

    op: str
    threshold: float

    def met(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.op} {self.threshold:g}"


@dataclasses.dataclass
class Figure:
    """One row of the table: a measured value, its goal (if any) and how it was made."""

    id: str
    scenario: str
    name: str
    value: float | None
    unit: str = ""
    goal: Goal | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.goal is None or self.value is None:
            return None
        return self.goal.met(self.value)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scenario": self.scenario,
            "figure": self.name,
            "value": self.value,
            "unit": self.unit,
            "goal": str(self.goal) if self.goal else None,
            "met": self.met,
            "details": self.details,
        }


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"
    if abs(value) >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(figures: list[Figure]) -> str:
    """A Markdown table of the figures, one row each."""
    rows = [("id", "scenario", "figure", "value", "goal", "met")]
    for f in figures:
        met = {True: "yes", False: "NO", None: ""}[f.met]
        value = fmt(f.value) + (f" {f.unit}" if f.unit else "")
        rows.append((f.id, f.scenario, f.name, value, str(f.goal) if f.goal else "", met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except OSError as exc:
        return f"unknown ({exc})"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr else ""
    )


def machine(k8s_version: str = "", etcd_binary: Path | None = None) -> dict[str, Any]:
    """Cores, memory, Python, kernel, and the control plane's versions."""
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0]
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model,
        "memory": meminfo.split(":", 1)[1].strip(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "kube_apiserver": k8s_version,
        "etcd": _version([str(etcd_binary), "--version"]) if etcd_binary else "",
        "load_average_at_start": os.getloadavg(),
    }


def write_results(
    figures: list[Figure], *, command: str, machine_info: dict[str, Any], started: float
) -> Path:
    """Write ``bench/results/bench-<time>.json`` (and ``latest.json``); return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    document = {
        "command": command,
        "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "machine": machine_info,
        "figures": [f.as_json() for f in figures],
        "table": table(figures),
    }
    text = json.dumps(document, indent=2, default=str)
    path = RESULTS / f"bench-{stamp}.json"
    path.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    return path
