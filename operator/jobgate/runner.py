"""Runs one attempt of an algorithm under a wall-clock timeout, and can really stop it.

CPU-bound algorithms (``Algorithm.compute``) run in a pebble process pool: cancelling the
future of a running task terminates its worker process, so a timeout or a user's cancel
stops even a tight C loop inside GMP, and the pool replaces the worker. I/O-bound algorithms
(``Algorithm.wait``) are coroutines on the event loop and stop at their next ``await``.
The pool is created on first use, so an operator that only runs ``Sleep`` forks nothing.

Per-job ``spec.resources`` become rlimits on the worker for the duration of the call:
``memoryMiB`` caps the address space the call may add (RLIMIT_AS above the worker's
baseline), ``cpuSeconds`` its CPU time (RLIMIT_CPU, enforced by the kernel's SIGXCPU).
Workers and their forkserver die with their parent (``jobgate.lifeline``), so a ``kill -9``
of the operator leaves no orphaned computation running beside its successor.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import signal
from collections.abc import Callable
from typing import Any

from pebble import ProcessExpired, ProcessPool

from jobgate.algorithms import Algorithm, AlgorithmFailure, Params, Result
from jobgate.lifeline import die_with_parent
from jobgate.spec import Resources


class JobTimeout(Exception):
    """The attempt ran past its timeout and was stopped."""


class ResourceLimitExceeded(Exception):
    """The attempt went over its ``spec.resources`` and was stopped."""


class AlgorithmRunner:
    """Owns the worker processes; one per operator, created at start-up."""

    def __init__(self, worker_processes: int) -> None:
        self._workers = worker_processes
        self._pool: ProcessPool | None = None

    def _get_pool(self) -> ProcessPool:
        if self._pool is None or not self._pool.active:
            # forkserver: workers never inherit the event loop, sockets or threads.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(
                ["jobgate.forkserver_guard", "gmpy2", "jobgate.algorithms"]
            )
            self._pool = ProcessPool(
                max_workers=self._workers, context=context, initializer=die_with_parent
            )
        return self._pool

    async def run(
        self,
        algorithm: Algorithm,
        params: Params,
        time_limit: float,
        resources: Resources | None = None,
    ) -> Result:
        """Run once; raise :class:`JobTimeout` or :class:`AlgorithmFailure`.

        Cancelling the calling task stops the work (and its worker process) too.
        """
        try:
            async with asyncio.timeout(time_limit):
                result = await self._start(algorithm, params, resources)
        except TimeoutError as exc:
            raise JobTimeout(f"stopped after the timeout of {time_limit:g}s") from exc
        except (AlgorithmFailure, ResourceLimitExceeded, asyncio.CancelledError):
            raise
        except ProcessExpired as exc:
            if resources and exc.exitcode == -signal.SIGXCPU:
                raise ResourceLimitExceeded(
                    f"stopped after using its {resources.cpu_seconds}s of CPU time "
                    "(spec.resources.cpuSeconds)"
                ) from exc
            if resources and resources.memory_mib and exc.exitcode == -signal.SIGABRT:
                raise ResourceLimitExceeded(
                    f"stopped when it could not allocate memory within "
                    f"{resources.memory_mib} MiB (spec.resources.memoryMiB)"
                ) from exc
            raise AlgorithmFailure(
                f"the worker process died (exit code {exc.exitcode}); it may have run out of memory"
            ) from exc
        except Exception as exc:
            raise AlgorithmFailure(f"{type(exc).__name__}: {exc}") from exc
        return _checked(algorithm.name, result)

    async def _start(
        self, algorithm: Algorithm, params: Params, resources: Resources | None
    ) -> Any:
        if algorithm.wait is not None:
            return await algorithm.wait(params)
        assert algorithm.compute is not None
        if resources is None:
            future = self._get_pool().schedule(algorithm.compute, args=(params,))
        else:
            future = self._get_pool().schedule(
                _call_limited,
                args=(algorithm.compute, params, resources.memory_mib, resources.cpu_seconds),
            )
        # Cancelling the wrapper cancels the pebble future, which kills a running worker.
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop every worker process now (running attempts are lost, not orphaned)."""
        if self._pool is not None:
            self._pool.stop()
            self._pool.join(timeout=10)
            self._pool = None


def _checked(name: str, result: Any) -> Result:
    if not isinstance(result, dict):
        raise AlgorithmFailure(f"{name} returned {type(result).__name__}, not a JSON object")
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise AlgorithmFailure(f"{name} returned a result that is not JSON: {exc}") from exc
    return result


def _call_limited(
    compute: Callable[[Params], Result],
    params: Params,
    memory_mib: int | None,
    cpu_seconds: int | None,
) -> Result:
    """Runs in a worker: ``compute(params)`` under rlimits, restored afterwards."""
    saved_as = resource.getrlimit(resource.RLIMIT_AS)
    saved_cpu = resource.getrlimit(resource.RLIMIT_CPU)
    try:
        if memory_mib:
            baseline = _address_space_bytes()
            resource.setrlimit(resource.RLIMIT_AS, (baseline + memory_mib * 2**20, saved_as[1]))
        if cpu_seconds:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            spent = int(usage.ru_utime + usage.ru_stime) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (spent + cpu_seconds, saved_cpu[1]))
        try:
            return compute(params)
        except MemoryError as exc:
            raise ResourceLimitExceeded(
                f"ran out of its {memory_mib} MiB of memory (spec.resources.memoryMiB)"
            ) from exc
    finally:
        resource.setrlimit(resource.RLIMIT_AS, saved_as)
        resource.setrlimit(resource.RLIMIT_CPU, saved_cpu)


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    return pages * resource.getpagesize()
