"""The operator's runtime objects, built at start-up and torn down at clean-up.

Nothing here exists at import time: the kopf start-up hook calls :meth:`Runtime.start`,
which connects to the API, reads the ConfigMap, takes in every existing AlgorithmJob, and
only then lets the scheduler admit jobs; the clean-up hook calls :meth:`Runtime.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from aiohttp import web

from jobgate import endpoints
from jobgate.algorithms import AlgorithmRegistry
from jobgate.config import CONFIGMAP_NAME, Policy, Settings
from jobgate.events import WARNING, EventRecorder, ObjectRef
from jobgate.kube import JobRef, KubeApi, connect
from jobgate.leader import default_identity
from jobgate.liveconfig import LiveConfig
from jobgate.metrics import Metrics
from jobgate.queuestatus import QueueReporting
from jobgate.runner import AlgorithmRunner
from jobgate.scheduler import Scheduler
from jobgate.webhooks import DeliveryPolicy, WebhookNotifier
from jobgate.writer import StatusWriter

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Runtime:
    settings: Settings
    api: KubeApi
    metrics: Metrics
    writer: StatusWriter[JobRef]
    runner: AlgorithmRunner
    notifier: WebhookNotifier
    events: EventRecorder
    scheduler: Scheduler
    live_config: LiveConfig
    http: web.AppRunner | None = None
    ready: bool = False
    tasks: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        api = KubeApi(await connect(pool_size=settings.status_writers + 8))
        metrics = Metrics()
        metrics.leader.set(1)  # standalone, or elected: this replica runs the jobs
        writer: StatusWriter[JobRef] = StatusWriter(
            api.patch_job_status,
            concurrency=settings.status_writers,
            on_write=lambda ok: metrics.api_writes.labels("ok" if ok else "error").inc(),
        )
        metrics.status_backlog.set_function(lambda: writer.backlog)
        runner = AlgorithmRunner(settings.worker_processes)
        events = EventRecorder(
            api.post_event,
            metrics,
            mode=settings.events,
            status_backlog=lambda: writer.backlog,
            instance=default_identity(),
        )
        notifier = WebhookNotifier(
            record=writer.write,
            read_secret=api.read_secret,
            metrics=metrics,
            events=events,
            policy=DeliveryPolicy(
                max_attempts=settings.webhook_max_attempts,
                backoff_base_seconds=settings.webhook_backoff_base_seconds,
                backoff_max_seconds=settings.webhook_backoff_max_seconds,
                timeout_seconds=settings.webhook_timeout_seconds,
                allow_cidrs=settings.webhook_allow_cidrs,
            ),
        )
        scheduler = Scheduler(
            policy=Policy.from_settings(settings),
            algorithms=AlgorithmRegistry.default(),
            runner=runner,
            sink=writer,
            notifier=notifier,
            metrics=metrics,
            events=events,
            reporting=QueueReporting(
                exact_positions=settings.queue_exact_positions,
                refresh_seconds=settings.queue_refresh_seconds,
                refresh_writes=settings.queue_refresh_writes,
            ),
        )
        configmap = ObjectRef(settings.namespace, CONFIGMAP_NAME, "", "ConfigMap", "v1")

        def report(problem: str) -> None:
            logger.warning("%s", problem)
            events.record(configmap, "ConfigInvalid", problem, WARNING)

        live = LiveConfig(api=api, settings=settings, apply=scheduler.apply_policy, report=report)
        self = cls(
            settings=settings,
            api=api,
            metrics=metrics,
            writer=writer,
            runner=runner,
            notifier=notifier,
            events=events,
            scheduler=scheduler,
            live_config=live,
        )
        app = endpoints.build_app(
            snapshot=scheduler.snapshot, metrics=metrics, ready=lambda: self.ready
        )
        self.http = await endpoints.serve(app, settings.http_host, settings.http_port)
        writer.start()
        events.start()
        await live.load()
        namespaces = settings.watch_namespaces or (None,)
        existing = [job for ns in namespaces for job in await api.list_jobs(ns)]
        scheduler.bootstrap(existing)
        self.tasks.append(asyncio.create_task(live.follow(), name="configmap watch"))
        self.tasks.append(asyncio.create_task(self._report_queue(), name="queue status"))
        self.ready = True
        logger.info(
            "jobgate started: %d existing AlgorithmJobs taken in, limit %d",
            len(existing),
            scheduler.gate.limit,
        )
        return self

    async def _report_queue(self) -> None:
        while True:
            await asyncio.sleep(self.settings.queue_status_interval)
            try:
                self.scheduler.report_queue()
            except Exception:  # a bug here must not stop queue reporting for good
                logger.exception("writing queue status failed")

    async def stop(self) -> None:
        self.ready = False
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.scheduler.close()
        await self.notifier.close()
        await self.events.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.writer.flush(), timeout=5)
        await self.writer.close()
        self.runner.close()
        if self.http is not None:
            await self.http.cleanup()
        await self.api.close()
