"""A fresh local control plane with the CRD installed, and a shared API client for the load.

Also reads the apiserver's own ``/metrics`` (``apiserver_request_total``), so a scenario can
count the writes that reached the API server between two snapshots.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from bench import procstat
from jobgate.testing.controlplane import LocalControlPlane

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "crds" / "algorithmjobs.yaml"
GROUP, VERSION, PLURAL = "jobgate.dev", "v1alpha1", "algorithmjobs"
MERGE_PATCH = "application/merge-patch+json"

RequestKey = tuple[str, str, str]  # verb, resource, subresource
_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


class Cluster:
    """etcd + kube-apiserver in ``workdir``, the CRD applied, one shared API client."""

    def __init__(self, workdir: Path) -> None:
        self.plane = LocalControlPlane(workdir=workdir)
        self.api: client.ApiClient | None = None
        self._http: aiohttp.ClientSession | None = None
        self.version = ""
        self.etcd_binary: Path | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def _processes(self) -> dict[str, subprocess.Popen[bytes]]:
        """The plane's etcd and kube-apiserver processes (empty once stopped)."""
        procs: dict[str, subprocess.Popen[bytes]] = getattr(self.plane, "_procs", {})
        return procs

    def kubectl(self, *args: str) -> str:
        done = subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    async def start(self, pool_size: int = 128) -> None:
        """Start the plane (blocking, ~4 s), apply the CRD, connect, wait until it lists."""
        await asyncio.to_thread(self.plane.start)
        await asyncio.to_thread(self.kubectl, "apply", "-f", str(CRD))
        await asyncio.to_thread(
            self.kubectl,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/algorithmjobs.jobgate.dev",
        )
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=configuration
        )
        configuration.connection_pool_maxsize = pool_size
        self.api = client.ApiClient(configuration)
        context = ssl.create_default_context(cafile=str(self.plane.ca_file))
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=16),
            headers={"Authorization": f"Bearer {self.plane.token}"},
        )
        custom = client.CustomObjectsApi(self.api)
        deadline = time.monotonic() + 30
        while True:  # a CRD can 404 for a moment after Established
            try:
                await custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1)
                break
            except ApiException:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        info = await self.get_json("/version")
        self.version = str(info.get("gitVersion", ""))
        etcd = self._processes().get("etcd")
        if etcd is not None and isinstance(etcd.args, list):
            self.etcd_binary = Path(str(etcd.args[0]))

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by kube-apiserver, etcd and this (the load) process, and
        by the whole machine (``machine``; see :func:`bench.scenarios.cpu_share`)."""
        out = {
            name: procstat.cpu_seconds(proc.pid)
            for name, proc in self._processes().items()
            if proc.poll() is None
        }
        out["bench"] = procstat.cpu_seconds(os.getpid())
        out["machine"] = procstat.machine_busy_seconds()
        return out

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.close()
        if self._http is not None:
            await self._http.close()
        await asyncio.to_thread(self.plane.stop)

    @property
    def http(self) -> aiohttp.ClientSession:
        """An aiohttp session for raw requests (watch streams, /metrics), admin token set."""
        assert self._http is not None, "not started"
        return self._http

    @property
    def custom(self) -> client.CustomObjectsApi:
        assert self.api is not None, "not started"
        return client.CustomObjectsApi(self.api)

    async def get_json(self, path: str) -> dict[str, Any]:
        async with self.http.get(self.plane.server + path) as response:
            response.raise_for_status()
            answer: dict[str, Any] = await response.json()
            return answer

    async def create_namespace(self, name: str) -> None:
        assert self.api is not None
        core = client.CoreV1Api(self.api)
        try:
            await core.create_namespace({"metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:
                raise

    async def set_config(self, namespace: str, **data: str) -> None:
        """Create or merge-patch the ConfigMap ``jobgate-config`` in ``namespace``."""
        assert self.api is not None
        core = client.CoreV1Api(self.api)
        body = {"metadata": {"name": "jobgate-config"}, "data": data}
        try:
            await core.patch_namespaced_config_map("jobgate-config", namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            await core.create_namespaced_config_map(namespace, body)

    async def request_counts(self) -> dict[RequestKey, float]:
        """``apiserver_request_total`` summed by (verb, resource, subresource)."""
        async with self.http.get(self.plane.server + "/metrics") as response:
            response.raise_for_status()
            text = await response.text()
        counts: defaultdict[RequestKey, float] = defaultdict(float)
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if not match:
                continue
            labels = dict(_LABEL.findall(match[1]))
            key = (
                labels.get("verb", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
            )
            counts[key] += float(match[2])
        return dict(counts)


def operator_writes(
    before: dict[RequestKey, float], after: dict[RequestKey, float]
) -> dict[str, float]:
    """Writes in the window that an operator makes: status and object patches of
    AlgorithmJobs (PATCH/PUT, any subresource) and Events (POST/PATCH). The load client only
    POSTs AlgorithmJobs, so none of these are the client's."""
    diff = {k: after[k] - before.get(k, 0) for k in after}
    out: dict[str, float] = {
        "status_patches": sum(
            v
            for (verb, res, sub), v in diff.items()
            if res == PLURAL and sub == "status" and verb in ("PATCH", "PUT")
        ),
        "object_patches": sum(
            v
            for (verb, res, sub), v in diff.items()
            if res == PLURAL and sub == "" and verb in ("PATCH", "PUT")
        ),
        "events": sum(
            v for (verb, res, _), v in diff.items() if res == "events" and verb in ("POST", "PATCH")
        ),
        "job_creates": sum(
            v
            for (verb, res, sub), v in diff.items()
            if res == PLURAL and sub == "" and verb == "POST"
        ),
        "job_lists_and_gets": sum(
            v for (verb, res, _), v in diff.items() if res == PLURAL and verb in ("LIST", "GET")
        ),
    }
    out["total"] = out["status_patches"] + out["object_patches"] + out["events"]
    return out
