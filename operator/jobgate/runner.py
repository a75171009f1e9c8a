"""Runs one attempt of an algorithm under a wall-clock timeout, and can really stop it.

CPU-bound algorithms (``Algorithm.compute``) run in a pebble process pool: cancelling the
future of a running task terminates its worker process, so a timeout or a user's cancel
stops even a tight C loop inside GMP, and the pool replaces the worker. I/O-bound algorithms
(``Algorithm.wait``) are coroutines on the event loop and stop at their next ``await``.
The pool is created on first use, so an operator that only runs ``Sleep`` forks nothing.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from typing import Any

from pebble import ProcessExpired, ProcessPool

from jobgate.algorithms import Algorithm, AlgorithmFailure, Params, Result


class JobTimeout(Exception):
    """The attempt ran past its timeout and was stopped."""


class AlgorithmRunner:
    """Owns the worker processes; one per operator, created at start-up."""

    def __init__(self, worker_processes: int) -> None:
        self._workers = worker_processes
        self._pool: ProcessPool | None = None

    def _get_pool(self) -> ProcessPool:
        if self._pool is None or not self._pool.active:
            # forkserver: workers never inherit the event loop, sockets or threads.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["gmpy2", "jobgate.algorithms.primes"])
            self._pool = ProcessPool(max_workers=self._workers, context=context)
        return self._pool

    async def run(self, algorithm: Algorithm, params: Params, timeout: float) -> Result:  # noqa: ASYNC109
        """Run once; raise :class:`JobTimeout` or :class:`AlgorithmFailure`.

        Cancelling the calling task stops the work (and its worker process) too.
        """
        try:
            async with asyncio.timeout(timeout):
                result = await self._start(algorithm, params)
        except TimeoutError as exc:
            raise JobTimeout(f"stopped after the timeout of {timeout:g}s") from exc
        except (AlgorithmFailure, asyncio.CancelledError):
            raise
        except ProcessExpired as exc:
            raise AlgorithmFailure(
                f"the worker process died (exit code {exc.exitcode}); it may have run out of memory"
            ) from exc
        except Exception as exc:
            raise AlgorithmFailure(f"{type(exc).__name__}: {exc}") from exc
        return _checked(algorithm.name, result)

    async def _start(self, algorithm: Algorithm, params: Params) -> Any:
        if algorithm.wait is not None:
            return await algorithm.wait(params)
        assert algorithm.compute is not None
        future = self._get_pool().schedule(algorithm.compute, args=(params,))
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
