"""Unit-test fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fakes import World


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World(limit=2)
    yield w
    await w.scheduler.close()
    w.runner.close()
