"""``Burn``: keeps one CPU busy for ``seconds`` (optionally holding ``memoryMiB``).

The CPU-bound counterpart of ``Sleep``: a load for demos, benchmarks and tests of what only
a worker process can show — a timeout or a cancel that really stops a busy CPU, and the
per-job ``spec.resources`` limits. It runs in a worker process like every CPU-bound
algorithm.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from jobgate.algorithms import Algorithm, InvalidParams, Params, Result, reject_unknown

MAX_SECONDS = 3600
MAX_MEMORY_MIB = 4096


def check_params(params: Mapping[str, Any]) -> Params:
    reject_unknown("Burn", params, ["seconds", "memoryMiB"])
    seconds = params.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise InvalidParams(f"spec.params.seconds must be a number from 0 to 3600, got {seconds!r}")
    if not 0 <= seconds <= MAX_SECONDS:
        raise InvalidParams(f"spec.params.seconds must be from 0 to 3600, got {seconds}")
    memory = params.get("memoryMiB", 0)
    if isinstance(memory, bool) or not isinstance(memory, int) or not 0 <= memory <= MAX_MEMORY_MIB:
        raise InvalidParams(
            f"spec.params.memoryMiB must be an integer from 0 to 4096, got {memory!r}"
        )
    return {"seconds": seconds, "memoryMiB": memory}


def burn(params: Params) -> Result:
    held = bytearray(params["memoryMiB"] * 2**20)  # zero-filled: the pages are really touched
    deadline = time.process_time() + params["seconds"]
    spins = 0
    while time.process_time() < deadline:
        spins += 1
    return {"burnedSeconds": params["seconds"], "allocatedMiB": len(held) // 2**20}


BURN = Algorithm(
    name="Burn",
    check_params=check_params,
    compute=burn,
    description="Keeps a CPU busy for params.seconds (0-3600), holding params.memoryMiB.",
)
