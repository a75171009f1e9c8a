"""Configuration layers: defaults, environment, ConfigMap; bad values named with their fix."""

from __future__ import annotations

import pytest

from jobgate.config import ConfigError, Settings, parse_configmap


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
    overrides, problems = parse_configmap({"maxConcurrentJobs": raw})
    assert overrides.max_concurrent_jobs is None
    assert len(problems) == 1
    assert "maxConcurrentJobs" in problems[0] and "jobgate-config" in problems[0]


def test_configmap_zero_pauses_and_values_parse() -> None:
    overrides, problems = parse_configmap({"maxConcurrentJobs": "0", "defaultTimeoutSeconds": "90"})
    assert problems == []
    assert overrides.max_concurrent_jobs == 0
    assert overrides.default_timeout_seconds == 90
