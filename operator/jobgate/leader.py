"""Leader election on a ``coordination.k8s.io`` Lease: one active replica, the rest stand by.

The pattern of client-go and controller-runtime: the leader renews the Lease every
``retry_seconds``; a standby takes it over once ``renewTime + leaseDurationSeconds`` has
passed. A leader that cannot renew for ``renew_deadline`` (shorter than the lease) steps
down on its own before anyone else may take over, so two replicas never run jobs at once.
Updates carry the Lease's ``resourceVersion``, so two standbys racing for an expired Lease
cannot both win. On a clean shutdown the leader releases the Lease for an instant hand-over.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import os
import socket
from collections.abc import Callable

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

logger = logging.getLogger(__name__)


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass
class LeaderElector:
    api: client.ApiClient
    namespace: str
    name: str = "jobgate"
    identity: str = dataclasses.field(default_factory=default_identity)
    lease_seconds: float = 15.0
    retry_seconds: float = 2.0
    renew_deadline: float = 10.0

    def __post_init__(self) -> None:
        if not self.retry_seconds < self.renew_deadline < self.lease_seconds:
            raise ValueError("leader election needs retry < renew deadline < lease duration")
        self._leases = client.CoordinationV1Api(self.api)

    async def acquire(self) -> None:
        """Wait (as a standby) until this replica holds the Lease."""
        announced = False
        while not await self._try_take():
            if not announced:
                logger.info(
                    "standing by: Lease %s/%s is held by another replica", self.namespace, self.name
                )
                announced = True
            await asyncio.sleep(self.retry_seconds)
        logger.info(
            "leading: this replica (%s) holds Lease %s/%s", self.identity, self.namespace, self.name
        )

    async def hold(self, on_lost: Callable[[], None]) -> None:
        """Renew until cancelled; call ``on_lost`` once renewals fail past the deadline."""
        last_renewed = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                if await self._try_take():
                    last_renewed = asyncio.get_running_loop().time()
                    continue
                reason = "another replica holds the Lease"
            except Exception as exc:  # the API server may be briefly unreachable
                reason = f"renewing failed: {exc}"
            if asyncio.get_running_loop().time() - last_renewed > self.renew_deadline:
                logger.error("lost leadership (%s); stepping down", reason)
                on_lost()
                return

    async def release(self) -> None:
        """Give the Lease up now (clean shutdown), so a standby need not wait for expiry."""
        try:
            lease = await self._leases.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.renew_time = None
            await self._leases.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as exc:
            logger.warning("could not release Lease %s/%s: %s", self.namespace, self.name, exc)

    async def _try_take(self) -> bool:
        """Create, renew or take over the Lease; False while someone else validly holds it."""
        now = _now()
        try:
            lease = await self._leases.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=self._spec(now, acquired=now, transitions=0),
            )
            try:
                await self._leases.create_namespaced_lease(self.namespace, body)
            except ApiException as create_exc:
                if create_exc.status == 409:  # another replica created it first
                    return False
                raise
            return True
        spec = lease.spec
        mine = spec.holder_identity == self.identity
        if not mine and spec.holder_identity and spec.renew_time is not None:
            duration = spec.lease_duration_seconds or self.lease_seconds
            if spec.renew_time + datetime.timedelta(seconds=duration) > now:
                return False
        transitions = (spec.lease_transitions or 0) + (0 if mine else 1)
        acquired = spec.acquire_time if mine and spec.acquire_time else now
        lease.spec = self._spec(now, acquired=acquired, transitions=transitions)
        try:  # carries metadata.resourceVersion: a racing writer gets 409 Conflict
            await self._leases.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def _spec(
        self, now: datetime.datetime, *, acquired: datetime.datetime, transitions: int
    ) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=max(1, round(self.lease_seconds)),
            acquire_time=acquired,
            renew_time=now,
            lease_transitions=transitions,
        )
