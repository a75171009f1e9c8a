"""``Sleep``: waits ``seconds`` without using CPU; the standard load for demos and benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from jobgate.algorithms import Algorithm, InvalidParams, Params, Result, reject_unknown

MAX_SECONDS = 3600


def check_params(params: Mapping[str, Any]) -> Params:
    reject_unknown("Sleep", params, ["seconds"])
    seconds = params.get("seconds")
    if seconds is None:
        raise InvalidParams("spec.params.seconds is required: a number from 0 to 3600")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise InvalidParams(f"spec.params.seconds must be a number from 0 to 3600, got {seconds!r}")
    if not 0 <= seconds <= MAX_SECONDS:
        raise InvalidParams(f"spec.params.seconds must be from 0 to 3600, got {seconds}")
    return {"seconds": seconds}


async def sleep(params: Params) -> Result:
    await asyncio.sleep(params["seconds"])
    return {"sleptSeconds": params["seconds"]}


SLEEP = Algorithm(
    name="Sleep",
    check_params=check_params,
    wait=sleep,
    description="Waits params.seconds (0-3600) on the event loop; result {sleptSeconds}.",
)
