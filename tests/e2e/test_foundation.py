"""The foundation, end to end on a real kube-apiserver: the seed's walkthrough via kubectl."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import gmpy2
from aiohttp import web
from harness import Kube

LIMIT = 10


async def test_twenty_jobs_never_exceed_the_limit_and_all_succeed(
    kube: Kube, start_operator: Any
) -> None:
    await kube.set_limit(str(LIMIT))
    op = await start_operator()
    samples: list[dict[str, int]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            samples.append(await op.get("/jobs/concurrency/status"))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    names = [f"sleep-{i}" for i in range(20)]
    for name in names:
        await kube.create_job(name, {"algorithm": "Sleep", "params": {"seconds": 1.5}})
    # While they run, the objects themselves never show more than LIMIT Running.
    most_running_objects = 0
    deadline = asyncio.get_running_loop().time() + 90
    while asyncio.get_running_loop().time() < deadline:
        jobs = await kube.list_jobs()
        phases = [j.get("status", {}).get("phase") for j in jobs]
        most_running_objects = max(most_running_objects, phases.count("Running"))
        if phases.count("Succeeded") == len(names):
            break
        await asyncio.sleep(0.1)
    stop.set()
    assert phases.count("Succeeded") == len(names), phases
    await sampler

    assert samples, "the status endpoint was never sampled"
    assert all(set(s) >= {"max_concurrent", "available_slots", "running_jobs"} for s in samples)
    assert max(s["running_jobs"] for s in samples) == LIMIT  # the gate was really used, full
    assert all(s["running_jobs"] <= LIMIT for s in samples)
    assert all(s["available_slots"] + s["running_jobs"] == s["max_concurrent"] for s in samples)
    assert all(s["max_concurrent"] == LIMIT for s in samples)
    assert most_running_objects <= LIMIT
    for job in jobs:
        status = job["status"]
        assert status["result"] == {"sleptSeconds": 1.5}
        assert status["attempts"] == 1
        assert status["startTime"] <= status["completionTime"]
        assert 1.5 <= status["durationSeconds"] < 5


async def test_seed_walkthrough_primes_one_to_twenty(kube: Kube, start_operator: Any) -> None:
    await kube.set_limit(str(LIMIT))
    await start_operator()
    docs = [
        {
            "apiVersion": "jobgate.dev/v1alpha1",
            "kind": "AlgorithmJob",
            "metadata": {"name": f"prime-{i}"},
            "spec": {"algorithm": "PrimeChecker", "params": {"number": i}},
        }
        for i in range(1, 21)
    ]
    kube.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    )
    names = [f"prime-{i}" for i in range(1, 21)]
    kube.kubectl(
        "wait", "--for=condition=Complete", "--timeout=120s", *[f"ajob/{n}" for n in names]
    )
    jobs = {j["metadata"]["name"]: j for j in await kube.list_jobs()}
    for i in range(1, 21):
        result = jobs[f"prime-{i}"]["status"]["result"]
        assert result["number"] == i
        assert result["isPrime"] is bool(gmpy2.is_prime(i)), i
    table = kube.kubectl("get", "ajob", "prime-7").stdout
    assert "PrimeChecker" in table and "Succeeded" in table and "isPrime=True" in table


async def test_big_numbers_travel_as_strings(kube: Kube, start_operator: Any) -> None:
    await start_operator()
    mersenne = str(2**4423 - 1)  # 1,332 digits
    await kube.create_job("m4423", {"algorithm": "PrimeChecker", "params": {"number": mersenne}})
    await kube.create_job(
        "carmichael", {"algorithm": "PrimeChecker", "params": {"number": "321197185"}}
    )
    job = await kube.wait_phase("m4423", "Succeeded")
    assert job["status"]["result"]["isPrime"] is True
    assert job["status"]["result"]["number"] == mersenne
    job = await kube.wait_phase("carmichael", "Succeeded")
    assert job["status"]["result"]["isPrime"] is False


async def test_bad_jobs_end_failed_with_their_reasons(kube: Kube, start_operator: Any) -> None:
    await start_operator()
    cases = {
        "unknown-algo": ({"algorithm": "Quicksort"}, "UnknownAlgorithm", "Quicksort"),
        "not-a-number": (
            {"algorithm": "PrimeChecker", "params": {"number": "abc"}},
            "InvalidSpec",
            "spec.params.number",
        ),
        "no-params": ({"algorithm": "PrimeChecker"}, "InvalidSpec", "is required"),
        "rounded-int": (
            {"algorithm": "PrimeChecker", "params": {"number": 2**64 + 13}},
            "InvalidSpec",
            "decimal string",
        ),
        "sleep-too-long": (
            {"algorithm": "Sleep", "params": {"seconds": 99999}},
            "InvalidSpec",
            "0 to 3600",
        ),
    }
    for name, (spec, _, _) in cases.items():
        await kube.create_job(name, spec)
    for name, (_, reason, words) in cases.items():
        job = await kube.wait_phase(name, "Failed")
        assert job["status"]["reason"] == reason, name
        assert words in job["status"]["message"], name
        failed = [c for c in job["status"]["conditions"] if c["type"] == "Failed"]
        assert failed and failed[0]["status"] == "True"
    # The operator is still healthy and still runs good jobs after the bad ones.
    await kube.create_job("good", {"algorithm": "PrimeChecker", "params": {"number": 97}})
    job = await kube.wait_phase("good", "Succeeded")
    assert job["status"]["result"]["isPrime"] is True


def test_schema_invalid_objects_are_refused_by_kubectl_apply(kube: Kube) -> None:
    bad = {
        "missing algorithm": {"params": {"number": 7}},
        "priority not an integer": {"algorithm": "Sleep", "priority": "high"},
        "negative timeout": {"algorithm": "Sleep", "timeoutSeconds": -5},
        "webhook not a URL": {"algorithm": "Sleep", "webhook": {"url": "ftp://x"}},
        "unknown spec field": {"algorithm": "Sleep", "retries": 3},
    }
    for i, (why, spec) in enumerate(bad.items()):
        doc = {
            "apiVersion": "jobgate.dev/v1alpha1",
            "kind": "AlgorithmJob",
            "metadata": {"name": f"bad-{i}"},
            "spec": spec,
        }
        done = kube.kubectl("apply", "-f", "-", input=json.dumps(doc), check=False)
        assert done.returncode != 0, f"{why} was accepted"
        assert "invalid" in done.stderr.lower() or "unknown field" in done.stderr.lower(), why
    assert kube.kubectl("get", "ajob", "-o", "name").stdout.strip() == ""


async def test_webhook_receives_the_final_status(kube: Kube, start_operator: Any) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await start_operator()
        await kube.create_job(
            "hooked",
            {
                "algorithm": "PrimeChecker",
                "params": {"number": 91},
                "webhook": {"url": f"http://127.0.0.1:{port}/hook"},
            },
        )
        job = await kube.wait_for(
            "hooked", lambda j: "deliveredAt" in j.get("status", {}).get("webhook", {})
        )
    finally:
        await runner.cleanup()
    assert len(received) == 1
    assert received[0]["metadata"]["name"] == "hooked"
    assert received[0]["status"]["phase"] == "Succeeded"
    assert received[0]["status"]["result"]["factor"] == 7
    assert job["status"]["webhook"]["lastResponseCode"] == 204
    assert job["status"]["webhook"]["attempts"] == 1


async def test_metrics_and_health_endpoints(kube: Kube, start_operator: Any) -> None:
    op = await start_operator()
    await kube.create_job("m1", {"algorithm": "PrimeChecker", "params": {"number": 13}})
    await kube.wait_phase("m1", "Succeeded")
    text = await op.get("/metrics")
    assert 'jobs_created_total{algorithm="PrimeChecker"} 1.0' in text
    assert 'jobs_completed_total{algorithm="PrimeChecker",status="Succeeded"} 1.0' in text
    assert "job_execution_duration_seconds_bucket" in text
    assert (await op.get("/healthz"))["status"] == "ok"
