"""``python -m bench.run [B1 ... B9] [--scale S] [--profile]``: run scenarios, print the table,
write ``bench/results/bench-<time>.json``. ``bench/run.sh`` is the usual entry point."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import operations, report, scenarios
from bench.variants import VARIANTS

ALL = [f"B{i}" for i in range(1, 10)] + [f"O{i}" for i in range(1, 6)]
ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="B#", help=f"any of {' '.join(ALL)}")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every job count by this (e.g. 0.2)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run py-spy on the operator during B2 and B8 (bench/results/logs-*/profile-*.txt)",
    )
    parser.add_argument(
        "--memprobe",
        action="store_true",
        help="run the operator under tracemalloc during B2 (bench/results/logs-*/memprobe-b2.txt)",
    )
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every operator process (e.g. JOBGATE_STATUS_WRITERS=64)",
    )
    parser.add_argument(
        "--variant",
        help="run the operator with what-if changes from bench/variants.py, comma-separated"
        + (": " + ", ".join(VARIANTS) if VARIANTS else " (none registered now)"),
    )
    parser.add_argument(
        "--ref",
        help="run the operator as committed at this git ref (e.g. HEAD) instead of the "
        "working tree's operator/ (which others may be editing)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the control planes' work dir")
    args = parser.parse_args(argv)
    wanted = [s.upper() for s in args.scenarios] or ALL
    unknown = sorted(set(wanted) - set(ALL))
    if unknown:
        parser.error(f"unknown scenario(s): {' '.join(unknown)}")
    args.wanted = set(wanted)
    if args.variant and not all(v in VARIANTS for v in args.variant.split(",")):
        parser.error(f"unknown variant in {args.variant}; known: {', '.join(VARIANTS)}")
    return args


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def describe_source(ref: str | None) -> str:
    """Which operator code runs: a commit, or the working tree (and whether it is dirty)."""
    try:
        if ref:
            return f"{_git('rev-parse', '--short', ref)} ({ref}, via --ref)"
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", "operator")
        return f"working tree at {head}" + (
            " with uncommitted changes in operator/" if dirty else ""
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def snapshot(ref: str, into: Path) -> Path:
    """``operator/`` as committed at ``ref``, extracted into ``into``; returns the folder
    to put on PYTHONPATH (its ``jobgate`` package shadows the editable install)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", ref, "operator"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "operator"


async def run(args: argparse.Namespace) -> int:
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = report.RESULTS / f"logs-{stamp}"
    workdir = Path(tempfile.mkdtemp(prefix="jobgate-bench-"))
    ctx = scenarios.Context(
        scale=args.scale,
        workdir=workdir,
        logs=logs,
        profile=args.profile,
        memprobe=args.memprobe,
        operator_env=dict(item.split("=", 1) for item in args.operator_env),
        variant=args.variant,
    )
    operator_source = describe_source(args.ref)
    if args.ref:
        ctx.source = snapshot(args.ref, workdir / "src")
    wanted: set[str] = args.wanted
    command = os.environ.get("BENCH_COMMAND") or " ".join(["python -m bench.run", *sys.argv[1:]])
    print(f"jobgate bench: {' '.join(sorted(wanted))} at scale {args.scale:g}; logs in {logs}")
    failed = False
    groups: list[tuple[set[str], Callable[[], Awaitable[None]]]] = [
        ({"B1", "B2", "B3"}, lambda: scenarios.throughput(ctx, bool(wanted & {"B2", "B3"}))),
        ({"B4", "B5", "B6", "B9"}, lambda: scenarios.gate(ctx, wanted)),
        ({"B7"}, lambda: scenarios.queue(ctx)),
        ({"B8"}, lambda: scenarios.kueue(ctx)),
        ({"O1", "O2", "O3", "O4", "O5"}, lambda: operations.operations(ctx)),
    ]
    try:
        for members, group in groups:
            if not wanted & members:
                continue
            t0 = time.monotonic()
            try:
                await group()
            except Exception as exc:  # report what the other groups measured anyway
                failed = True
                print(f"!! {' '.join(sorted(members))} failed: {exc!r}", file=sys.stderr)
                traceback.print_exc()
            print(f"  ({time.monotonic() - t0:.0f}s)", flush=True)
    finally:
        if args.keep:
            print(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    info = report.machine(ctx.k8s_version, ctx.etcd_binary)
    info["operator_source"] = operator_source
    info["operator_env"] = ctx.operator_env
    info["operator_variant"] = ctx.variant
    path = report.write_results(ctx.figures, command=command, machine_info=info, started=started)
    print()
    print(report.table(ctx.figures))
    print()
    print(
        f"machine: {info['cores']} cores ({info['cpu']}), Python {info['python']}, "
        f"kube-apiserver {info['kube_apiserver']}, {info['etcd']}"
    )
    print(f"command: {command}")
    print(f"operator: {operator_source}" + (f", variant {args.variant}" if args.variant else ""))
    print(f"took {time.time() - started:.0f}s; results: {path}")
    return 1 if failed else 0


def main() -> int:
    return asyncio.run(run(parse_args()))


if __name__ == "__main__":
    sys.exit(main())
