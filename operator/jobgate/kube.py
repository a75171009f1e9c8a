"""The one module that talks to the Kubernetes API (besides kopf's own watch).

One shared ``kubernetes_asyncio`` ``ApiClient`` (one connection pool, one TLS setup) serves
every call: status merge-patches, the start-up list of AlgorithmJobs, and the ConfigMap.
Responses we do not need are released unread, so a status write costs no JSON decoding.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp.helpers import get_env_proxy_for_url
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from yarl import URL

logger = logging.getLogger(__name__)

GROUP, VERSION, PLURAL, KIND = "jobgate.dev", "v1alpha1", "algorithmjobs", "AlgorithmJob"
MERGE_PATCH = "application/merge-patch+json"


@dataclasses.dataclass(frozen=True, eq=True)
class JobRef:
    """Which AlgorithmJob: namespace, name and uid (a re-created name is a different job)."""

    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __hash__(self) -> int:  # the uid is unique; a str caches its hash (a hot path)
        return hash(self.uid)


class Gone(Exception):
    """The object no longer exists (deleted, or re-created under the same name)."""


async def connect(pool_size: int = 64) -> client.ApiClient:
    """An API client from in-cluster config, else from ``KUBECONFIG`` / ``~/.kube/config``.

    The client's aiohttp session would otherwise look up proxy variables and ``~/.netrc``
    in a thread on every request (``trust_env``): 16 % of the operator's CPU under load.
    The proxy for the API server (``HTTPS_PROXY``/``NO_PROXY``) is looked up once, here.
    """
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:  # the library reads KUBECONFIG at import; read it now
        await config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG") or None, client_configuration=configuration
        )
    configuration.connection_pool_maxsize = pool_size
    if not configuration.proxy:
        with contextlib.suppress(LookupError):
            proxy, _ = get_env_proxy_for_url(URL(configuration.host))
            configuration.proxy = str(proxy)
    api = client.ApiClient(configuration)
    api.rest_client.pool_manager._trust_env = False  # no public setter; tests/unit/test_kube.py
    return api


class KubeApi:
    """Typed, narrow access to the few API calls jobgate makes."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)

    async def close(self) -> None:
        await self._api.close()

    async def patch_job_status(self, ref: JobRef, status: Mapping[str, Any]) -> None:
        """Merge-patch ``status``; the uid guard stops a write to a re-created namesake."""
        body = {"metadata": {"uid": ref.uid}, "status": status}
        try:
            response = await self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                ref.namespace,
                PLURAL,
                ref.name,
                body,
                _content_type=MERGE_PATCH,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 404 or (exc.status in (409, 422) and "uid" in str(exc.body).lower()):
                raise Gone(str(ref)) from exc
            raise
        response.release()

    async def list_jobs(self, namespace: str | None = None, page: int = 500) -> list[Any]:
        """Every AlgorithmJob (in ``namespace``, or in all), paginated to bound memory spikes."""
        items: list[Any] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": page}
            if token:
                kwargs["_continue"] = token
            if namespace:
                answer = await self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, **kwargs
                )
            else:
                answer = await self._custom.list_cluster_custom_object(
                    GROUP, VERSION, PLURAL, **kwargs
                )
            items.extend(answer.get("items", []))
            token = answer.get("metadata", {}).get("continue")
            if not token:
                return items

    async def post_event(self, body: dict[str, Any]) -> None:
        response = await self._core.create_namespaced_event(
            body["metadata"]["namespace"], body, _preload_content=False
        )
        response.release()

    async def read_secret(self, namespace: str, name: str, key: str) -> bytes | None:
        """One key of a Secret, decoded; None when the Secret, the key, or access is missing."""
        try:
            secret = await self._core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise
        value = (secret.data or {}).get(key)
        return base64.b64decode(value) if value else None

    async def read_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        """The ConfigMap's ``data``, or None when it does not exist."""
        try:
            cm = await self._core.read_namespaced_config_map(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(cm.data or {})

    async def watch_configmap(
        self, namespace: str, name: str, timeout_seconds: int = 300
    ) -> AsyncIterator[tuple[str, dict[str, str] | None]]:
        """Yield ``(event type, data)`` for one ConfigMap until the server closes the watch."""
        # resourceVersion "0": start from the watch cache's current state (an ADDED event),
        # without waiting for the cache to prove it is fresh. That wait never ends in time
        # on an etcd without progress notifications (etcd 3.4) when ConfigMaps are quiet.
        response = await self._core.list_namespaced_config_map(
            namespace,
            field_selector=f"metadata.name={name}",
            watch=True,
            resource_version="0",
            timeout_seconds=timeout_seconds,
            _preload_content=False,
        )
        async with response:
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind = event.get("type", "")
                if kind == "ERROR":
                    raise ApiException(
                        status=event["object"].get("code", 500),
                        reason=event["object"].get("message", ""),
                    )
                obj = event.get("object", {})
                yield kind, (None if kind == "DELETED" else dict(obj.get("data") or {}))
