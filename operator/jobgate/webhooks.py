"""Webhook delivery: POST a finished job's final status to ``spec.webhook.url``, reliably.

- Signed per the Standard Webhooks spec (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``; HMAC-SHA256 via the ``standardwebhooks`` package) with the key in
  ``spec.webhook.secretRef``; without a secretRef deliveries go unsigned.
- ``webhook-id`` is ``msg_<job uid>``: the same for every retry, and across restarts, so
  receivers can deduplicate.
- Retries: exponential backoff with full jitter (base, cap and attempts in
  :class:`DeliveryPolicy`); a 429's ``Retry-After`` is honoured; a 410 stops delivery; every
  request has a timeout.
- Delivery runs in its own task after the job's slot is released; its state is recorded in
  ``status.webhook`` (``state``, ``attempts``, ``lastResponseCode``, ``lastError``,
  ``deliveredAt``, ``nextAttemptAt``), which is also what lets a restarted operator finish a
  delivery that was still owed.
- SSRF guard: link-local and cloud-metadata addresses are refused unless allowlisted; a
  refused URL ends the delivery (state ``Refused``), and the job's own result stands.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import email.utils
import ipaddress
import json
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from standardwebhooks.webhooks import Webhook as Signer
from yarl import URL

from jobgate.events import WARNING, EventRecorder
from jobgate.kube import GROUP, KIND, VERSION, JobRef
from jobgate.metrics import Metrics
from jobgate.spec import Webhook
from jobgate.status import precise_timestamp

logger = logging.getLogger(__name__)

SecretReader = Callable[[str, str, str], Awaitable[bytes | None]]
Recorder = Callable[[JobRef, dict[str, Any]], None]

# Refused by default: link-local (which holds most clouds' metadata endpoints) and the
# metadata addresses outside it.
DEFAULT_DENY = (
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",  # AWS IMDS over IPv6
    "100.100.100.200/32",  # Alibaba Cloud metadata
)
OWED_STATES = ("Pending", "Retrying")


class Refused(Exception):
    """The URL resolves to an address the SSRF guard refuses."""


@dataclasses.dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 8
    """Attempts before giving up (state ``Failed``)."""
    backoff_base_seconds: float = 1.0
    """Upper bound of the first retry delay; doubles each attempt (full jitter below it)."""
    backoff_max_seconds: float = 300.0
    """Cap of the retry delay (and of a receiver's Retry-After)."""
    timeout_seconds: float = 10.0
    """Time limit of one request."""
    allow_cidrs: tuple[str, ...] = ()
    """Networks opened despite the default deny list (e.g. a receiver on link-local)."""

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff after failed attempt number ``attempt``."""
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


class AddressGuard:
    def __init__(self, allow: tuple[str, ...] = ()) -> None:
        self._deny = [ipaddress.ip_network(n) for n in DEFAULT_DENY]
        self._allow = [ipaddress.ip_network(n, strict=False) for n in allow]

    def refuses(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip in net for net in self._allow):
            return False
        return any(ip.version == net.version and ip in net for net in self._deny)


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp, then drops refused addresses (checked at connect time, so a
    DNS answer that changes between a check and the request cannot slip through)."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        allowed = [a for a in answers if not self._guard.refuses(a["host"])]
        if not allowed:
            refused = ", ".join(sorted({a["host"] for a in answers}))
            raise Refused(f"{host} resolves only to refused addresses ({refused})")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _retry_after(value: str | None, cap: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - _now()).total_seconds()
    return min(max(seconds, 0.0), cap)


class WebhookNotifier:
    """Owns the HTTP session and the deliveries in flight."""

    def __init__(
        self,
        *,
        record: Recorder,
        read_secret: SecretReader,
        metrics: Metrics,
        policy: DeliveryPolicy,
        events: EventRecorder | None = None,
    ) -> None:
        self._record = record
        self._events = events
        self._read_secret = read_secret
        self._metrics = metrics
        self.policy = policy
        self._guard = AddressGuard(policy.allow_cidrs)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._done: set[str] = set()  # uids delivered or given up by this process

    def notify(self, job: JobRef, webhook: Webhook, status: dict[str, Any]) -> None:
        """Start delivering ``status`` (the job's final status) for a job that just ended."""
        self._start(job, webhook, status, attempts=0, not_before=None)

    def resume_if_owed(self, job: JobRef, webhook: Webhook, body: Mapping[str, Any]) -> None:
        """After a restart: finish a delivery that a finished job's status says is owed."""
        status = dict(body.get("status") or {})
        record = status.pop("webhook", None) or {}
        if record.get("state") not in OWED_STATES or job.uid in self._done:
            return
        not_before = None
        if record.get("nextAttemptAt"):
            try:
                not_before = datetime.datetime.fromisoformat(record["nextAttemptAt"])
            except ValueError:
                not_before = None
        self._start(job, webhook, status, int(record.get("attempts") or 0), not_before)

    def forget(self, uid: str) -> None:
        task = self._tasks.pop(uid, None)
        if task is not None:
            task.cancel()
        self._done.discard(uid)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def _start(
        self,
        job: JobRef,
        webhook: Webhook,
        status: dict[str, Any],
        attempts: int,
        not_before: datetime.datetime | None,
    ) -> None:
        if job.uid in self._tasks:
            return
        task = asyncio.create_task(
            self._deliver(job, webhook, status, attempts, not_before), name=f"webhook {job}"
        )
        self._tasks[job.uid] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.uid, None))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._guard))
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout_seconds),
            )
        return self._session

    async def _deliver(
        self,
        job: JobRef,
        webhook: Webhook,
        status: dict[str, Any],
        attempts: int,
        not_before: datetime.datetime | None,
    ) -> None:
        status = {k: v for k, v in status.items() if k != "webhook"}
        payload = json.dumps(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "metadata": {"namespace": job.namespace, "name": job.name, "uid": job.uid},
                "status": status,
            },
            separators=(",", ":"),
        )
        msg_id = f"msg_{job.uid}"
        if not_before is not None:
            await asyncio.sleep(max(0.0, (not_before - _now()).total_seconds()))
        record: dict[str, Any] = {"attempts": attempts}
        while True:
            attempts += 1
            record = {"attempts": attempts, "nextAttemptAt": None}
            wait: float | None = None
            try:
                headers = await self._headers(job, webhook, msg_id, payload)
                self._check_literal(webhook.url)
                async with self._http().post(webhook.url, data=payload, headers=headers) as resp:
                    record["lastResponseCode"] = resp.status
                    if 200 <= resp.status < 300:
                        record.update(
                            state="Delivered", deliveredAt=precise_timestamp(_now()), lastError=None
                        )
                        return self._finish(job, record, "delivered")
                    record["lastError"] = f"the receiver answered HTTP {resp.status}"
                    if resp.status == 410:
                        record["state"] = "Failed"
                        record["lastError"] += " (Gone): delivery stopped"
                        return self._finish(job, record, "gone")
                    if resp.status == 429:
                        wait = _retry_after(
                            resp.headers.get("Retry-After"), self.policy.backoff_max_seconds
                        )
                    outcome = "rejected"
            except Refused as exc:
                record.update(
                    state="Refused",
                    lastError=f"refused by the SSRF guard: {exc}; allow the network "
                    "with JOBGATE_WEBHOOK_ALLOW_CIDRS if this is intended",
                )
                return self._finish(job, record, "refused")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                record["lastError"] = f"{type(exc).__name__}: {exc}".rstrip(": ")
                outcome = "error"
            except _SecretProblem as exc:
                record.update(state="Failed", lastError=str(exc))
                return self._finish(job, record, "error")
            self._metrics.webhook_deliveries.labels(outcome).inc()
            if attempts >= self.policy.max_attempts:
                record["state"] = "Failed"
                record["lastError"] += f"; gave up after {attempts} attempts"
                return self._finish(job, record, "gave_up")
            delay = wait if wait is not None else self.policy.delay(attempts)
            next_at = _now() + datetime.timedelta(seconds=delay)
            record.update(state="Retrying", nextAttemptAt=precise_timestamp(next_at))
            logger.warning(
                "webhook for AlgorithmJob %s failed (attempt %d: %s); retrying in %.1fs",
                job,
                attempts,
                record["lastError"],
                delay,
                extra={"job": str(job)},
            )
            self._record(job, {"webhook": record})
            await asyncio.sleep(delay)

    def _finish(self, job: JobRef, record: dict[str, Any], outcome: str) -> None:
        if outcome != "delivered":
            self._metrics.webhook_deliveries.labels(outcome).inc()
            logger.warning(
                "webhook for AlgorithmJob %s ended %s: %s",
                job,
                record["state"],
                record.get("lastError"),
                extra={"job": str(job)},
            )
            if self._events is not None:
                self._events.job(
                    job,
                    "WebhookFailed",
                    f"{record['state']} after {record['attempts']} attempt(s): "
                    f"{record.get('lastError')}",
                    WARNING,
                )
        else:
            self._metrics.webhook_deliveries.labels("delivered").inc()
        self._done.add(job.uid)
        self._record(job, {"webhook": record})

    def _check_literal(self, url: str) -> None:
        """aiohttp skips the resolver for IP literals: check those here."""
        host = URL(url).host or ""
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        if self._guard.refuses(host.strip("[]")):
            raise Refused(f"{host} is a link-local or cloud-metadata address")

    async def _headers(
        self, job: JobRef, webhook: Webhook, msg_id: str, payload: str
    ) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if webhook.secret_name is None:
            return headers
        key_name = webhook.secret_key or "key"
        secret = await self._read_secret(job.namespace, webhook.secret_name, key_name)
        if not secret:
            raise _SecretProblem(
                f"Secret {job.namespace}/{webhook.secret_name} key {key_name!r} is missing or "
                "empty (or jobgate may not read it: see the README's Webhooks section)"
            )
        text = secret.decode(errors="replace").strip()
        signer = Signer(text if text.startswith("whsec_") else secret)
        timestamp = _now()
        headers.update(
            {
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(timestamp.timestamp())),
                "webhook-signature": signer.sign(msg_id, timestamp, payload),
            }
        )
        return headers


class _SecretProblem(Exception):
    """The signing secret cannot be read: retrying will not help until the user fixes it."""
