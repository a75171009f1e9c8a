"""The operator as a separate process, started exactly as a user would: ``python -m jobgate``.

Readiness, the status endpoint and the operator's own ``/metrics`` are read over HTTP; memory
and CPU come from ``/proc``. Optionally py-spy samples it (``profile_to``). Stopped with
SIGTERM by pid (SIGKILL after a grace period), never by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import procstat

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """``python -m jobgate`` against ``kubeconfig``, watching ``namespace``.

    ``source``: a folder holding the ``jobgate`` package to run instead of the working tree's
    (a snapshot of ``operator/`` at a git ref, see ``bench/run.sh --ref``). ``module``: what
    follows ``python -m``; ``("bench.memprobe",)`` runs it under tracemalloc,
    ``("bench.variants", NAME)`` with a what-if change."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        *,
        limit: int,
        log: Path,
        config_namespace: str | None = None,
        extra_env: dict[str, str] | None = None,
        source: Path | None = None,
        module: tuple[str, ...] = ("jobgate",),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.config_namespace = config_namespace or namespace
        self.limit = limit
        self.log = log
        self.extra_env = extra_env or {}
        self.source = source
        self.module = module
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._spy: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        python = str(PYTHON) if PYTHON.exists() else sys.executable
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "KUBECONFIG": str(self.kubeconfig),
            "JOBGATE_HTTP_HOST": "127.0.0.1",
            "JOBGATE_HTTP_PORT": str(self.port),
            "JOBGATE_NAMESPACE": self.config_namespace,
            "JOBGATE_WATCH_NAMESPACES": self.namespace,
            "MAX_CONCURRENT_JOBS": str(self.limit),
            "JOBGATE_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }
        if self.source is not None:  # a snapshot of operator/ at some commit shadows the tree
            env["PYTHONPATH"] = str(self.source)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                [python, "-m", *self.module],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._session

    async def get(self, path: str) -> tuple[int, str]:
        session = await self._http()
        async with session.get(self.url + path) as response:
            return response.status, await response.text()

    async def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from process start until ``/readyz`` answered 200."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the operator exited ({self.proc.returncode}); see {self.log}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                status, _ = await self.get("/readyz")
                if status == 200:
                    return time.monotonic() - self.started_at
            if time.monotonic() > deadline:
                raise RuntimeError(f"the operator was not ready in {timeout}s; see {self.log}")
            await asyncio.sleep(0.05)

    async def status(self) -> dict[str, Any]:
        session = await self._http()
        async with session.get(self.url + "/jobs/concurrency/status") as response:
            answer: dict[str, Any] = await response.json()
            return answer

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include ``labels``."""
        _, text = await self.get("/metrics")
        total = 0.0
        pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$")
        for line in text.splitlines():
            match = pattern.match(line)
            if not match:
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', match[1] or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match[2])
        return total

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def sample(self) -> procstat.ProcSample:
        return procstat.sample(self.pid)

    def tree_sample(self) -> procstat.ProcSample:
        return procstat.tree_sample(self.pid)

    def profile_to(self, output: Path, *, rate: int = 100, fmt: str = "raw") -> None:
        """Start ``py-spy record`` on the operator (stopped by :meth:`stop_profile`)."""
        output.parent.mkdir(parents=True, exist_ok=True)
        self._spy = subprocess.Popen(
            [
                str(PY_SPY),
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(rate),
                "--format",
                fmt,
                "--output",
                str(output),
                "--nonblocking",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(output.parent / (output.name + ".log")).open("wb"),
        )

    def stop_profile(self) -> None:
        """SIGINT makes py-spy write its output and exit."""
        if self._spy is None:
            return
        self._spy.send_signal(signal.SIGINT)
        try:
            self._spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._spy.kill()
            self._spy.wait()
        self._spy = None

    async def stop(self) -> None:
        self.stop_profile()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.proc.wait, 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)
