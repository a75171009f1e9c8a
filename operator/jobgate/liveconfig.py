"""Follows the ConfigMap ``jobgate-config`` and applies its settings while the operator runs.

The first read happens at start-up, before any job is admitted, so jobs never start under a
stale limit. Afterwards a watch on that single ConfigMap (a field selector, not a
cluster-wide ConfigMap watch) applies each change within the watch latency, typically well
under a second. A bad value keeps the previous one in force and is reported with the key
and the fix (a log line, and an Event on the ConfigMap when a reporter is given).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from jobgate.config import CONFIGMAP_NAME, Policy, Settings, parse_configmap
from jobgate.kube import KubeApi

logger = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0


class LiveConfig:
    def __init__(
        self,
        *,
        api: KubeApi,
        settings: Settings,
        apply: Callable[[Policy], None],
        report: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api
        self._settings = settings
        self._apply = apply
        self._report = report or logger.warning
        self.policy = Policy.from_settings(settings)
        self._last_problems: list[str] = []

    def apply(self, data: dict[str, str] | None) -> None:
        """Apply the ConfigMap's data (None: deleted, so the environment's values apply)."""
        self.policy, problems = parse_configmap(data, self._settings, self.policy)
        if problems != self._last_problems:  # report each problem once, not on every resync
            for problem in problems:
                self._report(problem)
        self._last_problems = problems
        self._apply(self.policy)

    async def load(self) -> None:
        self.apply(await self._api.read_configmap(self._settings.namespace, CONFIGMAP_NAME))

    async def follow(self) -> None:
        """Watch forever (until cancelled); every (re)connect starts with the current state."""
        while True:
            try:
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
