"""The kopf handlers: the only module that imports kopf. Thin by design.

kopf is used as the watch layer only: ``@kopf.on.event`` keeps no handler progress and
writes no annotations, so the operator's own status writes are its only writes per job.
Each event is handed to the scheduler; the start-up and clean-up hooks build and tear down
the :class:`~jobgate.runtime.Runtime`.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from jobgate.config import Settings
from jobgate.kube import GROUP, PLURAL, VERSION
from jobgate.runtime import Runtime


def build_registry(config: Settings) -> kopf.OperatorRegistry:
    """A fresh registry with jobgate's handlers (none are registered at import time)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        settings.posting.level = logging.WARNING
        settings.scanning.disabled = True  # we know our resource; no CRD watch, no CRD RBAC
        settings.watching.server_timeout = 600
        settings.watching.client_timeout = 660
        memo.runtime = await Runtime.start(config)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime | None = getattr(memo, "runtime", None)
        if runtime is not None:
            await runtime.stop()

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def algorithm_job(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
        scheduler = memo.runtime.scheduler
        body = event["object"]
        if event.get("type") == "DELETED":
            scheduler.forget(body.get("metadata", {}).get("uid", ""))
        else:
            scheduler.observe(body)

    return registry
