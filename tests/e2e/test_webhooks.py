"""Webhooks end to end: signed, retried, recorded, guarded, and owed across a restart."""

from __future__ import annotations

import base64
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from harness import Kube, free_port
from standardwebhooks.webhooks import Webhook as Verifier

SECRET = "whsec_" + base64.b64encode(b"jobgate-e2e-signing-key-0123456789").decode()
FAST = {"JOBGATE_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2", "JOBGATE_WEBHOOK_MAX_ATTEMPTS": "6"}


class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies signatures and fails on request."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.answers: list[tuple[int, dict[str, str]]] = []  # scripted, then 204
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.verified: list[bool] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            Verifier(SECRET).verify(body, headers)
            self.verified.append(True)
        except Exception:
            self.verified.append(False)
        import json

        self.requests.append((headers, json.loads(body)))
        status, extra = self.answers.pop(0) if self.answers else (204, {})
        return web.Response(status=status, headers=extra)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def make_secret(kube: Kube) -> None:
    body = {"metadata": {"name": "hook-key"}, "stringData": {"key": SECRET}}
    await kube.core.create_namespaced_secret(kube.namespace, body)


def hook_spec(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "algorithm": "PrimeChecker",
        "params": {"number": 97},
        "webhook": {"url": url, "secretRef": {"name": "hook-key", "key": "key"}, **extra},
    }


def delivered(job: dict[str, Any]) -> bool:
    return "deliveredAt" in job.get("status", {}).get("webhook", {})


async def test_signed_retried_and_recorded(
    kube: Kube, start_operator: Any, receiver: Receiver
) -> None:
    await make_secret(kube)
    receiver.answers = [(500, {}), (503, {}), (429, {"Retry-After": "1"})]
    await start_operator(**FAST)
    await kube.create_job("signed", hook_spec(receiver.url))
    job = await kube.wait_for("signed", delivered, timeout=30)
    record = job["status"]["webhook"]
    assert record["state"] == "Delivered" and record["attempts"] == 4
    assert record["lastResponseCode"] == 204
    assert job["status"]["phase"] == "Succeeded"
    assert receiver.verified == [True] * 4
    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    assert ids == {f"msg_{job['metadata']['uid']}"}  # stable across retries
    _, payload = receiver.requests[-1]
    assert payload["status"]["result"]["isPrime"] is True and "webhook" not in payload["status"]


async def test_receiver_down_is_recorded_and_the_operator_keeps_working(
    kube: Kube, start_operator: Any
) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"
    await start_operator(
        JOBGATE_WEBHOOK_BACKOFF_BASE_SECONDS="0.2", JOBGATE_WEBHOOK_MAX_ATTEMPTS="3"
    )
    await kube.create_job(
        "unheard", {"algorithm": "Sleep", "params": {"seconds": 0}, "webhook": {"url": down}}
    )
    job = await kube.wait_for(
        "unheard",
        lambda j: j.get("status", {}).get("webhook", {}).get("state") == "Failed",
        timeout=30,
    )
    record = job["status"]["webhook"]
    assert record["attempts"] == 3 and "gave up after 3 attempts" in record["lastError"]
    assert "deliveredAt" not in record
    assert job["status"]["phase"] == "Succeeded"  # the job's own result stands
    await kube.create_job("still-works", {"algorithm": "PrimeChecker", "params": {"number": 7}})
    await kube.wait_phase("still-works", "Succeeded")


async def test_gone_stops_delivery(kube: Kube, start_operator: Any, receiver: Receiver) -> None:
    receiver.answers = [(410, {})]
    await start_operator(**FAST)
    await kube.create_job(
        "gone", {"algorithm": "Sleep", "params": {"seconds": 0}, "webhook": {"url": receiver.url}}
    )
    job = await kube.wait_for(
        "gone", lambda j: j.get("status", {}).get("webhook", {}).get("state") == "Failed"
    )
    assert job["status"]["webhook"]["attempts"] == 1
    assert job["status"]["webhook"]["lastResponseCode"] == 410
    assert len(receiver.requests) == 1


async def test_metadata_addresses_are_refused(kube: Kube, start_operator: Any) -> None:
    await start_operator(**FAST)
    await kube.create_job(
        "ssrf",
        {
            "algorithm": "PrimeChecker",
            "params": {"number": 9},
            "webhook": {"url": "http://169.254.169.254/latest/meta-data"},
        },
    )
    job = await kube.wait_for(
        "ssrf", lambda j: j.get("status", {}).get("webhook", {}).get("state") == "Refused"
    )
    assert "169.254.169.254" in job["status"]["webhook"]["lastError"]
    assert job["status"]["phase"] == "Succeeded"
    assert job["status"]["result"]["isPrime"] is False


async def test_owed_delivery_survives_an_operator_restart(kube: Kube, start_operator: Any) -> None:
    await make_secret(kube)
    later = Receiver()
    first = await start_operator(
        JOBGATE_WEBHOOK_BACKOFF_BASE_SECONDS="2", JOBGATE_WEBHOOK_MAX_ATTEMPTS="50"
    )
    await kube.create_job("owed", hook_spec(later.url))
    await kube.wait_for(
        "owed", lambda j: j.get("status", {}).get("webhook", {}).get("attempts", 0) >= 1
    )
    first.stop(signal.SIGKILL)
    await later.start()  # the receiver comes back while no operator runs
    try:
        await start_operator(**FAST)
        job = await kube.wait_for("owed", delivered, timeout=30)
    finally:
        await later.stop()
    assert job["status"]["webhook"]["attempts"] >= 2  # counting continued across the restart
    assert later.verified == [True]
    assert later.requests[0][0]["webhook-id"] == f"msg_{job['metadata']['uid']}"
