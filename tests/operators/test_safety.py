"""OmnisendAutomationSafetyOperator against the emulator: every outcome, and that a block never retries."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from airflow.sdk.exceptions import AirflowFailException
from pipeline_helpers import automation
from send_helpers import DAY, STORE, connect, make_events, order_events, stage_valid

from airflow_omnisend.exceptions import (
    OmnisendAutomationCheckUnavailableError,
    OmnisendAutomationRiskError,
    OmnisendConfigError,
    OmnisendPartitionHeldError,
)
from airflow_omnisend.hooks._pacing import RetryConfig
from airflow_omnisend.operators.retry import OmnisendRetryPolicy
from airflow_omnisend.operators.safety import OmnisendAutomationSafetyOperator, check_acknowledgement
from airflow_omnisend.operators.validate import OmnisendValidateEventsOperator
from airflow_omnisend.staging import PartitionStaging, StagingRoot
from airflow_omnisend.testing.emulator import ApiKeyGrant, EmulatorConfig, FaultConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

#: the imported names of make_events(): every order has placed order, some have paid/fulfilled/refunded
IMPORTED = ["order fulfilled", "order refunded", "paid for order", "placed order"]
CONFIRMATION = automation("65f000000000000000000001", "Order confirmation", "placed order")
ACK = "Order confirmation is paused by hand for the backfill (Ann, 2026-03-02)"
READ_ONLY_EVENTS_KEY = "events-only-key-123"


@pytest.fixture
def emulator() -> Iterator[OmnisendEmulator]:
    config = EmulatorConfig(extra_keys=(ApiKeyGrant(READ_ONLY_EVENTS_KEY, frozenset({"events.write"})),))
    with OmnisendEmulator(config) as emu:
        yield emu


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch, emulator: OmnisendEmulator) -> str:
    return connect(monkeypatch, emulator, "omnisend_safety")


@pytest.fixture
def validated(tmp_path: Path) -> PartitionStaging:
    """A partition whose events (2024-03-10, four event names) went through the validate step."""
    partition = StagingRoot(str(tmp_path)).partition(STORE, DAY)
    partition.write_bytes(partition.events, b"".join(orjson.dumps(e) + b"\n" for e in make_events(40)))
    OmnisendValidateEventsOperator(
        task_id="validate", store_id=STORE, partition=DAY, staging=partition.root.url
    ).execute({})
    assert sorted(n for n, c in partition.read_json("validation")["by_event_name"].items() if c["valid"]) == (
        IMPORTED
    )
    return partition


def _safety(partition: PartitionStaging, conn_id: str, **kwargs: Any) -> OmnisendAutomationSafetyOperator:
    return OmnisendAutomationSafetyOperator(
        task_id="safety",
        store_id=partition.store_id,
        partition=partition.day,
        omnisend_conn_id=conn_id,
        staging=partition.root.url,
        **kwargs,
    )


def _blocked(partition: PartitionStaging, conn_id: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """Run the check expecting a block; return the message and automation_check.json."""
    with pytest.raises(OmnisendAutomationRiskError) as caught:
        _safety(partition, conn_id, retries=3, **kwargs).execute({})
    error = caught.value
    assert isinstance(error, OmnisendPartitionHeldError)
    # it never retries: Airflow fails an AirflowFailException before looking at retries or the policy,
    # and the provider's policy would say FAIL anyway
    assert isinstance(error, AirflowFailException)
    assert OmnisendRetryPolicy().evaluate(error, try_number=1, max_tries=4).action.value == "fail"
    record = partition.read_json("automation_check")
    assert record["outcome"] == "blocked"
    # a short first line a person reads whole in Airflow's log view, then the detail
    first, *detail = str(error).splitlines()
    assert first == error.headline == record["summary"]
    assert first.startswith(f"BLOCKED {partition.day}: ")
    assert len(first) <= 185, first
    assert detail[0] == f"store {partition.store_id}, partition {partition.day}, connection {conn_id}"
    assert all(len(line) <= 600 for line in detail), detail
    return str(error), record


def test_blocks_on_an_enabled_automation_triggered_by_an_imported_event(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator
) -> None:
    any_origin = automation("65f000000000000000000002", "Shipping update", "order fulfilled", origin="")
    emulator.set_automations(
        [
            CONFIRMATION,
            any_origin,
            automation("65f000000000000000000003", "Old confirmation", "placed order", enabled=False),
            automation("65f000000000000000000004", "Browse abandonment", "viewed product"),
            automation("65f000000000000000000005", "Cancellation", "order canceled"),  # not imported
        ]
    )
    message, record = _blocked(validated, conn)

    assert "2 enabled automation(s) could message customers" in message
    assert (
        "'Order confirmation' (id 65f000000000000000000001): triggered by imported 'placed order' from 'api'"
        in (message)
    )
    shipping = "'Shipping update' (id 65f000000000000000000002): triggered by imported 'order fulfilled'"
    assert f"{shipping} from any origin" in message
    for not_matching in ("Old confirmation", "Browse abandonment", "Cancellation"):
        assert not_matching not in message
    assert "acknowledge_automations" in message  # the way past it
    assert record["automations_matched"] == [
        {
            "id": "65f000000000000000000001",
            "name": "Order confirmation",
            "event": "placed order",
            "origin": "api",
            "updatedAt": None,
            "reasons": ["triggered by imported 'placed order' from 'api'"],
        },
        {
            "id": "65f000000000000000000002",
            "name": "Shipping update",
            "event": "order fulfilled",
            "origin": "",
            "updatedAt": None,
            "reasons": ["triggered by imported 'order fulfilled' from any origin"],
        },
    ]
    verdicts = {a["name"]: a["verdict"] for a in record["automations"]}
    assert verdicts == {
        "Order confirmation": "block",
        "Shipping update": "block",
        "Browse abandonment": "pass",
        "Cancellation": "pass",
    }
    assert record["event_names"] == IMPORTED
    assert record["automations_checked"] == 4  # the emulator filtered the disabled one out
    assert record["acknowledgement"] is None
    requests = [r for r in emulator.store.request_log() if "/automations" in r.path]
    assert requests
    assert [(r.method, r.path, r.status) for r in requests] == [("GET", "/api/automations", 200)]


def test_a_blocks_first_line_names_the_automations_and_the_ways_forward(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator
) -> None:
    emulator.set_automations([CONFIRMATION])
    message, record = _blocked(validated, conn)
    first, _where, *detail = message.splitlines()
    assert first == (
        f"BLOCKED {DAY}: 1 automation ('Order confirmation', ...000001) could message customers; "
        "acknowledge or approve to proceed"
    )
    assert detail == [
        "1 enabled automation(s) could message customers from the imported historic events:",
        "  - 'Order confirmation' (id 65f000000000000000000001): triggered by imported 'placed order' "
        "from 'api'",
        "Disable them in Omnisend for the backfill and run again, or accept the risk with "
        "acknowledge_automations='<why, in words>'.",
    ]
    assert record["summary"] == first

    long_name = "Post-purchase thank you with a very long name that goes on and on"
    emulator.set_automations(
        [
            CONFIRMATION,
            automation("65f000000000000000000002", long_name, "paid for order"),
            automation("65f000000000000000000003", "Refund notice", "order refunded"),
        ]
    )
    first = _blocked(validated, conn)[0].splitlines()[0]
    assert first == (
        f"BLOCKED {DAY}: 3 automations ('Order confirmation', ...000001; "
        "'Post-purchase thank y...', ...000002 and 1 more) could message customers; "
        "acknowledge or approve to proceed"
    )


def test_a_block_chains_no_provider_error_whose_text_it_already_tells(
    validated: PartitionStaging, emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow logs the traceback of every chained exception: the hook's 403 would repeat the message."""
    conn = {"conn_type": "omnisend", "host": emulator.base_url, "password": READ_ONLY_EVENTS_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_NO_READ", json.dumps(conn))
    emulator.set_automations([])
    with pytest.raises(OmnisendAutomationRiskError) as caught:
        _safety(validated, "omnisend_no_read").execute({})
    assert caught.value.headline == (
        f"BLOCKED {DAY}: the automation check could not be made (403: the key lacks automations.read); "
        "fix that or acknowledge to proceed"
    )
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True

    safety = _safety(validated, "omnisend_no_read", acknowledge_automations="{{ params.ack }}")
    safety.acknowledge_automations = "ok"  # what the template rendered
    with pytest.raises(OmnisendAutomationRiskError) as caught:
        safety.execute({})
    assert caught.value.headline == (
        f"BLOCKED {DAY}: acknowledge_automations is not a reason in words; write why, or leave it unset"
    )
    assert caught.value.__cause__ is None


def test_pages_through_every_enabled_automation(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator
) -> None:
    filler = [
        automation(f"66{i:022x}", f"Newsletter {i}", "subscribed to marketing", origin="") for i in range(260)
    ]
    emulator.set_automations(
        [*filler, automation("67f000000000000000000001", "Refund notice", "order refunded")]
    )
    message, record = _blocked(validated, conn)
    assert "'Refund notice' (id 67f000000000000000000001" in message
    assert record["automations_checked"] == 261
    assert emulator.store.request_count(path_prefix="/api/automations") == 2  # 250 + 11


def test_blocks_when_the_key_may_not_read_automations(
    validated: PartitionStaging, emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "omnisend", "host": emulator.base_url, "password": READ_ONLY_EVENTS_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_NO_READ", json.dumps(conn))
    emulator.set_automations([])  # nothing would match: not being able to look is the risk
    message, record = _blocked(validated, "omnisend_no_read")
    assert "the automation check could not be made, which counts as a risk" in message
    assert "(403)" in message
    assert "lacks the automations.read permission" in message
    assert READ_ONLY_EVENTS_KEY not in message
    assert record["check_error"] in message
    assert record["automations_checked"] is None


def test_blocks_on_a_wrong_key(
    validated: PartitionStaging, emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "omnisend", "host": emulator.base_url, "password": "not-the-key-000"}
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_WRONG", json.dumps(conn))
    message, _ = _blocked(validated, "omnisend_wrong")
    assert "refused the credentials (401)" in message
    assert "not-the-key-000" not in message


def test_blocks_when_the_api_has_no_automations_endpoint(
    validated: PartitionStaging, emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an API root where /api/automations does not exist (a proxy for another API version, a wrong host)
    conn = {"conn_type": "omnisend", "host": f"{emulator.base_url}/legacy", "password": emulator.api_key}
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_OLD", json.dumps(conn))
    message, _ = _blocked(validated, "omnisend_old")
    assert "GET /api/automations does not exist" in message
    assert "(404" in message


def test_an_outage_holds_the_partition_and_is_retried_not_taken_for_a_verdict(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator
) -> None:
    """5xx after the hook's retries says nothing about the automations: the partition is held (recorded
    blocked, so nothing is planned) but the task is retried instead of failed outright."""
    emulator.set_automations([])
    emulator.set_faults(FaultConfig(targets=frozenset({"automations"}), error_5xx_rate=1.0, seed=3))
    retry = RetryConfig(max_attempts=3, base_delay=0.01, max_delay=0.05, total_budget=10)
    with pytest.raises(OmnisendAutomationCheckUnavailableError) as caught:
        _safety(validated, conn, retries=3, api_retry=retry).execute({})
    error = caught.value
    assert not isinstance(error, (AirflowFailException, OmnisendAutomationRiskError))
    assert isinstance(error, OmnisendPartitionHeldError)  # caught with a block, but retried
    assert OmnisendRetryPolicy().evaluate(error, try_number=1, max_tries=4).action.value == "retry"
    assert emulator.store.request_count(path_prefix="/api/automations") == 3  # the hook did retry
    record = validated.read_json("automation_check")
    assert record["outcome"] == "blocked"
    first, where, detail = str(error).splitlines()
    assert first == error.headline == record["summary"]
    assert first.startswith(f"BLOCKED {DAY}: the automation check could not be made (Omnisend answered 50")
    assert first.endswith("the task is retried"), first
    assert len(first) <= 185, first
    assert where == f"store {STORE}, partition {DAY}, connection {conn}"
    assert "Omnisend kept failing (50" in detail
    assert "after the hook's retries" in detail
    assert record["check_error"] in detail
    # once Omnisend answers again, the next attempt makes the check
    emulator.set_faults(FaultConfig())
    assert _safety(validated, conn, api_retry=retry).execute({})["outcome"] == "passed"


def test_a_rate_limited_check_holds_the_partition_and_retries_after_the_named_wait(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator
) -> None:
    """A 429 that outlasts the hook's budget holds the day like an outage; the retry waits what
    Omnisend named instead of the task's own delay."""
    emulator.set_automations([])
    faults = FaultConfig(
        targets=frozenset({"automations"}), burst_429_every=1, burst_429_length=100, burst_429_retry_after=30
    )
    emulator.set_faults(faults)
    retry = RetryConfig(max_attempts=3, base_delay=0.01, max_delay=0.05, total_budget=1)
    with pytest.raises(OmnisendAutomationCheckUnavailableError) as caught:
        _safety(validated, conn, retries=3, api_retry=retry).execute({})
    assert caught.value.retry_after == 30
    assert caught.value.headline.startswith(f"BLOCKED {DAY}: the automation check could not be made")
    assert "429" in caught.value.headline
    decision = OmnisendRetryPolicy().evaluate(caught.value, try_number=1, max_tries=4)
    assert (decision.action.value, decision.retry_delay) == ("retry", timedelta(seconds=30))
    assert validated.read_json("automation_check")["outcome"] == "blocked"


def test_an_acknowledgement_goes_on_through_an_outage_at_the_check(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator
) -> None:
    emulator.set_faults(FaultConfig(targets=frozenset({"automations"}), error_5xx_rate=1.0, seed=3))
    retry = RetryConfig(max_attempts=2, base_delay=0.01, max_delay=0.05, total_budget=10)
    manifest = _safety(validated, conn, acknowledge_automations=ACK, api_retry=retry).execute({})
    assert manifest["outcome"] == "acknowledged"
    assert "Omnisend kept failing (50" in validated.read_json("automation_check")["check_error"]


def test_exit_conditions_and_near_misses_are_warnings_not_blocks(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator, capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.set_automations(
        [
            automation(
                "65f0000000000000000000a1",
                "Abandoned checkout",
                "started checkout",
                exits=(("placed order", "api"), ("viewed product", "api")),
            ),
            automation("65f0000000000000000000a2", "Shopify confirmation", "placed order", origin="shopify"),
            automation("65f0000000000000000000a3", "Legacy confirmation", "Placed Order"),
        ]
    )
    manifest = _safety(validated, conn).execute({})

    assert manifest["outcome"] == "passed"
    assert manifest["counts"] == {"automations_checked": 3, "automations_matched": 0, "warnings": 3}
    assert manifest["files"] == {"automation_check": "automation_check.json"}
    record = validated.read_json("automation_check")
    assert record["outcome"] == "passed"
    warnings = record["warnings"]
    exit_warning = (
        "'Abandoned checkout' (id 65f0000000000000000000a1): it has an exit condition on 'placed order'"
    )
    assert any(exit_warning in w for w in warnings)
    assert any("'Shopify confirmation'" in w and "origin 'shopify'" in w for w in warnings)
    assert any("'Legacy confirmation'" in w and "only in case" in w for w in warnings)
    logged = capfd.readouterr().out
    assert "Automation warning: automation 'Abandoned checkout'" in logged


def test_passes_with_no_matching_automation(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator
) -> None:
    emulator.set_automations(
        [automation("65f0000000000000000000b1", "Welcome", "subscribed to marketing", origin="")]
    )
    manifest = _safety(validated, conn).execute({})
    assert manifest["outcome"] == "passed"
    record = validated.read_json("automation_check")
    assert record["automations_matched"] == []
    assert record["warnings"] == []
    assert "none of 1 enabled automation(s) can be started by the imported" in record["reason"]
    assert [(a["name"], a["verdict"]) for a in record["automations"]] == [("Welcome", "pass")]
    assert record["event_time"]["too_recent"] is False
    assert record["event_time"]["newest"] == validated.read_json("validation")["last_event_time"]
    assert datetime.fromisoformat(record["checked_at"]) <= datetime.now(UTC)


def test_an_acknowledgement_in_words_gets_past_the_block_and_is_recorded(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator, capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.set_automations([CONFIRMATION])
    manifest = _safety(validated, conn, acknowledge_automations=f"  {ACK}\n").execute({})

    assert manifest["outcome"] == "acknowledged"
    record = validated.read_json("automation_check")
    assert record["outcome"] == "acknowledged"
    assert record["acknowledgement"] == ACK
    assert ACK in record["reason"]
    assert "'Order confirmation' (id 65f000000000000000000001" in record["reason"]
    assert record["automations_matched"][0]["id"] == "65f000000000000000000001"
    logged = capfd.readouterr().out
    assert "Going on because acknowledge_automations says" in logged
    assert ACK in logged


def test_an_acknowledgement_also_covers_a_check_that_could_not_be_made(
    validated: PartitionStaging, emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "omnisend", "host": emulator.base_url, "password": READ_ONLY_EVENTS_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_NO_READ", json.dumps(conn))
    manifest = _safety(validated, "omnisend_no_read", acknowledge_automations=ACK).execute({})
    assert manifest["outcome"] == "acknowledged"
    record = validated.read_json("automation_check")
    assert "could not be made" in record["reason"]
    assert "(403)" in record["check_error"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "acknowledge_automations is empty"),
        ("   \n ", "acknowledge_automations is empty"),
        ("yes", "says yes but not why"),
        ("OK!", "says yes but not why"),
        ("True", "says yes but not why"),
        ("accepted.", "says yes but not why"),
        ("it is ok", "too short to be a reason"),
        (True, "not bool True"),
    ],
)
def test_a_useless_acknowledgement_is_refused(
    value: object, message: str, validated: PartitionStaging, conn: str, emulator: OmnisendEmulator
) -> None:
    with pytest.raises(OmnisendConfigError, match=message):  # at DAG parse time
        _safety(validated, conn, acknowledge_automations=value)
    # ... and when it arrives through a template, at run time, as a block
    op = _safety(validated, conn, acknowledge_automations="{{ params.ack }}")
    op.render_template_fields({"params": {"ack": value}})  # type: ignore[arg-type]
    if isinstance(value, bool):
        op.acknowledge_automations = value  # type: ignore[assignment]
    emulator.set_automations([CONFIRMATION])
    with pytest.raises(OmnisendAutomationRiskError, match=message):
        op.execute({})  # type: ignore[arg-type]
    assert validated.read_json("automation_check")["outcome"] == "blocked"
    assert emulator.store.request_count(path_prefix="/api/automations") == 0  # refused before looking


def test_a_missing_param_renders_as_no_acknowledgement() -> None:
    assert check_acknowledgement(None) is None
    assert check_acknowledgement("None") is None  # "{{ params.ack }}" of a None param
    assert check_acknowledgement(f"\t{ACK}  ") == ACK


def test_blocks_events_younger_than_min_event_age_even_when_acknowledged(
    tmp_path: Path, conn: str, emulator: OmnisendEmulator
) -> None:
    emulator.set_automations([])
    recent = order_events(1, random.Random(1), events=1)[0]
    recent["eventTime"] = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    partition = StagingRoot(str(tmp_path)).partition(STORE, DAY)
    partition.write_bytes(partition.events, orjson.dumps(recent) + b"\n")
    OmnisendValidateEventsOperator(task_id="v", store_id=STORE, partition=DAY, staging=str(tmp_path)).execute(
        {}
    )

    message, record = _blocked(partition, conn, acknowledge_automations=ACK)
    assert f"the newest valid event ({recent['eventTime']}) is younger than min_event_age=1:00:00" in message
    assert "Run this partition after" in message
    assert record["event_time"]["too_recent"] is True
    assert message.splitlines()[0] == (
        f"BLOCKED {DAY}: the newest event ({recent['eventTime']}) is too recent to send; run it after "
        f"{record['event_time']['ready_at']}"
    )

    manifest = _safety(partition, conn, min_event_age=timedelta(minutes=5)).execute({})
    assert manifest["outcome"] == "passed"


def test_blocks_events_in_the_future(tmp_path: Path, conn: str, emulator: OmnisendEmulator) -> None:
    """Without validation.json (the operator used on its own) the valid events themselves are read."""
    emulator.set_automations([])
    events = make_events(3)
    events[1]["eventTime"] = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    partition = stage_valid(tmp_path, events)
    message, _ = _blocked(partition, conn, event_names=["placed order"], min_event_age=timedelta(0))
    assert f"the newest valid event ({events[1]['eventTime']}) is in the future" in message


def test_nothing_to_import_passes_without_asking(
    tmp_path: Path, conn: str, emulator: OmnisendEmulator
) -> None:
    partition = StagingRoot(str(tmp_path)).partition(STORE, DAY)
    partition.write_bytes(partition.events, b"")
    OmnisendValidateEventsOperator(task_id="v", store_id=STORE, partition=DAY, staging=str(tmp_path)).execute(
        {}
    )
    manifest = _safety(partition, conn).execute({})
    assert manifest["outcome"] == "passed"
    assert partition.read_json("automation_check")["reason"] == "no valid events: nothing will be sent"
    assert emulator.store.request_count(path_prefix="/api/automations") == 0


def test_without_validation_the_imported_names_are_unknown_so_it_blocks(tmp_path: Path, conn: str) -> None:
    partition = StagingRoot(str(tmp_path)).partition(STORE, DAY)
    message, _ = _blocked(partition, conn)
    assert "cannot tell which events will be imported" in message
    assert "the validate step writes it" in message


def test_templated_fields_render(validated: PartitionStaging, conn: str, emulator: OmnisendEmulator) -> None:
    emulator.set_automations([CONFIRMATION])
    op = OmnisendAutomationSafetyOperator(
        task_id="safety",
        store_id="{{ params.store }}",
        partition="{{ ds }}",
        omnisend_conn_id="{{ params.conn }}",
        staging="{{ params.staging }}",
        acknowledge_automations="{{ params.ack }}",
        event_names=["{{ params.name }}"],
    )
    assert set(op.template_fields) == {
        "store_id", "partition", "omnisend_conn_id", "staging", "acknowledge_automations", "event_names",
        "validated",
    }  # fmt: skip
    context: Any = {
        "ds": DAY,
        "params": {
            "store": STORE,
            "conn": conn,
            "staging": validated.root.url,
            "ack": None,
            "name": "paid for order",
        },
    }
    op.render_template_fields(context)
    assert op.event_names == ["paid for order"]
    assert op.execute(context)["outcome"] == "passed"  # only 'paid for order' asked about: no match
    context["params"].update(ack=ACK, name="placed order")
    op = _safety(
        validated, conn, acknowledge_automations="{{ params.ack }}", event_names=["{{ params.name }}"]
    )
    op.render_template_fields(context)
    assert op.execute(context)["outcome"] == "acknowledged"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_event_age": timedelta(hours=-1)}, "min_event_age must be a timedelta >= 0"),
        ({"min_event_age": 3600}, "min_event_age must be a timedelta >= 0"),
        ({"event_names": "placed order"}, "event_names must be a list of event names"),
        ({"event_names": ["placed order", ""]}, "event_names must be a list of event names"),
    ],
)
def test_unusable_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(OmnisendConfigError, match=message):
        OmnisendAutomationSafetyOperator(task_id="safety", store_id=STORE, partition=DAY, **kwargs)


def test_reads_what_the_validate_manifest_names(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator, tmp_path: Path
) -> None:
    """In the DAG the check reads validate's returned manifest: its folder, even under another root."""
    emulator.set_automations([])
    manifest = validated.manifest(files={"valid": "valid", "validation": "validation"}).to_dict()
    op = OmnisendAutomationSafetyOperator(
        task_id="safety",
        store_id=STORE,
        partition=DAY,
        omnisend_conn_id=conn,
        staging=str(tmp_path / "elsewhere"),
        validated=manifest,
    )
    assert op.execute({})["outcome"] == "passed"  # type: ignore[arg-type]
    assert validated.read_json("automation_check")["event_names"] == IMPORTED
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize(
    "host",
    [
        "https://apiuser:sk_live_IN_THE_HOST_42@omnisend.invalid:notaport",
        "ftp://apiuser:sk_live_IN_THE_HOST_42@omnisend.invalid",
    ],
)
def test_a_key_in_the_connection_host_reaches_no_error_log_or_record(
    validated: PartitionStaging,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    host: str,
) -> None:
    """Issue 14, item 6: userinfo in the host plus a bad port or scheme; the check fails (it cannot be
    made), and neither its error, the task log nor automation_check.json renders the key."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_OMNISEND_USERINFO",
        json.dumps({"conn_type": "omnisend", "host": host, "password": "pw"}),
    )
    with pytest.raises(OmnisendAutomationRiskError, match="could not be made") as caught:
        _safety(validated, "omnisend_userinfo").execute({})
    assert "sk_live_IN_THE_HOST_42" not in str(caught.value)
    printed = capsys.readouterr()
    assert "sk_live_IN_THE_HOST_42" not in caplog.text + printed.out + printed.err
    record = validated.file("automation_check")
    assert record.exists()
    assert "sk_live_IN_THE_HOST_42" not in record.read_text()


# -- issue 11 §1: every automation the imported data could start or change ---------------------------

SEGMENT_ENTRY = {
    "id": "65f0000000000000000000c2",
    "name": "VIP welcome",
    "isEnabled": True,
    "updatedAt": "2026-11-02T10:00:00Z",
    "trigger": {
        "condition": {
            "event": "entered segment",
            "origin": "omnisend",
            "segmentID": "6600000000000000000000aa",
            "segmentName": "Bought twice",
        }
    },
    "blocks": [{"type": "email"}],
}
SPLIT_ON_ORDERS = {
    **automation("65f0000000000000000000d1", "Browse follow-up", "viewed product"),
    "blocks": [
        {"type": "email"},
        {"type": "conditionalSplit", "filterGroup": {"event": "placed order", "property": "totalPrice"}},
    ],
}
AUDIENCE_ON_ORDERS = {
    **automation("65f0000000000000000000d2", "Cart reminder", "added product to cart"),
    "trigger": {
        "condition": {"event": "added product to cart", "origin": "api"},
        "audienceFilterGroup": {"filters": [{"event": "placed order", "count": {"lessThan": 1}}]},
    },
}


@pytest.mark.parametrize(
    ("listed", "why"),
    [
        pytest.param(
            automation("65f0000000000000000000c1", "Product review ask", "ordered product"),
            "triggered by 'ordered product', which Omnisend derives from imported 'placed order' from 'api'",
            id="derived-event",
        ),
        pytest.param(
            automation("65f0000000000000000000c3", "Cross-sell", "ordered product", origin="omnisend"),
            "which Omnisend derives from imported 'placed order' from 'omnisend'",
            id="derived-event-omnisend-origin",
        ),
        pytest.param(
            SEGMENT_ENTRY,
            "triggered when a contact enters segment 'Bought twice'; a segment can be built on order data",
            id="segment-entry-named",
        ),
        pytest.param(
            {**SEGMENT_ENTRY, "trigger": {"condition": {"event": "entered segment", "origin": "omnisend"}}},
            "enters a segment (the API does not name it)",
            id="segment-entry-unnamed",
        ),
        pytest.param(
            {"id": "65f0000000000000000000c4", "name": "Odd", "isEnabled": True, "trigger": ["placed order"]},
            "its trigger has a shape the check does not know (list",
            id="unknown-trigger-shape",
        ),
        pytest.param(
            {"id": "65f0000000000000000000c5", "name": "No trigger", "isEnabled": True},
            "its trigger has a shape the check does not know (missing)",
            id="no-trigger",
        ),
        pytest.param(
            {**automation("65f0000000000000000000c6", "Exits", "viewed product"), "exitConditions": {"x": 1}},
            "its exitConditions have a shape the check does not know",
            id="unknown-exit-shape",
        ),
    ],
)
def test_each_kind_the_import_can_start_blocks_with_its_reason(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator, listed: dict[str, Any], why: str
) -> None:
    emulator.set_automations(
        [listed, automation("65f0000000000000000000cf", "Birthday", "birthday", origin="")]
    )
    message, record = _blocked(validated, conn)

    assert "1 enabled automation(s) could message customers" in message
    assert f"{listed['name']!r} (id {listed['id']}): " in message
    assert why in message
    (matched,) = record["automations_matched"]
    assert matched["id"] == listed["id"]
    assert any(why in reason for reason in matched["reasons"])
    verdicts = {a["id"]: a["verdict"] for a in record["automations"]}
    assert verdicts == {listed["id"]: "block", "65f0000000000000000000cf": "pass"}


def test_splits_and_audience_filters_on_order_data_warn_and_say_so(
    validated: PartitionStaging, conn: str, emulator: OmnisendEmulator
) -> None:
    plain_split = {
        **automation("65f0000000000000000000d3", "A/B welcome", "subscribed to marketing", origin=""),
        "blocks": [{"type": "abSplit", "ratio": 50}],
    }
    emulator.set_automations([SPLIT_ON_ORDERS, AUDIENCE_ON_ORDERS, plain_split])
    manifest = _safety(validated, conn).execute({})

    assert manifest["outcome"] == "passed"
    record = validated.read_json("automation_check")
    by_name = {a["name"]: a for a in record["automations"]}
    assert by_name["Browse follow-up"]["verdict"] == "warn"
    assert by_name["Browse follow-up"]["reasons"] == [
        "a 'conditionalSplit' block splits on order data ('placed order'): imported orders can change "
        "which path its contacts take"
    ]
    assert by_name["Cart reminder"]["verdict"] == "warn"
    assert (
        "its trigger's audience filter reads order data ('placed order')"
        in (by_name["Cart reminder"]["reasons"][0])
    )
    assert by_name["A/B welcome"]["verdict"] == "pass"
    assert len(record["warnings"]) == 2
    assert manifest["counts"]["warnings"] == 2


def test_a_blocking_kind_stops_the_partition_before_any_post_and_a_warning_reaches_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: OmnisendEmulator
) -> None:
    from pipeline_helpers import run_partition, sample_shop, sqlite_connection

    source = sqlite_connection(monkeypatch, sample_shop(tmp_path, orders=60))
    omnisend = connect(monkeypatch, emulator, "omnisend_kinds")
    emulator.set_automations([SEGMENT_ENTRY, SPLIT_ON_ORDERS])
    with pytest.raises(OmnisendAutomationRiskError, match="segment 'Bought twice'"):
        run_partition(tmp_path / "staging", source_conn_id=source, omnisend_conn_id=omnisend)
    assert emulator.store.batches() == []
    assert not [r for r in emulator.store.request_log() if r.method == "POST"]

    emulator.set_automations([SPLIT_ON_ORDERS])
    run = run_partition(tmp_path / "staging", source_conn_id=source, omnisend_conn_id=omnisend)
    check = run.partition.read_json("report")["automation_check"]
    assert check["outcome"] == "passed"
    assert check["warnings"] == 1
    assert [(a["name"], a["verdict"]) for a in check["automations"]] == [("Browse follow-up", "warn")]
    assert emulator.store.batches()
