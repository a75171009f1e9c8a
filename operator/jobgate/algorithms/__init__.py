"""The algorithm registry: named, plain functions of their params returning a JSON object.

An :class:`Algorithm` carries its own parameter check (so that bad params end the job as
``InvalidSpec`` before it takes a slot) and exactly one way to run: ``compute``, a synchronous
function that the runner sends to a worker process (CPU-bound work, stoppable by a timeout or
a cancel), or ``wait``, a coroutine that runs on the event loop and must not block it (I/O).
Third-party algorithms plug in through the entry-point group ``jobgate.algorithms``; each
entry point names an :class:`Algorithm` instance.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from importlib import metadata
from typing import Any

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "jobgate.algorithms"

Params = dict[str, Any]
Result = dict[str, Any]


class InvalidParams(ValueError):
    """The job's ``spec.params`` cannot be run; the message names the field and the fix."""


class AlgorithmFailure(RuntimeError):
    """The algorithm ran and failed; retrying may help (``AlgorithmError``)."""


@dataclasses.dataclass(frozen=True)
class Algorithm:
    name: str
    check_params: Callable[[Mapping[str, Any]], Params]
    """Validate and normalise ``spec.params``; raise :class:`InvalidParams` naming the field."""
    compute: Callable[[Params], Result] | None = None
    """CPU-bound body, run in a worker process; must be a picklable module-level function."""
    wait: Callable[[Params], Awaitable[Result]] | None = None
    """I/O-bound body, run on the event loop."""
    slots: int = 1
    """Concurrency slots one run of this algorithm holds."""
    description: str = ""

    def __post_init__(self) -> None:
        if (self.compute is None) == (self.wait is None):
            raise TypeError(f"algorithm {self.name!r} needs exactly one of compute= or wait=")
        if self.slots < 1:
            raise TypeError(f"algorithm {self.name!r} needs slots >= 1, got {self.slots}")


class AlgorithmRegistry:
    """Algorithms by name; built at start-up (built-ins plus entry points), never at import."""

    def __init__(self, algorithms: Iterable[Algorithm] = ()) -> None:
        self._by_name: dict[str, Algorithm] = {}
        for algorithm in algorithms:
            self.add(algorithm)

    def add(self, algorithm: Algorithm) -> None:
        if algorithm.name in self._by_name:
            raise ValueError(f"algorithm {algorithm.name!r} is registered twice")
        self._by_name[algorithm.name] = algorithm

    def get(self, name: str) -> Algorithm | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    @classmethod
    def default(cls, *, entry_points: bool = True) -> AlgorithmRegistry:
        """The built-in algorithms, plus those installed under ``jobgate.algorithms``."""
        from jobgate.algorithms.burn import BURN
        from jobgate.algorithms.primes import PRIME_CHECKER
        from jobgate.algorithms.sleep import SLEEP

        registry = cls([PRIME_CHECKER, SLEEP, BURN])
        if entry_points:
            for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
                try:
                    plugin = entry.load()
                    if not isinstance(plugin, Algorithm):
                        raise TypeError(f"{entry.value} is not a jobgate Algorithm")
                    registry.add(plugin)
                except Exception:  # one broken plugin must not stop the operator
                    logger.exception("skipping algorithm entry point %r", entry.name)
        return registry


def reject_unknown(name: str, params: Mapping[str, Any], known: Iterable[str]) -> None:
    """Refuse params the algorithm does not take, rather than silently ignore them."""
    allowed = sorted(known)
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise InvalidParams(
            f"spec.params.{extra[0]} is not a parameter of {name} (it takes: {', '.join(allowed)})"
        )
