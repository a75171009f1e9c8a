"""Status bodies and conditions, as kubectl and `kubectl wait` read them."""

from __future__ import annotations

import datetime

from jobgate.status import Phase, Reason, conditions_for, merge_conditions, summarize, transition

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(seconds=5)


def by_type(status: dict[str, object]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}  # type: ignore[attr-defined]


def test_each_phase_has_the_conditions_kubectl_wait_needs() -> None:
    assert {c["type"]: c["status"] for c in conditions_for(Phase.PENDING, "WaitingForSlot")} == {
        "Admitted": "False"
    }
    running = {c["type"]: c["status"] for c in conditions_for(Phase.RUNNING, "Started")}
    assert running == {"Admitted": "True", "Running": "True"}
    done = {c["type"]: c["status"] for c in conditions_for(Phase.SUCCEEDED, "Succeeded")}
    assert done["Complete"] == "True" and done["Running"] == "False"
    failed = {c["type"]: c["status"] for c in conditions_for(Phase.FAILED, "Timeout")}
    assert failed == {"Running": "False", "Failed": "True"}
    cancelled = {c["type"]: c["status"] for c in conditions_for(Phase.CANCELLED, "Cancelled")}
    assert cancelled == {"Running": "False", "Cancelled": "True"}


def test_transition_time_moves_only_when_status_flips() -> None:
    running = transition(Phase.RUNNING, Reason.STARTED, "go", previous_conditions=[], now=T0)
    done = transition(
        Phase.SUCCEEDED, Reason.SUCCEEDED, "ok", previous_conditions=running["conditions"], now=T1
    )
    times = {c["type"]: c["lastTransitionTime"] for c in done["conditions"]}
    assert times["Admitted"] == "2026-01-01T12:00:00Z"  # still True: kept
    assert times["Running"] == "2026-01-01T12:00:05Z"  # flipped: moved
    assert times["Complete"] == "2026-01-01T12:00:05Z"


def test_retry_drops_the_failed_condition() -> None:
    failed = transition(Phase.FAILED, Reason.TIMEOUT, "late", previous_conditions=[], now=T0)
    again = merge_conditions(
        failed["conditions"], conditions_for(Phase.RUNNING, "Started"), "2026-01-01T12:00:05Z"
    )
    assert {c["type"] for c in again} == {"Admitted", "Running"}


def test_transition_carries_fields_and_clears_with_none() -> None:
    body = transition(
        Phase.RUNNING, Reason.STARTED, "", previous_conditions=[], now=T0, attempts=2, result=None
    )
    assert body["phase"] == "Running" and body["reason"] == "Started"
    assert body["attempts"] == 2 and body["result"] is None


def test_summary_is_short() -> None:
    assert summarize({"number": 97, "isPrime": True}) == "number=97, isPrime=True"
    assert len(summarize({"number": "9" * 400})) == 60
    assert summarize(None) == ""
