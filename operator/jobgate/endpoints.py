"""The HTTP side: concurrency status, Prometheus metrics, liveness and readiness (aiohttp).

Served on ``JOBGATE_HTTP_PORT`` (8000). ``/jobs/concurrency/status`` answers the seed's three
keys exactly, then extra counters. The server is an ``AppRunner`` started and cleaned up by
the operator's start-up and clean-up hooks, with ``handle_signals=False`` so kopf keeps
signal handling.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.aiohttp import make_aiohttp_handler

from jobgate.metrics import Metrics


def build_app(
    *, snapshot: Callable[[], dict[str, int]], metrics: Metrics, ready: Callable[[], bool]
) -> web.Application:
    async def concurrency_status(_: web.Request) -> web.Response:
        return web.json_response(snapshot())

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "starting"}, status=503)

    app = web.Application()
    app.router.add_get("/jobs/concurrency/status", concurrency_status)
    app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def build_standby_app() -> web.Application:
    """What a standby replica (not holding the Lease) answers.

    Alive and ready — it is healthy and ready to take over, which keeps Deployments'
    availability and rolling updates working — but it runs no jobs, so the concurrency
    status answers 503 ``{"standby": true}`` and ``jobgate_leader`` is 0 in its metrics.
    """

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "role": "standby"})

    async def not_leading(_: web.Request) -> web.Response:
        return web.json_response({"standby": True, "reason": "another replica leads"}, status=503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", healthz)
    app.router.add_get("/jobs/concurrency/status", not_leading)
    registry = CollectorRegistry()  # only this gauge: a standby has no gate to report
    Gauge(
        "jobgate_leader", "1 on the replica that runs jobs, 0 on a standby.", registry=registry
    ).set(0)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
