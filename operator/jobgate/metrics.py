"""Every Prometheus metric jobgate exports, declared in one place on an injectable registry.

The seed's three names are kept exactly: ``jobs_created_total``, ``jobs_completed_total``
(labels ``status`` and ``algorithm``) and ``job_execution_duration_seconds``. Gauges for the
gate are read from the live gate at scrape time, so they can never drift from it.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.005, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """The operator's metrics; build one per process (or per test) with its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs_created = Counter(
            "jobs_created", "AlgorithmJobs accepted into the queue.", ["algorithm"], registry=r
        )
        self.jobs_completed = Counter(
            "jobs_completed",
            "AlgorithmJobs that reached a terminal phase.",
            ["status", "algorithm"],
            registry=r,
        )
        self.job_duration = Histogram(
            "job_execution_duration_seconds",
            "Run time of one attempt, slot held to released.",
            ["algorithm"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "job_queue_wait_seconds",
            "Time from queued to admitted.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.leader = Gauge(
            "jobgate_leader", "1 on the replica that runs jobs, 0 on a standby.", registry=r
        )
        self.max_concurrent = Gauge("jobgate_max_concurrent_jobs", "The slot limit.", registry=r)
        self.running = Gauge("jobgate_running_jobs", "Jobs holding a slot.", registry=r)
        self.queued = Gauge("jobgate_queued_jobs", "Jobs waiting for a slot.", registry=r)
        self.available = Gauge("jobgate_available_slots", "Free slots.", registry=r)
        self.webhook_deliveries = Counter(
            "jobgate_webhook_deliveries",
            "Webhook delivery attempts by outcome.",
            ["outcome"],
            registry=r,
        )
        self.events_dropped = Counter(
            "jobgate_events_dropped",
            "Kubernetes Events not posted (load shedding or errors).",
            registry=r,
        )
        self.status_backlog = Gauge(
            "jobgate_status_write_backlog",
            "Jobs whose newest status has not been sent to the API server yet.",
            registry=r,
        )
        self.api_writes = Counter(
            "jobgate_api_writes",
            "Status writes sent to the API server, by result.",
            ["result"],
            registry=r,
        )

    def bind_gate(
        self,
        limit: Callable[[], float],
        running: Callable[[], float],
        queued: Callable[[], float],
        available: Callable[[], float],
    ) -> None:
        """Read the gate gauges from live state at scrape time."""
        self.max_concurrent.set_function(limit)
        self.running.set_function(running)
        self.queued.set_function(queued)
        self.available.set_function(available)
