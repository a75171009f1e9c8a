"""Follows the ConfigMap ``jobgate-config`` and applies its settings while the operator runs.

The first read happens at start-up, before any job is admitted, so jobs never start under a
stale limit. Afterwards a watch on that single ConfigMap (a field selector, not a
cluster-wide ConfigMap watch) applies each change within the watch latency. A bad value
keeps the previous one in force and is reported with the key and the fix.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from jobgate.config import CONFIGMAP_NAME, Overrides, Settings, parse_configmap
from jobgate.kube import KubeApi

logger = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0


class LiveConfig:
    def __init__(
        self,
        *,
        api: KubeApi,
        settings: Settings,
        apply_limit: Callable[[int], None],
        apply_timeout: Callable[[float], None],
        report: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api
        self._settings = settings
        self._apply_limit = apply_limit
        self._apply_timeout = apply_timeout
        self._report = report or logger.warning
        self.current = Overrides()

    def apply(self, data: dict[str, str] | None) -> None:
        """Apply the ConfigMap's data (None: deleted, so the lower layers apply again)."""
        overrides, problems = parse_configmap(data)
        for problem in problems:
            self._report(problem)
        previous = self.current
        limit = overrides.max_concurrent_jobs
        if limit is None and data is not None and "maxConcurrentJobs" in data:
            limit = previous.max_concurrent_jobs  # bad value: keep what was in force
        timeout = overrides.default_timeout_seconds
        if timeout is None and data is not None and "defaultTimeoutSeconds" in data:
            timeout = previous.default_timeout_seconds
        self.current = Overrides(max_concurrent_jobs=limit, default_timeout_seconds=timeout)
        self._apply_limit(limit if limit is not None else self._settings.max_concurrent_jobs)
        self._apply_timeout(
            timeout if timeout is not None else self._settings.default_timeout_seconds
        )

    async def load(self) -> None:
        self.apply(await self._api.read_configmap(self._settings.namespace, CONFIGMAP_NAME))

    async def follow(self) -> None:
        """Watch forever (until cancelled), re-reading after every reconnect."""
        while True:
            try:
                await self.load()
                async for kind, data in self._api.watch_configmap(
                    self._settings.namespace, CONFIGMAP_NAME
                ):
                    self.apply(data if kind != "DELETED" else None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "watching ConfigMap %s/%s failed (%s); retrying",
                    self._settings.namespace,
                    CONFIGMAP_NAME,
                    exc,
                )
            await asyncio.sleep(RECONNECT_DELAY)
