"""Events tell each job's story in `kubectl describe`, and flag a bad ConfigMap value."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness import Kube


async def events_for(kube: Kube, kind: str, name: str, want: set[str]) -> list[str]:
    deadline = time.monotonic() + 20
    while True:
        listed = await kube.core.list_namespaced_event(
            kube.namespace, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}"
        )
        reasons = [e.reason for e in sorted(listed.items, key=lambda e: e.metadata.name)]
        if want <= set(reasons) or time.monotonic() > deadline:
            return reasons
        await asyncio.sleep(0.2)


async def test_transitions_are_events_in_kubectl_describe(kube: Kube, start_operator: Any) -> None:
    await kube.set_limit("1")
    await start_operator()
    await kube.create_job("first", {"algorithm": "Sleep", "params": {"seconds": 1.5}})
    await kube.create_job(
        "second", {"algorithm": "Burn", "params": {"seconds": 30}, "timeoutSeconds": 1}
    )
    await kube.wait_phase("first", "Succeeded")
    await kube.wait_phase("second", "Failed", timeout=30)
    assert {"Started", "Succeeded"} <= set(
        await events_for(kube, "AlgorithmJob", "first", {"Started", "Succeeded"})
    )
    story = await events_for(kube, "AlgorithmJob", "second", {"Queued", "Started", "TimedOut"})
    assert {"Queued", "Started", "TimedOut"} <= set(story)
    described = kube.kubectl("describe", "ajob", "second").stdout
    assert "TimedOut" in described and "Queued" in described


async def test_bad_configmap_value_is_an_event_on_the_configmap(
    kube: Kube, start_operator: Any
) -> None:
    await kube.set_limit("2")
    await start_operator()
    await kube.set_limit("lots")
    reasons = await events_for(kube, "ConfigMap", "jobgate-config", {"ConfigInvalid"})
    assert "ConfigInvalid" in reasons
    listed = await kube.core.list_namespaced_event(
        kube.namespace, field_selector="involvedObject.kind=ConfigMap"
    )
    assert any("maxConcurrentJobs='lots'" in e.message for e in listed.items)
