"""e2e harness: a real kube-apiserver + etcd, the CRD, and the operator as a subprocess.

The session starts a local control plane (``jobgate.testing.controlplane``) unless
``JOBGATE_E2E_KUBECONFIG`` names an existing cluster, in which case only what the tests
create is touched (and deleted afterwards). Each test gets a fresh namespace and its own
operator process watching just that namespace, so tests never see each other's jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, config

from jobgate.testing.controlplane import LocalControlPlane

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "algorithmjobs.yaml"
GROUP, VERSION, PLURAL = "jobgate.dev", "v1alpha1", "algorithmjobs"


def kubectl(
    kubeconfig: Path, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=input,
        text=True,
        capture_output=True,
        timeout=120,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    existing = os.environ.get("JOBGATE_E2E_KUBECONFIG")
    if existing:  # someone else's cluster: touch only what the tests create
        path = Path(existing)
        had_crd = kubectl(path, "get", "crd", "algorithmjobs.jobgate.dev", check=False)
        _install_crd(path)
        try:
            yield path
        finally:
            if had_crd.returncode != 0:
                kubectl(
                    path, "delete", "crd", "algorithmjobs.jobgate.dev", "--wait=false", check=False
                )
        return
    plane = LocalControlPlane(workdir=tmp_path_factory.mktemp("controlplane"))
    plane.start()
    try:
        _install_crd(plane.kubeconfig)
        yield plane.kubeconfig
    finally:
        plane.stop()


def _install_crd(kubeconfig: Path) -> None:
    kubectl(kubeconfig, "apply", "-f", str(CRD))
    kubectl(
        kubeconfig,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/algorithmjobs.jobgate.dev",
    )
    # A CRD may answer 404 for a moment after Established (FACTS.md): wait until it lists.
    deadline = time.monotonic() + 30
    while kubectl(kubeconfig, "get", "ajob", "-A", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the AlgorithmJob CRD never became servable"
        time.sleep(0.2)


class Kube:
    """A small async client for the tests: create, read and patch AlgorithmJobs."""

    def __init__(self, api: client.ApiClient, namespace: str, kubeconfig: Path) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.created_namespaces: list[str] = []

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return kubectl(self.kubeconfig, "-n", self.namespace, *args, input=input, check=check)

    async def create_job(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "AlgorithmJob",
            "metadata": {"name": name},
            "spec": spec,
        }
        return await self.custom.create_namespaced_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, self.namespace, PLURAL, body
        )

    async def get_job(self, name: str) -> dict[str, Any]:
        return await self.custom.get_namespaced_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, self.namespace, PLURAL, name
        )

    async def list_jobs(self) -> list[dict[str, Any]]:
        answer = await self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL
        )
        return answer["items"]  # type: ignore[no-any-return]

    async def list_jobs_settled(self, timeout: float = 10) -> list[dict[str, Any]]:
        """The jobs once no write lands between two lists: after an operator is killed, a
        status patch it had already sent may still commit; this list comes after it."""
        deadline = time.monotonic() + timeout
        previous = None
        while True:
            items = await self.list_jobs()
            versions = {j["metadata"]["name"]: j["metadata"]["resourceVersion"] for j in items}
            if versions == previous:
                return items
            assert time.monotonic() < deadline, "the jobs kept changing"
            previous = versions

    async def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        await self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            {"spec": spec},
            _content_type="application/merge-patch+json",
        )

    async def delete_job(self, name: str) -> None:
        await self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )

    async def set_limit(self, value: str) -> None:
        await self.set_config(maxConcurrentJobs=value)

    async def set_config(self, **data: str) -> None:
        """Create or merge-patch the ConfigMap jobgate-config in the test namespace."""
        body = {"metadata": {"name": "jobgate-config"}, "data": data}
        try:
            await self.core.patch_namespaced_config_map("jobgate-config", self.namespace, body)
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise
            await self.core.create_namespaced_config_map(self.namespace, body)

    def other_namespace(self) -> Kube:
        """A second fresh namespace sharing this client (for per-namespace tests)."""
        namespace = f"e2e-{uuid.uuid4().hex[:8]}"
        kubectl(self.kubeconfig, "create", "namespace", namespace)
        self.created_namespaces.append(namespace)
        return Kube(self.api, namespace, self.kubeconfig)

    async def wait_for(self, name: str, predicate: Any, timeout: float = 60) -> dict[str, Any]:
        """Poll one job until ``predicate(job)`` holds; fail with its last state otherwise."""
        job: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = await self.get_job(name)
            if predicate(job):
                return job
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name} did not get there in {timeout}s: {job.get('status')}")

    async def wait_phase(self, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        return await self.wait_for(
            name, lambda j: j.get("status", {}).get("phase") == phase, timeout
        )

    async def wait_all(
        self, names: list[str], phases: set[str], timeout: float = 120
    ) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            jobs = {j["metadata"]["name"]: j for j in await self.list_jobs()}
            done = {
                n: jobs[n]
                for n in names
                if jobs.get(n, {}).get("status", {}).get("phase") in phases
            }
            if len(done) == len(names):
                return done
            if time.monotonic() > deadline:
                missing = {n: jobs.get(n, {}).get("status") for n in names if n not in done}
                raise AssertionError(f"not finished in {timeout}s: {missing}")
            await asyncio.sleep(0.2)


@pytest.fixture
async def kube(kubeconfig: Path) -> AsyncIterator[Kube]:
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    kubectl(kubeconfig, "create", "namespace", namespace)
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    kube = Kube(api, namespace, kubeconfig)
    try:
        yield kube
    finally:
        await api.close()
        for ns in [namespace, *kube.created_namespaces]:
            kubectl(kubeconfig, "-n", ns, "delete", "ajob", "--all", "--wait=false", check=False)
            if os.environ.get("JOBGATE_E2E_KUBECONFIG"):
                # A real cluster finishes deleting namespaces (envtest has no controller
                # for it, so there they would stay Terminating: fresh names instead).
                kubectl(kubeconfig, "delete", "namespace", ns, "--wait=false", check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """``python -m jobgate`` as a user runs it, stopped by its pid."""

    def __init__(self, kube: Kube, log: Path, **env: str) -> None:
        self.port = free_port()
        self.log_path = log
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kube.kubeconfig),
            "JOBGATE_HTTP_PORT": str(self.port),
            "JOBGATE_HTTP_HOST": "127.0.0.1",
            "JOBGATE_NAMESPACE": kube.namespace,
            "JOBGATE_WATCH_NAMESPACES": kube.namespace,
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60, ready: bool = True) -> None:
        """Start and wait for /readyz (or only /healthz, for a standby replica)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobgate"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"operator exited early:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError):
                    probe = "/readyz" if ready else "/healthz"
                    async with session.get(f"{self.url}{probe}") as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise AssertionError(f"operator not ready in {timeout}s:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def descendants(self) -> list[int]:
        """Pids of every process below the operator (forkserver, workers, ...)."""
        assert self.proc is not None
        found: list[int] = []
        frontier = [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == parent:
                    found.append(int(entry.name))
                    frontier.append(int(entry.name))
        return found

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def status_code(self, path: str) -> int:
        """The HTTP status of ``path``; 0 while nothing listens (e.g. standby -> leader)."""
        try:
            async with aiohttp.ClientSession() as session, session.get(self.url + path) as resp:
                return resp.status
        except aiohttp.ClientConnectionError:
            return 0

    async def get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            response.raise_for_status()
            if response.content_type == "application/json":
                return await response.json()
            return await response.text()


@pytest.fixture
async def start_operator(kube: Kube, tmp_path: Path) -> AsyncIterator[Any]:
    started: list[OperatorProcess] = []

    async def start(ready: bool = True, **env: str) -> OperatorProcess:
        op = OperatorProcess(kube, tmp_path / f"operator-{len(started)}.log", **env)
        started.append(op)
        await op.start(ready=ready)
        return op

    yield start
    for op in started:
        op.stop()
    for op in started:
        if op.proc is not None and op.proc.returncode not in (0, -signal.SIGTERM, None):
            print(f"operator log:\n{op.log_tail()}")


def statuses(jobs: list[dict[str, Any]]) -> str:
    return json.dumps({j["metadata"]["name"]: j.get("status", {}).get("phase") for j in jobs})
