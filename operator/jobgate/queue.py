"""The wait queue: jobs ordered by priority (higher first), then by creation order.

Creation order is the job's creation ``resourceVersion`` (the etcd revision at which it was
created), which survives an operator restart: an object whose status was never written still
carries it as its ``resourceVersion``, and the operator keeps it in ``status.submitOrder``
once it writes a status.

Jobs wait in one lane per namespace, so that a namespace at its own limit is skipped by
looking at its lane's head only, never by scanning its waiting jobs. The global order is the
merge of the lanes. Insert and remove are O(log n); choosing the next job is O(namespaces);
a job's global position is O(namespaces * log n).
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Iterator

from sortedcontainers import SortedList


@dataclasses.dataclass(frozen=True, order=True)
class QueueKey:
    """Sort key: ``(-priority, creation order, uid)``; the uid only breaks exact ties."""

    neg_priority: int
    order: int
    uid: str

    @classmethod
    def make(cls, priority: int, order: int, uid: str) -> QueueKey:
        return cls(-priority, order, uid)


class WaitQueue:
    """Ordered waiting job uids, in per-namespace lanes; the scheduler owns the jobs."""

    def __init__(self) -> None:
        self._lanes: dict[str, SortedList[QueueKey]] = {}
        self._by_uid: dict[str, tuple[str, QueueKey]] = {}

    def __len__(self) -> int:
        return len(self._by_uid)

    def __contains__(self, uid: object) -> bool:
        return uid in self._by_uid

    def push(self, namespace: str, key: QueueKey) -> None:
        if key.uid in self._by_uid:
            self.remove(key.uid)
        self._lanes.setdefault(namespace, SortedList()).add(key)
        self._by_uid[key.uid] = (namespace, key)

    def remove(self, uid: str) -> bool:
        """Take a job out of the queue; False if it was not queued."""
        entry = self._by_uid.pop(uid, None)
        if entry is None:
            return False
        namespace, key = entry
        lane = self._lanes[namespace]
        lane.remove(key)
        if not lane:
            del self._lanes[namespace]
        return True

    def best(self, eligible: Callable[[str, str], bool] | None = None) -> str | None:
        """The first job in global order whose lane head passes ``eligible(namespace, uid)``."""
        heads = [(lane[0], ns) for ns, lane in self._lanes.items()]
        for key, namespace in sorted(heads):
            if eligible is None or eligible(namespace, key.uid):
                return key.uid
        return None

    def blocked_lanes(self, eligible: Callable[[str, str], bool]) -> set[str]:
        """Namespaces whose head job is not eligible now (e.g. at their group limit)."""
        return {ns for ns, lane in self._lanes.items() if not eligible(ns, lane[0].uid)}

    def position(self, uid: str) -> int | None:
        """1-based place in the global queue, or None when not queued."""
        entry = self._by_uid.get(uid)
        if entry is None:
            return None
        key = entry[1]
        return 1 + sum(lane.bisect_left(key) for lane in self._lanes.values())

    def namespace_of(self, uid: str) -> str | None:
        entry = self._by_uid.get(uid)
        return None if entry is None else entry[0]

    def __iter__(self) -> Iterator[str]:
        """Uids in global order; do not mutate the queue while iterating."""
        return (key.uid for key in heapq.merge(*self._lanes.values()))
