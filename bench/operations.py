"""Operational figures (the scheduling issue's): what a job costs in API writes with and
without a long queue, how fast a cancel and a timeout give the slot back, and how long the
operator takes to recover from ``kill -9`` with 1,000 jobs.

O1 short queue: jobs created one after another at limit 100, so none waits.
O2 long queue: jobs created while the limit is 0 (all wait and get their queue status),
   then the limit is raised; writes counted while queued and in all.
O3 cancel: ``spec.cancel: true`` on a running Burn job → the status endpoint shows the slot
   free (client-side, so it includes the watch delivering the edit).
O4 timeout: a Burn job with ``timeoutSeconds: 1`` → slot free, by the job's own
   ``durationSeconds`` (slot held to released) minus the timeout.
O5 kill -9: 1,000 Sleep 0.5 s jobs, limit 50; SIGKILL mid-run, a new operator started at
   once: restart → ready, → the first job running again, → all finished, and what was lost.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
from typing import Any

from bench.cluster import GROUP, MERGE_PATCH, PLURAL, VERSION, Cluster, operator_writes
from bench.load import TERMINAL, create_jobs, job_body, names, prime_spec, sleep_spec
from bench.opproc import OperatorProcess
from bench.report import Figure, Goal
from bench.scenarios import Context, fresh_cluster, running_operator, warm_up, watching


def burn_spec(seconds: float, **extra: Any) -> dict[str, Any]:
    return {"algorithm": "Burn", "params": {"seconds": seconds}, **extra}


async def until(check: Any, timeout: float, what: str, every: float = 0.005) -> float:
    """Poll ``await check()`` until true; the perf_counter time it became true."""
    deadline = time.perf_counter() + timeout
    while not await check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(every)
    return time.perf_counter()


async def list_jobs(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    """One list, after a run: never during a measured window."""
    listed = await cluster.get_json(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}")
    items: list[dict[str, Any]] = listed.get("items", [])
    return items


async def operations(ctx: Context) -> None:
    async with fresh_cluster(ctx, "ops") as cluster:
        await warm_up(cluster, ctx.n(300, 100))
        await _writes(ctx, cluster)
        await _cancel_and_timeout(ctx, cluster)
        await _kill_9(ctx, cluster)


async def _writes(ctx: Context, cluster: Cluster) -> None:
    n_short, n_long = ctx.n(300, 30), ctx.n(3000, 100)
    for ns in ("o1", "o2"):
        await cluster.create_namespace(ns)
    # O1: one at a time, limit 100: nothing ever waits.
    async with (
        running_operator(ctx, cluster, "o1", limit=100) as op,
        watching(cluster, "o1") as watch,
    ):
        await op.wait_ready()
        before = await cluster.request_counts()
        for name in names("short", n_short):
            await create_jobs(cluster, "o1", [job_body(name, prime_spec(97))])
        await watch.wait_terminal(n_short, timeout=120)
        await until(lambda: _flushed(op), 30, "O1 status and Events flushed", every=0.1)
        writes = operator_writes(before, await cluster.request_counts())
    ctx.add(
        Figure(
            "O1",
            f"{n_short} jobs one by one, limit 100 (no queue)",
            "API writes per job (status patches + Events)",
            writes["total"] / n_short,
            details={**writes, "jobs": n_short},
        )
    )
    print(
        f"  O1 split: {writes['status_patches'] / n_short:.2f} status patches + "
        f"{writes['events'] / n_short:.2f} Events per job"
    )
    # O2: all wait (limit 0), then run 20 at a time.
    await cluster.set_config("o2", maxConcurrentJobs="0")
    async with (
        running_operator(ctx, cluster, "o2", limit=20) as op,
        watching(cluster, "o2") as watch,
    ):
        await op.wait_ready()
        before = await cluster.request_counts()
        bodies = (job_body(x, sleep_spec(0.05)) for x in names("long", n_long))
        await create_jobs(cluster, "o2", bodies)

        async def all_queued_and_shown() -> bool:
            status = await op.status()
            return bool(status.get("queued_jobs") == n_long) and await _flushed(op)

        await until(all_queued_and_shown, 120, "O2 queue status written", every=0.2)
        # a few report rounds more: what a standing queue costs per second
        steady_from = await cluster.request_counts()
        await asyncio.sleep(5.0)  # a measured window, not a synchronisation
        steady = operator_writes(steady_from, await cluster.request_counts())
        queued = operator_writes(before, await cluster.request_counts())
        await cluster.set_config("o2", maxConcurrentJobs="20")
        await watch.wait_terminal(n_long, timeout=600)
        await until(lambda: _flushed(op), 30, "O2 status and Events flushed", every=0.1)
        total = operator_writes(before, await cluster.request_counts())
    details = {"jobs": n_long, "while_queued": queued, "standing_queue_5s": steady, "all": total}
    ctx.add(
        Figure(
            "O2",
            f"{n_long} jobs queued at limit 0, then limit 20",
            "API writes per job, in all",
            total["total"] / n_long,
            details=details,
        )
    )
    ctx.add(
        Figure(
            "O2",
            "same run, while all were queued",
            "API writes per job while queued",
            queued["total"] / n_long,
            details=details,
        )
    )
    ctx.add(
        Figure(
            "O2",
            "same run, the queue standing still",
            "API writes per second",
            steady["total"] / 5.0,
            "/s",
            details=details,
        )
    )


async def _flushed(op: OperatorProcess) -> bool:
    return await op.metric("jobgate_status_write_backlog") == 0


async def _cancel_and_timeout(ctx: Context, cluster: Cluster) -> None:
    rounds = 5
    await cluster.create_namespace("o3")
    custom = cluster.custom
    async with (
        running_operator(ctx, cluster, "o3", limit=5) as op,
        watching(cluster, "o3") as watch,
    ):
        await op.wait_ready()
        cancel_s: list[float] = []
        for i in range(rounds):
            name = f"cancel-{i}"
            running = watch.expect(
                name, lambda o: (o.get("status") or {}).get("phase") == "Running"
            )
            done = watch.expect(name, lambda o: (o.get("status") or {}).get("phase") in TERMINAL)
            await create_jobs(cluster, "o3", [job_body(name, burn_spec(60))])
            await asyncio.wait_for(running, 60)
            sent = time.perf_counter()
            await custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                "o3",
                PLURAL,
                name,
                {"spec": {"cancel": True}},
                _content_type=MERGE_PATCH,
            )

            async def free() -> bool:
                return bool((await op.status())["running_jobs"] == 0)

            cancel_s.append(await until(free, 10, f"O3 {name} slot freed") - sent)
            final = await asyncio.wait_for(done, 30)
            assert final["status"]["phase"] == "Cancelled", final["status"]
        timeout_over: list[float] = []
        for i in range(rounds):
            name = f"timeout-{i}"
            done = watch.expect(name, lambda o: (o.get("status") or {}).get("phase") in TERMINAL)
            await create_jobs(cluster, "o3", [job_body(name, burn_spec(60, timeoutSeconds=1))])
            final = (await asyncio.wait_for(done, 60))["status"]
            assert final["reason"] == "Timeout", final
            timeout_over.append(float(final["durationSeconds"]) - 1.0)
    ctx.add(
        Figure(
            "O3",
            f"cancel a running Burn job ({rounds}×)",
            "spec.cancel sent → slot free, max",
            max(cancel_s),
            "s",
            goal=Goal("<", 1.0),
            details={"each_s": cancel_s, "median_s": statistics.median(cancel_s)},
        )
    )
    ctx.add(
        Figure(
            "O4",
            f"Burn job with timeoutSeconds 1 ({rounds}×)",
            "slot held past the timeout, max",
            max(timeout_over),
            "s",
            details={"each_s": timeout_over, "median_s": statistics.median(timeout_over)},
        )
    )


async def _kill_9(ctx: Context, cluster: Cluster) -> None:
    n, limit, seconds = ctx.n(1000, 100), 50, 0.5
    await cluster.create_namespace("o5")
    async with watching(cluster, "o5") as watch:
        async with running_operator(ctx, cluster, "o5", limit=limit) as first:
            await first.wait_ready()
            await create_jobs(
                cluster, "o5", (job_body(x, sleep_spec(seconds)) for x in names("k", n))
            )

            async def some_done() -> bool:
                return watch.terminal >= n // 4

            await until(some_done, 120, "O5 a quarter done", every=0.05)
            running_at_kill = (await first.status())["running_jobs"]
            first.signal(signal.SIGKILL)
            shown_at_kill = dict(watch.by_phase)
            killed = time.perf_counter()
            await asyncio.to_thread(first.proc.wait)  # type: ignore[union-attr]
        done_at_kill = watch.terminal
        async with running_operator(ctx, cluster, "o5", limit=limit) as second:
            ready = await second.wait_ready()

            async def runs_again() -> bool:
                return bool((await second.status())["running_jobs"] > 0)

            first_running = await until(runs_again, 60, "O5 a job running again") - killed
            await watch.wait_terminal(n, timeout=300)
            all_done = watch.last_terminal - killed
            max_running = watch.max_running
    jobs = await list_jobs(cluster, "o5")
    phases: dict[str, int] = {}
    for job in jobs:
        phase = (job.get("status") or {}).get("phase", "")
        phases[phase] = phases.get(phase, 0) + 1
    attempts: dict[int, int] = {}
    for job in jobs:
        count = int((job.get("status") or {}).get("attempts") or 0)
        attempts[count] = attempts.get(count, 0) + 1
    remaining = n - done_at_kill
    details = {
        "jobs": n,
        "limit": limit,
        "running_at_kill": running_at_kill,
        "finished_before_kill": done_at_kill,
        "restart_to_ready_s": ready,
        "kill_to_first_running_s": first_running,
        "kill_to_all_done_s": all_done,
        "ideal_for_the_rest_s": remaining * seconds / limit,
        "phases": phases,
        "phases_on_the_watch_at_kill": shown_at_kill,
        "jobs_by_attempts": attempts,
        "max_running_watch": max_running,
    }
    print(f"  O5: {details}")
    ctx.add(
        Figure(
            "O5",
            f"kill -9 with {n} jobs, limit {limit}",
            "new operator: start → ready",
            ready,
            "s",
            details=details,
        )
    )
    ctx.add(
        Figure("O5", "same run", "kill → a job running again", first_running, "s", details=details)
    )
    ctx.add(
        Figure(
            "O5",
            "same run",
            f"kill → all done (ideal {remaining * seconds / limit:.1f}s)",
            all_done,
            "s",
            details=details,
        )
    )
    ctx.add(
        Figure(
            "O5",
            "same run",
            "jobs Succeeded ÷ created (nothing lost)",
            phases.get("Succeeded", 0) / n,
            goal=Goal("==", 1),
            details=details,
        )
    )
    ctx.add(
        Figure(
            "O5",
            "same run, across the restart",
            "max Running objects (watch) ÷ limit",
            max_running / limit,
            goal=Goal("<=", 1),
            details=details,
        )
    )
