"""Webhook building blocks: the SSRF guard, Retry-After, and the backoff schedule."""

from __future__ import annotations

import datetime
import email.utils

import pytest

from jobgate.webhooks import AddressGuard, DeliveryPolicy, _retry_after


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "100.100.100.200"]
)
def test_link_local_and_metadata_are_refused(address: str) -> None:
    assert AddressGuard().refuses(address)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.5", "8.8.8.8", "::1"])
def test_ordinary_addresses_pass(address: str) -> None:
    assert not AddressGuard().refuses(address)


def test_allowlist_opens_a_refused_network() -> None:
    guard = AddressGuard(allow=("169.254.10.0/24",))
    assert not guard.refuses("169.254.10.7")
    assert guard.refuses("169.254.169.254")


def test_retry_after_seconds_and_dates_are_capped() -> None:
    assert _retry_after("3", cap=60) == 3
    assert _retry_after("9999", cap=60) == 60
    assert _retry_after(None, cap=60) is None
    assert _retry_after("soon", cap=60) is None
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    seconds = _retry_after(email.utils.format_datetime(later, usegmt=True), cap=60)
    assert seconds is not None and 25 <= seconds <= 30


def test_backoff_grows_exponentially_with_jitter_under_the_cap() -> None:
    policy = DeliveryPolicy(backoff_base_seconds=1, backoff_max_seconds=10)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
