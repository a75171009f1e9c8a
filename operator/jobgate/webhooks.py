"""Webhook delivery: POST a finished job's final status to ``spec.webhook.url``.

Delivery runs in its own task after the job's slot is released, so a slow or dead receiver
never holds a slot. The outcome is recorded in ``status.webhook`` through the status sink.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from jobgate.kube import GROUP, KIND, VERSION, JobRef
from jobgate.metrics import Metrics
from jobgate.spec import Webhook
from jobgate.status import timestamp

logger = logging.getLogger(__name__)


class WebhookNotifier:
    """Owns the HTTP session and the in-flight deliveries."""

    def __init__(
        self,
        *,
        record: Callable[[JobRef, dict[str, Any]], None],
        metrics: Metrics,
        timeout_seconds: float,
    ) -> None:
        self._record = record
        self._metrics = metrics
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, job: JobRef, webhook: Webhook, status: dict[str, Any]) -> None:
        task = asyncio.create_task(self._deliver(job, webhook, status), name=f"webhook {job}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _deliver(self, job: JobRef, webhook: Webhook, status: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        payload = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"namespace": job.namespace, "name": job.name, "uid": job.uid},
            "status": status,
        }
        record: dict[str, Any] = {"attempts": 1}
        try:
            async with self._session.post(webhook.url, json=payload) as response:
                record["lastResponseCode"] = response.status
                if 200 <= response.status < 300:
                    record["deliveredAt"] = timestamp(datetime.datetime.now(datetime.UTC))
                    record["lastError"] = None
                    outcome = "delivered"
                else:
                    record["lastError"] = f"the receiver answered HTTP {response.status}"
                    outcome = "rejected"
        except (aiohttp.ClientError, TimeoutError) as exc:
            record["lastError"] = f"{type(exc).__name__}: {exc}"
            outcome = "error"
        self._metrics.webhook_deliveries.labels(outcome).inc()
        if outcome != "delivered":
            logger.warning(
                "webhook for AlgorithmJob %s to %s failed: %s",
                job,
                webhook.url,
                record["lastError"],
            )
        self._record(job, {"webhook": record})
