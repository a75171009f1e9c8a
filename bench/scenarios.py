"""The scenarios B1 to B9, in four groups that each get a fresh control plane.

* ``throughput``: B1 (raw ceiling, measured before and after B2), B2 and B3 (same run).
* ``gate``: B4/B5 (Sleep jobs under a limit of 50), B6 (start latency), B9 (a big prime).
* ``queue``: B7 (10,000 jobs queued before the operator starts, limit 0).
* ``kueue``: B8 (15,000 mixed Sleep jobs, limit 100, against Kueue's published run).

Every figure that is a ratio is computed from numbers measured in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import gmpy2

from bench import load
from bench.cluster import GROUP, PLURAL, VERSION, Cluster, operator_writes
from bench.load import JobWatch, create_jobs, job_body, names, prime_spec, raw_objects, sleep_spec
from bench.opproc import OperatorProcess
from bench.procstat import ProcSample
from bench.report import Figure, Goal

KUEUE_JOBS_PER_SECOND = 15_000 / 351  # Kueue's published run: 15,000 workloads in 351 s
KUEUE_MAX_RSS_MIB = 445
PRIME_CACHE = Path(__file__).resolve().parent / "results" / "prime-4000.txt"
# gmpy2.next_prime(10**3999) == 10**3999 + 4771 (computed once here, ~60 s): used when the
# cache file is absent. Either way B9 checks it with gmpy2.is_prime, which is its reference.
PRIME_OFFSET = 4771


@dataclasses.dataclass
class Context:
    """Options of one bench run, and where it keeps its files."""

    scale: float
    workdir: Path
    logs: Path
    profile: bool = False
    memprobe: bool = False
    operator_env: dict[str, str] = dataclasses.field(default_factory=dict)
    variant: str | None = None
    """A what-if change from bench/variants.py to run the operator with."""
    figures: list[Figure] = dataclasses.field(default_factory=list)
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)
    k8s_version: str = ""
    etcd_binary: Path | None = None
    source: Path | None = None
    """The operator package to run (a snapshot at ``--ref``); None: the working tree."""

    def n(self, full: int, minimum: int = 20) -> int:
        return max(minimum, round(full * self.scale))

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        value = "n/a" if figure.value is None else f"{figure.value:.4g}"
        goal = f" (goal {figure.goal}: {'met' if figure.met else 'MISSED'})" if figure.goal else ""
        print(f"  {figure.id} {figure.name}: {value} {figure.unit}{goal}", flush=True)


@contextlib.asynccontextmanager
async def fresh_cluster(ctx: Context, name: str) -> AsyncIterator[Cluster]:
    cluster = Cluster(ctx.workdir / name)
    started = time.monotonic()
    await cluster.start()
    ctx.k8s_version = cluster.version
    ctx.etcd_binary = cluster.etcd_binary
    print(f"[{name}] control plane {cluster.version} ready in {time.monotonic() - started:.1f}s")
    try:
        yield cluster
    finally:
        await cluster.stop()


@contextlib.asynccontextmanager
async def running_operator(
    ctx: Context, cluster: Cluster, namespace: str, limit: int, **kwargs: Any
) -> AsyncIterator[OperatorProcess]:
    if ctx.variant and "module" not in kwargs:
        kwargs["module"] = ("bench.variants", ctx.variant)
    op = OperatorProcess(
        cluster.kubeconfig,
        namespace,
        limit=limit,
        log=ctx.logs / f"operator-{namespace}.log",
        source=ctx.source,
        **kwargs,
    )
    op.extra_env = {**ctx.operator_env, **op.extra_env}
    op.start()
    try:
        yield op
    finally:
        await op.stop()


@contextlib.asynccontextmanager
async def watching(cluster: Cluster, namespace: str) -> AsyncIterator[JobWatch]:
    watch = JobWatch(cluster, namespace)
    await watch.start()
    try:
        yield watch
    finally:
        await watch.stop()


async def warm_up(cluster: Cluster, count: int) -> None:
    """A fresh apiserver and CRD run slow for their first few hundred writes."""
    await cluster.create_namespace("warmup")
    stats = await raw_objects(cluster, "warmup", names(f"w{time.monotonic_ns()}", count))
    print(f"  warm-up: {count} objects in {stats.seconds:.1f}s ({count / stats.seconds:.0f}/s)")


class StatusSampler:
    """Polls the operator's status endpoint; keeps the peak ``running_jobs``/``slots_in_use``.
    With ``backlog``, also keeps a timeline of (seconds since entering, running, queued,
    status-write backlog) for :meth:`occupancy`."""

    def __init__(
        self, op: OperatorProcess, interval: float = 0.02, *, backlog: bool = False
    ) -> None:
        self.op = op
        self.interval = interval
        self.backlog = backlog
        self.max_running = 0
        self.max_slots = 0
        self.samples = 0
        self.timeline: list[tuple[float, int, int, int]] = []
        self._started = time.perf_counter()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                status = await self.op.status()
                running, queued = int(status["running_jobs"]), int(status.get("queued_jobs", 0))
                self.max_running = max(self.max_running, running)
                self.max_slots = max(self.max_slots, int(status.get("slots_in_use", 0)))
                self.samples += 1
                if self.backlog:
                    waiting = int(await self.op.metric("jobgate_status_write_backlog"))
                    at = time.perf_counter() - self._started
                    self.timeline.append((at, running, queued, waiting))
            await asyncio.sleep(self.interval)

    def occupancy(self, limit: int) -> dict[str, float]:
        """From the operator's own view: when it ran its last job, how full the gate was
        until then, the share of that time it had free slots and nothing queued (it was
        waiting for the watch to deliver jobs the client had already created), and how many
        jobs' status it had not sent yet (the API server being the bottleneck)."""
        busy = [s for s in self.timeline if s[1] or s[2]]
        if not busy:
            return {}
        done = busy[-1][0]
        window = [s for s in self.timeline if busy[0][0] <= s[0] <= done]
        return {
            "operator_done_s": round(done, 2),
            "mean_running_over_limit": round(sum(s[1] for s in window) / len(window) / limit, 3),
            "starved_share": round(
                sum(1 for s in window if s[2] == 0 and s[1] < limit) / len(window), 3
            ),
            "max_status_backlog": max(s[3] for s in self.timeline),
            "status_backlog_at_operator_done": busy[-1][3],
            "status_backlog_drained_s": round(
                next((s[0] for s in self.timeline if s[0] > done and s[3] == 0), float("nan")), 2
            ),
        }

    def __enter__(self) -> StatusSampler:
        self._started = time.perf_counter()
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


def cpu_share(
    before: dict[str, float], after: dict[str, float], seconds: float
) -> dict[str, float]:
    """Cores used per process over a window (1.0 = one core busy all along). With a
    ``machine`` entry, ``others`` is what processes outside this bench used: noise."""
    shares = {k: round((after[k] - before.get(k, 0)) / seconds, 2) for k in after}
    if "machine" in shares:
        machine = shares.pop("machine")
        shares["others"] = round(max(0.0, machine - sum(shares.values())), 2)
    return shares


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _operator_costs(
    ctx: Context,
    ident: str,
    scenario: str,
    samples: tuple[ProcSample, ProcSample],
    cpu_before: float,
    jobs: int,
) -> None:
    """Rows for peak RSS and CPU per 1,000 jobs, from (main, main + workers) samples taken
    at the end of a run while the operator was still alive."""
    main, tree = samples
    cpu = tree.cpu_seconds - cpu_before
    per_1000 = cpu / jobs * 1000
    ctx.add(
        Figure(
            ident,
            scenario,
            "operator peak RSS (VmHWM, main process)",
            main.hwm_mib,
            "MiB",
            details={"workers_and_main_rss_mib": tree.rss_mib, "rss_now_mib": main.rss_mib},
        )
    )
    ctx.add(
        Figure(
            ident,
            scenario,
            "operator CPU s per 1,000 jobs (main + workers)",
            per_1000,
            "s",
            details={"cpu_seconds": cpu, "jobs": jobs},
        )
    )


# ----- throughput: B1, B2, B3 -----


async def throughput(ctx: Context, with_operator: bool) -> None:
    n_raw = ctx.n(2000, 100)
    n_jobs = ctx.n(5000, 100)
    async with fresh_cluster(ctx, "throughput") as cluster:
        for ns in ("b1", "b2"):
            await cluster.create_namespace(ns)
        await warm_up(cluster, ctx.n(600, 100))
        cpu0 = cluster.cpu_seconds()
        before = await raw_objects(cluster, "b1", names("before", n_raw))
        cpu = cpu_share(cpu0, cluster.cpu_seconds(), before.seconds)
        rates = [n_raw / before.seconds]
        print(f"  B1 (before B2): {rates[0]:.0f} objects/s; CPU share {cpu}")
        if with_operator:
            b2 = await _b2(ctx, cluster, n_jobs)
            cpu0 = cluster.cpu_seconds()
            after = await raw_objects(cluster, "b1", names("after", n_raw))
            cpu_after = cpu_share(cpu0, cluster.cpu_seconds(), after.seconds)
            rates.append(n_raw / after.seconds)
            print(f"  B1 (after B2): {rates[1]:.0f} objects/s; CPU share {cpu_after}")
        ceiling = statistics.fmean(rates)
        spread = (max(rates) - min(rates)) / ceiling
        if spread > 0.2:
            print(f"  !! B1 before and after differ by {spread:.0%} (see 'others' for noise)")
        ctx.add(
            Figure(
                "B1",
                "raw ceiling: create + 2 status patches, 96 in flight",
                "objects/s",
                ceiling,
                "/s",
                details={
                    "runs_objects_per_s": rates,
                    "objects_per_run": n_raw,
                    "in_flight": load.IN_FLIGHT,
                    "cpu_cores_used_first_run": cpu,
                    "spread_between_runs": spread,
                    "retried_requests": before.errors,
                },
            )
        )
        if not with_operator:
            return
        jobs_per_s = b2["jobs_per_s"]
        samples = b2.pop("_samples")
        ctx.add(
            Figure(
                "B2",
                f"{n_jobs} PrimeChecker jobs, limit 100",
                "jobs/s ÷ B1",
                jobs_per_s / ceiling,
                goal=Goal(">=", 0.75),
                details={**b2, "b1_objects_per_s": ceiling},
            )
        )
        ctx.add(
            Figure(
                "B3",
                "same run as B2",
                "API writes by the operator per job",
                b2["writes_per_job"],
                goal=Goal("<=", 2),
                details={"apiserver": b2["apiserver_writes"], "operator_metric": b2["op_writes"]},
            )
        )
        writes = b2["apiserver_writes"]
        ctx.add(
            Figure(
                "B3",
                "same run, split",
                "status patches / Events per job",
                writes["status_patches"] / n_jobs,
                unit=f"/ {writes['events'] / n_jobs:.2f}",
            )
        )
        _operator_costs(ctx, "B2", "same run as B2", samples, b2["cpu_before"], n_jobs)


async def _b2(ctx: Context, cluster: Cluster, n_jobs: int) -> dict[str, Any]:
    probe: dict[str, Any] = {}
    if ctx.memprobe:
        ctx.logs.mkdir(parents=True, exist_ok=True)
        probe = {
            "module": ("bench.memprobe",),
            "extra_env": {"BENCH_MEMPROBE_OUT": str(ctx.logs / "memprobe-b2.txt")},
        }
    async with (
        running_operator(ctx, cluster, "b2", limit=100, **probe) as op,
        watching(cluster, "b2") as watch,
    ):
        ready = await op.wait_ready()
        # Warm the operator (its worker pool starts on the first PrimeChecker job); not counted.
        warm = 50
        await create_jobs(cluster, "b2", (job_body(n, prime_spec()) for n in names("warm", warm)))
        await watch.wait_terminal(warm, timeout=120)
        await asyncio.sleep(1.5)
        api_before = await cluster.request_counts()
        op_before = await op.metric("jobgate_api_writes_total", result="ok")
        cpu_before = op.tree_sample().cpu_seconds
        shares_before = {**cluster.cpu_seconds(), "operator": cpu_before}
        if ctx.profile:
            op.profile_to(ctx.logs / "profile-b2.txt")
        stats = await create_jobs(
            cluster, "b2", (job_body(n, prime_spec(97)) for n in names("job", n_jobs))
        )
        if ctx.memprobe:
            await watch.wait_terminal(warm + n_jobs // 2, timeout=600 * max(ctx.scale, 0.2))
            op.signal(signal.SIGUSR1)
        await watch.wait_terminal(warm + n_jobs, timeout=600 * max(ctx.scale, 0.2))
        if ctx.memprobe:
            op.signal(signal.SIGUSR1)
        makespan = watch.last_terminal - stats.first_sent
        shares = cpu_share(
            shares_before,
            {**cluster.cpu_seconds(), "operator": op.tree_sample().cpu_seconds},
            time.perf_counter() - stats.first_sent,
        )
        if ctx.profile:
            op.stop_profile()
        await asyncio.sleep(1.5)  # let trailing writes (if any) land before counting
        api_after = await cluster.request_counts()
        op_after = await op.metric("jobgate_api_writes_total", result="ok")
        writes = operator_writes(api_before, api_after)
        result = {
            "jobs": n_jobs,
            "makespan_s": makespan,
            "jobs_per_s": n_jobs / makespan,
            "create_seconds": stats.seconds,
            "create_retries": stats.errors,
            "operator_ready_s": ready,
            "succeeded": watch.by_phase.get("Succeeded", 0) - warm,
            "failed": watch.by_phase.get("Failed", 0),
            "apiserver_writes": writes,
            "op_writes": op_after - op_before,
            "writes_per_job": writes["total"] / n_jobs,
            "cpu_before": cpu_before,
            "cpu_cores_used": shares,
            "_samples": (op.sample(), op.tree_sample()),
        }
        print(
            f"  B2: {n_jobs} jobs in {makespan:.1f}s = {n_jobs / makespan:.0f}/s "
            f"(creates took {stats.seconds:.1f}s); writes/job {result['writes_per_job']:.2f}; "
            f"CPU share {shares}"
        )
        return result


# ----- gate: B4, B5, B6, B9 -----


async def gate(ctx: Context, which: set[str]) -> None:
    async with fresh_cluster(ctx, "gate") as cluster:
        await warm_up(cluster, ctx.n(300, 100))
        if which & {"B4", "B5"}:
            await _b4(ctx, cluster)
        if which & {"B6", "B9"}:
            await _b6_b9(ctx, cluster, which)


async def _b4(ctx: Context, cluster: Cluster) -> None:
    n, seconds, limit = ctx.n(2000, 100), 0.5, 50
    await cluster.create_namespace("b4")
    async with (
        running_operator(ctx, cluster, "b4", limit=limit) as op,
        watching(cluster, "b4") as watch,
    ):
        await op.wait_ready()
        shares_before = {**cluster.cpu_seconds(), "operator": op.tree_sample().cpu_seconds}
        with StatusSampler(op) as sampler:
            stats = await create_jobs(
                cluster, "b4", (job_body(x, sleep_spec(seconds)) for x in names("sleep", n))
            )
            ideal = n * seconds / limit
            await watch.wait_terminal(n, timeout=ideal * 5 + 120)
        makespan = watch.last_terminal - stats.first_sent
        shares = cpu_share(
            shares_before,
            {**cluster.cpu_seconds(), "operator": op.tree_sample().cpu_seconds},
            time.perf_counter() - stats.first_sent,
        )
        print(f"  B4: makespan {makespan:.1f}s, ideal {ideal:.1f}s; CPU share {shares}")
        first_start, last_completion = min(watch.start_times), max(watch.completion_times)
        inside = last_completion - first_start
        ctx.add(
            Figure(
                "B4",
                f"{n} Sleep {seconds}s jobs, limit {limit}",
                "ideal makespan ÷ measured",
                ideal / makespan,
                goal=Goal(">=", 0.95),
                details={
                    "ideal_s": ideal,
                    "makespan_s": makespan,
                    "first_start_to_last_completion_s": inside,
                    "first_create_to_first_start_s": first_start - stats.first_sent_wall,
                    "last_completion_to_seen_s": watch.last_terminal_wall - last_completion,
                    "cpu_cores_used": shares,
                    "create_seconds": stats.seconds,
                    "failed": watch.by_phase.get("Failed", 0),
                },
            )
        )
        ctx.add(
            Figure(
                "B4",
                "same run, by the operator's own timestamps",
                "ideal ÷ (last completionTime − first startTime)",
                ideal / inside,
                details={"span_s": inside},
            )
        )
        ctx.add(
            Figure(
                "B5",
                "B4, objects via the watch",
                "max Running objects ÷ limit",
                watch.max_running / limit,
                goal=Goal("==", 1.0),
                details={"max_running": watch.max_running, "events": watch.events},
            )
        )
        ctx.add(
            Figure(
                "B5",
                "B4, status endpoint sampled every 20 ms",
                "max running_jobs ÷ limit",
                sampler.max_running / limit,
                goal=Goal("==", 1.0),
                details={"max_slots_in_use": sampler.max_slots, "samples": sampler.samples},
            )
        )


async def _b6_b9(ctx: Context, cluster: Cluster, which: set[str]) -> None:
    await cluster.create_namespace("b6")
    async with (
        running_operator(ctx, cluster, "b6", limit=100) as op,
        watching(cluster, "b6") as watch,
    ):
        await op.wait_ready()
        custom = cluster.custom

        async def one(name: str, spec: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
            started = watch.expect(name, lambda o: bool((o.get("status") or {}).get("startTime")))
            finished = watch.expect(
                name, lambda o: (o.get("status") or {}).get("phase") in load.TERMINAL
            )
            sent = time.time()
            await custom.create_namespaced_custom_object(
                GROUP, VERSION, "b6", PLURAL, job_body(name, spec)
            )
            obj = await asyncio.wait_for(started, 60)
            seen = time.time()
            start = load.parse_time(obj["status"]["startTime"])
            final = await asyncio.wait_for(finished, 600)
            return start - sent, seen - sent, final

        for name in names("warm", 20):  # starts the worker pool; not counted
            await one(name, prime_spec())
        if "B6" in which:
            n = ctx.n(300, 50)
            to_start: list[float] = []
            to_seen: list[float] = []
            for name in names("one", n):
                a, b, _ = await one(name, prime_spec())
                to_start.append(a)
                to_seen.append(b)
            details = {
                "samples": n,
                "p50_s": _percentile(to_start, 0.5),
                "p99_s": _percentile(to_start, 0.99),
                "max_s": max(to_start),
                "watch_seen_running_p50_s": _percentile(to_seen, 0.5),
                "watch_seen_running_p99_s": _percentile(to_seen, 0.99),
            }
            ctx.add(
                Figure(
                    "B6",
                    "limit 100, empty queue, one by one",
                    "create → status.startTime p50",
                    details["p50_s"],
                    "s",
                    details=details,
                )
            )
            ctx.add(
                Figure(
                    "B6",
                    "limit 100, empty queue, one by one",
                    "create → status.startTime p99",
                    details["p99_s"],
                    "s",
                    goal=Goal("<", 0.25),
                    details=details,
                )
            )
        if "B9" in which:
            await _b9(ctx, one)


def big_prime() -> str:
    if PRIME_CACHE.exists():
        return PRIME_CACHE.read_text().strip()
    return str(gmpy2.mpz(10) ** 3999 + PRIME_OFFSET)


async def _b9(ctx: Context, one: Any) -> None:
    number = big_prime()
    direct: list[float] = []
    for _ in range(3):
        started = time.perf_counter()
        assert gmpy2.is_prime(gmpy2.mpz(number)), "the B9 number is not prime"
        direct.append(time.perf_counter() - started)
    jobs: list[float] = []
    for name in names("bigprime", 3):
        _, _, final = await one(name, prime_spec(number))
        status = final["status"]
        assert status.get("phase") == "Succeeded", status
        assert status["result"]["isPrime"] is True
        jobs.append(float(status["durationSeconds"]))
    reference = statistics.median(direct)
    measured = statistics.median(jobs)
    ctx.add(
        Figure(
            "B9",
            f"PrimeChecker, {len(number)}-digit prime",
            "job durationSeconds ÷ direct gmpy2.is_prime",
            measured / reference,
            goal=Goal("<=", 1.2),
            details={"direct_s": direct, "job_duration_s": jobs, "digits": len(number)},
        )
    )


# ----- queue: B7 -----


async def queue(ctx: Context) -> None:
    n = ctx.n(10_000, 100)
    async with fresh_cluster(ctx, "queue") as cluster:
        await cluster.create_namespace("b7")
        await warm_up(cluster, ctx.n(300, 100))
        await cluster.set_config("b7", maxConcurrentJobs="0")
        stats = await create_jobs(
            cluster, "b7", (job_body(x, prime_spec(97)) for x in names("queued", n))
        )
        print(f"  B7: {n} jobs created in {stats.seconds:.1f}s")
        api_before = await cluster.request_counts()
        async with running_operator(ctx, cluster, "b7", limit=100) as op:
            ready = await op.wait_ready(timeout=300)
            while True:
                status = await op.status()
                if status.get("queued_jobs") == n:
                    break
                if time.monotonic() - op.started_at > 300:
                    raise RuntimeError(f"B7: queued_jobs stuck at {status.get('queued_jobs')}")
                await asyncio.sleep(0.02)
            queued_at = time.monotonic() - op.started_at
            # Keep watching memory while it writes the first Pending status of every job.
            rss_peak = 0.0
            settle = 15.0
            end = time.monotonic() + settle
            while time.monotonic() < end:
                rss_peak = max(rss_peak, op.sample().rss_mib)
                await asyncio.sleep(0.1)
            main = op.sample()
            api_after = await cluster.request_counts()
            writes = operator_writes(api_before, api_after)
            details = {
                "jobs": n,
                "ready_s": ready,
                "queued_all_s": queued_at,
                "vmrss_peak_sampled_mib": rss_peak,
                "vmhwm_mib": main.hwm_mib,
                "cpu_s_first_seconds": main.cpu_seconds,
                "writes_in_first_s": {"seconds": queued_at + settle, **writes},
                "status": status,
            }
            ctx.add(
                Figure(
                    "B7",
                    f"{n} queued jobs, limit 0",
                    "operator peak RSS (VmHWM)",
                    main.hwm_mib,
                    "MiB",
                    goal=Goal("<", 250),
                    details=details,
                )
            )
            ctx.add(
                Figure(
                    "B7",
                    f"{n} queued jobs, limit 0",
                    "process start → ready and all queued",
                    max(ready, queued_at),
                    "s",
                    goal=Goal("<", 20),
                    details=details,
                )
            )


# ----- kueue: B8 -----


async def kueue(ctx: Context) -> None:
    n_each = ctx.n(5000, 34)
    durations = (0.2, 0.5, 1.0)
    n = n_each * len(durations)
    limit = 100
    async with fresh_cluster(ctx, "kueue") as cluster:
        await cluster.create_namespace("b8")
        await warm_up(cluster, ctx.n(300, 100))
        # The API server's own floor for this run: every job costs a create and two status
        # writes, exactly B1's work, so no operator can finish before n ÷ B1.
        raw_n = ctx.n(1000, 100)
        raw = await raw_objects(cluster, "warmup", names("b8raw", raw_n))
        ceiling = raw_n / raw.seconds
        print(f"  B8: B1-style ceiling in this run {ceiling:.0f} objects/s")
        async with (
            running_operator(ctx, cluster, "b8", limit=limit) as op,
            watching(cluster, "b8") as watch,
        ):
            await op.wait_ready()
            groups = [
                [job_body(x, sleep_spec(t)) for x in names(f"s{int(t * 1000)}", n_each)]
                for t in durations
            ]
            bodies = load.round_robin(*groups)
            ideal = n_each * sum(durations) / limit
            api_before = await cluster.request_counts()
            cpu_before = op.tree_sample().cpu_seconds
            shares_before = {**cluster.cpu_seconds(), "operator": cpu_before}
            if ctx.profile:
                op.profile_to(ctx.logs / "profile-b8.txt")
            with StatusSampler(op, interval=0.1, backlog=True) as sampler:
                stats = await create_jobs(cluster, "b8", bodies)
                print(f"  B8: {n} jobs created in {stats.seconds:.1f}s")
                await watch.wait_terminal(n, timeout=ideal * 5 + 300)
            if ctx.profile:
                op.stop_profile()
            makespan = watch.last_terminal - stats.first_sent
            shares = cpu_share(
                shares_before,
                {**cluster.cpu_seconds(), "operator": op.tree_sample().cpu_seconds},
                time.perf_counter() - stats.first_sent,
            )
            print(f"  B8: makespan {makespan:.1f}s, ideal {ideal:.1f}s; CPU share {shares}")
            await asyncio.sleep(1.5)
            writes = operator_writes(api_before, await cluster.request_counts())
            details = {
                "jobs": n,
                "ideal_s": ideal,
                "makespan_s": makespan,
                "jobs_per_s": n / makespan,
                "create_seconds": stats.seconds,
                "max_running_watch": watch.max_running,
                "max_running_endpoint": sampler.max_running,
                "failed": watch.by_phase.get("Failed", 0),
                "apiserver_writes": writes,
                "writes_per_job": writes["total"] / n,
                "b1_objects_per_s_this_run": ceiling,
                "cpu_cores_used": shares,
                "api_floor_s": n / ceiling,
                # the operator's own view (status endpoint every 0.1 s), from the first create
                **sampler.occupancy(limit),
            }
            ctx.add(
                Figure(
                    "B8",
                    f"Kueue-shaped: {n} Sleep 0.2/0.5/1 s, limit {limit}",
                    "makespan ÷ ideal",
                    makespan / ideal,
                    goal=Goal("<=", 1.10),
                    details=details,
                )
            )
            ctx.add(
                Figure(
                    "B8",
                    "same run",
                    "jobs/s ÷ Kueue's 43/s",
                    n / makespan / KUEUE_JOBS_PER_SECOND,
                    goal=Goal(">=", 3.5),
                    details=details,
                )
            )
            ctx.add(
                Figure(
                    "B8",
                    f"same run; API floor n ÷ B1 = {n / ceiling:.0f}s, ideal {ideal:.0f}s",
                    "makespan ÷ max(ideal, API floor)",
                    makespan / max(ideal, n / ceiling),
                    details=details,
                )
            )
            ctx.add(
                Figure(
                    "B8",
                    "same run",
                    "API writes by the operator per job",
                    writes["total"] / n,
                    details=writes,
                )
            )
            _operator_costs(ctx, "B8", "same run", (op.sample(), op.tree_sample()), cpu_before, n)
