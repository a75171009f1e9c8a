"""Configuration layers: defaults, environment, ConfigMap; bad values named with their fix."""

from __future__ import annotations

import pytest

from jobgate.config import ConfigError, Policy, Settings, parse_configmap

ENV = Settings(max_concurrent_jobs=7, default_timeout_seconds=100)


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.max_concurrent_jobs == 10
    assert settings.namespace == "jobgate-system"
    assert settings.http_port == 8000


def test_environment_overrides_defaults() -> None:
    settings = Settings.from_env(
        {
            "MAX_CONCURRENT_JOBS": "20",
            "JOBGATE_NAMESPACE": "ops",
            "JOBGATE_HTTP_PORT": "9000",
            "JOBGATE_WATCH_NAMESPACES": "a, b",
        }
    )
    assert settings.max_concurrent_jobs == 20
    assert settings.namespace == "ops"
    assert settings.http_port == 9000
    assert settings.watch_namespaces == ("a", "b")


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="MAX_CONCURRENT_JOBS='ten'"):
        Settings.from_env({"MAX_CONCURRENT_JOBS": "ten"})


@pytest.mark.parametrize("raw", ["-1", "ten", "1.5", " "])
def test_configmap_bad_limit_is_reported_and_skipped(raw: str) -> None:
    previous = Policy(max_concurrent_jobs=4, default_timeout_seconds=100)
    policy, problems = parse_configmap({"maxConcurrentJobs": raw}, ENV, previous)
    assert policy.max_concurrent_jobs == 4  # the value in force stays
    assert len(problems) == 1
    assert "maxConcurrentJobs" in problems[0] and "jobgate-config" in problems[0]


def test_configmap_zero_pauses_and_values_parse() -> None:
    policy, problems = parse_configmap(
        {
            "maxConcurrentJobs": "0",
            "defaultTimeoutSeconds": "90",
            "namespaceLimits": "{team-a: 2, '*': 5}",
            "algorithmSlots": "PrimeChecker: 2",
            "retryBackoffBaseSeconds": "0.5",
            "retryBackoffMaxSeconds": "4",
        },
        ENV,
    )
    assert problems == []
    assert policy.max_concurrent_jobs == 0
    assert policy.default_timeout_seconds == 90
    assert policy.namespace_limit("team-a") == 2
    assert policy.namespace_limit("other") == 5
    assert policy.algorithm_slots == {"PrimeChecker": 2}
    assert [policy.retry_delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 4, 4]


def test_absent_keys_fall_back_to_the_environment() -> None:
    policy, problems = parse_configmap(
        {}, ENV, Policy(max_concurrent_jobs=3, default_timeout_seconds=5)
    )
    assert problems == []
    assert policy.max_concurrent_jobs == 7 and policy.default_timeout_seconds == 100


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("namespaceLimits", "[1, 2]"),
        ("namespaceLimits", "{a: -1}"),
        ("algorithmSlots", "{X: 0}"),
        ("namespaceLimits", "{a: b"),
        ("retryBackoffMaxSeconds", "soon"),
    ],
)
def test_bad_maps_and_numbers_are_reported_and_keep_the_previous_value(key: str, raw: str) -> None:
    previous = Policy(
        max_concurrent_jobs=4,
        default_timeout_seconds=100,
        namespace_limits={"a": 1},
        algorithm_slots={"X": 2},
        retry_max_seconds=9,
    )
    policy, problems = parse_configmap({key: raw}, ENV, previous)
    assert len(problems) == 1 and key in problems[0]
    assert policy.namespace_limits == {"a": 1} or key != "namespaceLimits"
    assert policy.algorithm_slots == {"X": 2} or key != "algorithmSlots"
    assert policy.retry_max_seconds == 9 or key != "retryBackoffMaxSeconds"


def test_unknown_key_is_reported_not_silently_ignored() -> None:
    _, problems = parse_configmap({"maxConcurentJobs": "5"}, ENV)
    assert problems and "unknown key 'maxConcurentJobs'" in problems[0]
