"""The wait queue: jobs ordered by priority (higher first), then by creation order.

Creation order is the job's creation ``resourceVersion`` (the etcd revision at which it was
created), which survives an operator restart: an object whose status was never written still
carries it as its ``resourceVersion``, and the operator keeps it in ``status.submitOrder``
once it writes a status. Insert, remove and position are O(log n).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

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
    """Ordered set of waiting job uids; the scheduler owns the jobs themselves."""

    def __init__(self) -> None:
        self._keys: SortedList[QueueKey] = SortedList()
        self._by_uid: dict[str, QueueKey] = {}

    def __len__(self) -> int:
        return len(self._by_uid)

    def __contains__(self, uid: object) -> bool:
        return uid in self._by_uid

    def push(self, key: QueueKey) -> None:
        if key.uid in self._by_uid:
            self.remove(key.uid)
        self._keys.add(key)
        self._by_uid[key.uid] = key

    def remove(self, uid: str) -> bool:
        """Take a job out of the queue; False if it was not queued."""
        key = self._by_uid.pop(uid, None)
        if key is None:
            return False
        self._keys.remove(key)
        return True

    def peek(self) -> str | None:
        """The uid at the head of the queue, or None when empty."""
        return self._keys[0].uid if self._keys else None

    def position(self, uid: str) -> int | None:
        """1-based place in the queue, or None when not queued."""
        key = self._by_uid.get(uid)
        return None if key is None else self._keys.index(key) + 1

    def __iter__(self) -> Iterator[str]:
        """Uids from the head of the queue; do not mutate the queue while iterating."""
        return (key.uid for key in self._keys)
