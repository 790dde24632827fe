"""OmnisendAutomationApprovalOperator and the approval route of the safety check, against the emulator.

The form itself (Airflow parking the task and the UI's REST call answering it) is exercised in real
Airflow by the e2e tests; here the operator's two halves are driven directly: what it does before it
asks (or does not ask), and what it does with each answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from airflow.sdk.exceptions import AirflowFailException
from pipeline_helpers import automation
from send_helpers import DAY, STORE, connect, make_events

from airflow_omnisend.approvals import approval_path, load_approval
from airflow_omnisend.operators.approval import SEND_ANYWAY, STOP, OmnisendAutomationApprovalOperator
from airflow_omnisend.operators.safety import OmnisendAutomationSafetyOperator
from airflow_omnisend.operators.validate import OmnisendValidateEventsOperator
from airflow_omnisend.staging import PartitionStaging, StagingRoot
from airflow_omnisend.testing.emulator import OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

CONFIRMATION = {
    **automation("65f000000000000000000001", "Order confirmation", "placed order"),
    "updatedAt": "2026-10-01T08:00:00Z",
}
REASON = "Confirmation flow sends only to orders newer than 2026-01 (checked by Ann)"


@pytest.fixture
def emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator() as emu:
        emu.set_automations([CONFIRMATION])
        yield emu


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch, emulator: OmnisendEmulator) -> str:
    return connect(monkeypatch, emulator, "omnisend_approval")


def _validated(root: Path, day: str = DAY) -> PartitionStaging:
    partition = StagingRoot(str(root)).partition(STORE, day)
    partition.write_bytes(partition.events, b"".join(orjson.dumps(e) + b"\n" for e in make_events(20)))
    OmnisendValidateEventsOperator(
        task_id="validate", store_id=STORE, partition=day, staging=partition.root.url
    ).execute({})
    return partition


def _check(partition: PartitionStaging, conn_id: str, **kwargs: Any) -> dict[str, Any]:
    return OmnisendAutomationSafetyOperator(
        task_id="automation_safety_check",
        store_id=STORE,
        partition=partition.day,
        staging=partition.root.url,
        omnisend_conn_id=conn_id,
        approval="ui",
        **kwargs,
    ).execute({})


def _approval(partition: PartitionStaging) -> OmnisendAutomationApprovalOperator:
    return OmnisendAutomationApprovalOperator(
        task_id="automation_approval", store_id=STORE, partition=partition.day, staging=partition.root.url
    )


def _context(user: str = "ann") -> dict[str, Any]:
    return {
        "dag_run": SimpleNamespace(triggering_user_name=user),
        "ti": SimpleNamespace(dag_id="omnisend_orders__acme_store", run_id="backfill__2024-03"),
    }


def _answer(option: str, reason: str | None = REASON, user: str | None = "ann") -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": {"reason": reason},
        "responded_at": datetime(2026, 12, 2, 9, 30, tzinfo=UTC),
        "responded_by_user": {"id": user, "name": user} if user else None,
    }


def test_a_passed_check_never_waits(tmp_path: Path, conn: str, emulator: OmnisendEmulator) -> None:
    emulator.set_automations([])
    partition = _validated(tmp_path)
    assert _check(partition, conn)["outcome"] == "passed"
    assert _approval(partition).execute(_context()) == {"approval": "not needed", "outcome": "passed"}


def test_a_blocked_check_waits_for_approval_instead_of_failing(tmp_path: Path, conn: str) -> None:
    partition = _validated(tmp_path)
    assert _check(partition, conn)["outcome"] == "awaiting_approval"
    record = partition.read_json("automation_check")
    assert record["approval"] == {"automations": [["65f000000000000000000001", "2026-10-01T08:00:00Z"]]}
    assert "Waiting for a person's answer" in record["reason"]


def test_dags_test_fails_at_once_with_the_ways_forward(tmp_path: Path, conn: str) -> None:
    partition = _validated(tmp_path)
    _check(partition, conn)
    with pytest.raises(AirflowFailException, match="`airflow dags test` cannot wait") as caught:
        _approval(partition).execute(_context(user="dag_test"))
    assert "acknowledge_automations" in str(caught.value)
    first, where, *_ = str(caught.value).splitlines()
    assert (
        first
        == f"BLOCKED {partition.day}: needs a person's approval, which `airflow dags test` cannot wait for"
    )
    assert where == f"store {partition.store_id}, partition {partition.day}"


def test_send_anyway_is_kept_for_the_same_automations_and_asked_again_when_one_changes(
    tmp_path: Path, conn: str, emulator: OmnisendEmulator
) -> None:
    first = _validated(tmp_path, "2024-03-10")
    _check(first, conn)
    result = _approval(first).execute_complete(_context(), _answer(SEND_ANYWAY))
    assert result == {"approval": "approved", "approved_by": "ann", "reason": REASON}
    record = first.read_json("automation_check")
    assert record["outcome"] == "approved"
    assert record["approval"]["approved_by"] == "ann"
    assert record["approval"]["reason"] == REASON
    assert "Approved by ann at 2026-12-02T09:30:00+00:00" in record["reason"]
    assert approval_path(first).exists()

    second = _validated(tmp_path, "2024-03-11")
    assert _check(second, conn)["outcome"] == "approved"  # no question asked
    assert second.read_json("automation_check")["approval"]["kept"] is True

    emulator.set_automations([{**CONFIRMATION, "updatedAt": "2026-12-01T00:00:00Z"}])
    third = _validated(tmp_path, "2024-03-12")
    assert _check(third, conn)["outcome"] == "awaiting_approval"


def test_an_expired_approval_asks_again(tmp_path: Path, conn: str) -> None:
    first = _validated(tmp_path, "2024-03-10")
    _check(first, conn)
    _approval(first).execute_complete(_context(), _answer(SEND_ANYWAY))
    kept = load_approval(first)
    assert kept is not None
    expired = {**kept.to_dict(), "expires_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
    first.write_json(approval_path(first), expired)
    assert _check(_validated(tmp_path, "2024-03-11"), conn)["outcome"] == "awaiting_approval"


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (_answer(STOP), "ann answered Stop"),
        (_answer(SEND_ANYWAY, reason="ok"), "Send anyway without a usable reason"),
        (_answer(SEND_ANYWAY, reason=None), "Send anyway without a reason"),
        (
            {"error": "The Human-in-the-loop response timeout has passed", "error_type": "timeout"},
            "no answer",
        ),
        (_answer(STOP, reason=None, user=None), "nobody (no answer in time) answered Stop"),
    ],
)
def test_stop_a_bad_reason_or_no_answer_fails_the_run_and_keeps_nothing(
    tmp_path: Path, conn: str, event: dict[str, Any], why: str
) -> None:
    partition = _validated(tmp_path)
    _check(partition, conn)
    with pytest.raises(AirflowFailException, match="reprocess-behavior failed") as caught:
        _approval(partition).execute_complete(_context(), event)
    assert why in caught.value.headline  # the short first line says why, the ways forward follow
    assert caught.value.headline.startswith(f"BLOCKED {partition.day}: stopped at the approval: ")
    assert len(caught.value.headline) <= 185, caught.value.headline
    record = partition.read_json("automation_check")
    assert record["outcome"] == "blocked"
    assert record["summary"] == caught.value.headline
    if "usable" in why:  # what was wrong with the reason follows the short line
        assert "says yes but not why" in str(caught.value).splitlines()[-1]
        assert "says yes but not why" in record["reason"]
    assert record["approval"]["answer"] == STOP
    assert not approval_path(partition).exists()


def test_events_too_recent_are_refused_even_under_a_kept_approval(tmp_path: Path, conn: str) -> None:
    from airflow_omnisend.exceptions import OmnisendAutomationRiskError

    first = _validated(tmp_path, "2024-03-10")
    _check(first, conn)
    _approval(first).execute_complete(_context(), _answer(SEND_ANYWAY))
    later = _validated(tmp_path, "2024-03-11")
    with pytest.raises(OmnisendAutomationRiskError, match="younger than min_event_age"):
        _check(later, conn, min_event_age=timedelta(days=365 * 30))  # every 2024 event is "too recent"
    record = later.read_json("automation_check")
    assert record["outcome"] == "blocked"
    assert record["event_time"]["too_recent"] is True
    assert "approval" not in record
