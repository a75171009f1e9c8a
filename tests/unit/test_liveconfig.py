"""ConfigMap changes apply live; a bad value keeps the limit in force and is reported."""

from __future__ import annotations

from typing import Any

from jobgate.config import Policy, Settings
from jobgate.liveconfig import LiveConfig


def make() -> tuple[LiveConfig, list[int], list[float], list[str]]:
    limits: list[int] = []
    timeouts: list[float] = []
    reports: list[str] = []

    def apply(policy: Policy) -> None:
        limits.append(policy.max_concurrent_jobs)
        timeouts.append(policy.default_timeout_seconds)

    live = LiveConfig(
        api=Any,  # type: ignore[arg-type]  # apply() never calls the API
        settings=Settings(max_concurrent_jobs=7, default_timeout_seconds=100),
        apply=apply,
        report=reports.append,
    )
    return live, limits, timeouts, reports


def test_configmap_value_wins_over_environment() -> None:
    live, limits, timeouts, reports = make()
    live.apply({"maxConcurrentJobs": "3", "defaultTimeoutSeconds": "30"})
    assert limits[-1] == 3 and timeouts[-1] == 30 and reports == []


def test_missing_configmap_or_key_falls_back_to_environment() -> None:
    live, limits, timeouts, _ = make()
    live.apply(None)
    assert limits[-1] == 7 and timeouts[-1] == 100
    live.apply({"maxConcurrentJobs": "3"})
    live.apply({})
    assert limits[-1] == 7


def test_bad_value_keeps_the_previous_limit_and_is_reported() -> None:
    live, limits, _, reports = make()
    live.apply({"maxConcurrentJobs": "4"})
    live.apply({"maxConcurrentJobs": "four"})
    live.apply({"maxConcurrentJobs": "four"})  # a resync repeats it: reported once
    assert limits[-1] == 4
    assert len(reports) == 1
    assert "maxConcurrentJobs='four'" in reports[0] and "previous value" in reports[0]


def test_zero_pauses() -> None:
    live, limits, _, _ = make()
    live.apply({"maxConcurrentJobs": "0"})
    assert limits[-1] == 0
