"""OmnisendReportOperator: every extracted event accounted for, on real partitions sent to the emulator."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from airflow.sdk import TriggerRule
from airflow.sdk.exceptions import AirflowFailException
from pipeline_helpers import (
    FAST_SEND,
    SHOP,
    SHOP_DAY,
    TZ,
    current_plan,
    execute_sql,
    run_partition,
    sample_shop,
    sqlite_connection,
)
from send_helpers import DAY, STORE, connect, make_events

from airflow_omnisend.exceptions import OmnisendUnaccountedEventsError
from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
from airflow_omnisend.operators.receipts import BatchReceipt, PartitionReceipts, SendingRun
from airflow_omnisend.operators.report import OmnisendReportOperator, build_report, describe
from airflow_omnisend.operators.retry import OmnisendRetryPolicy
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
from airflow_omnisend.operators.validate import OmnisendValidateEventsOperator
from airflow_omnisend.staging import PartitionStaging, StagingRoot, utc_timestamp
from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

#: small bodies, so a day of the sample shop needs a few dozen of them and a big event cannot fit
LIMITS = {"max_payload_bytes": 20_000, "max_items_per_batch": 50}


@pytest.fixture
def emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.02)) as emu:
        yield emu


@pytest.fixture
def conns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: OmnisendEmulator) -> dict[str, Any]:
    """The sample shop (one order with a note too large for any body) and an emulator connection."""
    db = sample_shop(tmp_path)
    with sqlite3.connect(db) as conn:
        (order_id,) = conn.execute(
            "SELECT order_id FROM orders WHERE created_at LIKE ? AND email IS NOT NULL AND currency = 'EUR' "
            "AND total_price > 0 ORDER BY order_id LIMIT 1",
            ("2024-03-26T12%",),
        ).fetchone()
    execute_sql(db, "UPDATE orders SET note = ? WHERE order_id = ?", "x" * 25_000, order_id)
    return {
        "db": db,
        "source_conn_id": sqlite_connection(monkeypatch, db),
        "omnisend_conn_id": connect(monkeypatch, emulator, "omnisend_report", **LIMITS),
        "big_order": str(order_id),
    }


def _report(partition: PartitionStaging, **kwargs: Any) -> dict[str, Any]:
    return OmnisendReportOperator(
        task_id="report",
        store_id=partition.store_id,
        partition=partition.day,
        staging=partition.root.url,
        **kwargs,
    ).execute({})


def _lines(data: bytes) -> list[bytes]:
    return [line for line in data.splitlines() if line.strip()]


def test_a_sent_partition_adds_up(
    tmp_path: Path, conns: dict[str, Any], emulator: OmnisendEmulator, capfd: pytest.CaptureFixture[str]
) -> None:
    run = run_partition(
        tmp_path / "staging",
        source_conn_id=conns["source_conn_id"],
        omnisend_conn_id=conns["omnisend_conn_id"],
    )
    partition = run.partition
    report = partition.read_json("report")
    plan = current_plan(partition)
    extracted = len(_lines(partition.events.read_bytes()))
    rejected = len(_lines(partition.rejected.read_bytes()))
    plan_dead = _lines(partition.dead_letters("plan").read_bytes())
    accepted = emulator.store.accepted_count()

    assert len(run.shards) > 1
    assert plan.bodies > 10
    assert [orjson.loads(line)["event"]["properties"]["orderID"] for line in plan_dead] == [
        conns["big_order"]
    ] * len(plan_dead)  # the big order's events of the day: too large for any body
    assert report["events_extracted"] == extracted == run.extract["counts"]["events"]
    assert report["events_rejected"] == rejected > 0
    assert report["events_valid"] == extracted - rejected
    assert report["events_dead_lettered"] == len(plan_dead) > 0
    assert report["events_dead_lettered_by_stage"] == {"plan": len(plan_dead), "send": 0}
    assert report["events_accepted"] == accepted == extracted - rejected - len(plan_dead)
    assert report["events_accepted"] + report["events_rejected"] + report["events_dead_lettered"] == extracted
    assert report["events_unaccounted"] == 0
    assert report["accounted"] is True
    assert report["problems"] == []
    assert report["events_sent"] == plan.items == report["item_submissions"]
    assert (
        report["batches"]
        == report["requests"]
        == report["bodies"]
        == report["bodies_finished"]
        == plan.bodies
    )
    assert report["batches"] == len(emulator.store.batches())
    assert report["events_planned_not_sent"] == 0
    assert report["events_warned"] == 0
    assert report["rows_rejected"] == 0
    assert report["dry_run"] is False
    assert report["extracted_from"] == f"sql:{conns['source_conn_id']}"
    assert report["seconds"] > 0
    assert report["seconds_by_step"]["extract"] is not None
    assert report["seconds_by_step"]["validate"] is not None
    assert report["automation_check"]["outcome"] == "passed"
    assert report["rejected_file"] == str(partition.rejected)
    assert report["dead_letter_files"] == [str(partition.dead_letters("plan"))]
    assert report["rows_rejected_file"] is None
    assert run.report["counts"] == {
        "events_extracted": extracted,
        "events_accepted": accepted,
        "events_rejected": rejected,
        "events_dead_lettered": len(plan_dead),
        "events_unaccounted": 0,
    }
    assert run.report["files"] == {"report": "report.json"}
    assert sum(s["accepted"] for s in run.sends) == accepted
    logged = capfd.readouterr().out
    assert f"Omnisend report for {SHOP} {SHOP_DAY}" in logged
    assert re.search(r"^unaccounted +0$", logged, re.MULTILINE)


def test_a_rerun_counts_only_the_current_plan(
    tmp_path: Path, conns: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    staging = tmp_path / "staging"
    first = run_partition(
        staging, source_conn_id=conns["source_conn_id"], omnisend_conn_id=conns["omnisend_conn_id"]
    )
    before = {r.body_id for r in PartitionReceipts(first.partition).all()}
    first_report = first.partition.read_json("report")
    # the shop corrects an email: the events of that order change, and so do the bodies holding them
    with sqlite3.connect(conns["db"]) as conn:
        (order_id,) = conn.execute(
            "SELECT order_id FROM orders WHERE created_at LIKE '2024-03-26T1%' AND email IS NOT NULL "
            "ORDER BY order_id DESC LIMIT 1"
        ).fetchone()
    execute_sql(conns["db"], "UPDATE orders SET email = ? WHERE order_id = ?", "fixed@example.com", order_id)
    batches_before = len(emulator.store.batches())

    second = run_partition(
        staging, source_conn_id=conns["source_conn_id"], omnisend_conn_id=conns["omnisend_conn_id"]
    )

    plan = current_plan(second.partition)
    current = {body.body_id for _, body in plan.iter_bodies()}
    left_over = before - current
    assert left_over  # receipts of bodies the new plan no longer has...
    receipts = PartitionReceipts(second.partition)
    assert all(receipts.read(b) is not None for b in left_over)  # ...are still there
    new_batches = len(emulator.store.batches()) - batches_before
    assert 0 < new_batches < plan.bodies  # only the changed bodies were sent again
    report = second.partition.read_json("report")
    assert report["accounted"] is True
    assert report["bodies"] == report["batches"] == plan.bodies  # left-over receipts are not counted
    assert report["events_extracted"] == first_report["events_extracted"]
    assert report["events_accepted"] == first_report["events_accepted"]
    assert sum(s["bodies_skipped"] for s in second.sends) == plan.bodies - new_batches


def test_a_doctored_receipt_that_loses_an_event_fails_the_report(
    tmp_path: Path, conns: dict[str, Any]
) -> None:
    run = run_partition(
        tmp_path / "staging",
        source_conn_id=conns["source_conn_id"],
        omnisend_conn_id=conns["omnisend_conn_id"],
    )
    partition = run.partition
    _, body = next(iter(current_plan(partition).iter_bodies()))
    receipt = PartitionReceipts(partition).read(body.body_id)
    assert receipt is not None
    PartitionReceipts(partition).write(receipt.evolve(accepted=receipt.accepted - 1))

    with pytest.raises(OmnisendUnaccountedEventsError) as caught:
        _report(partition, retries=3)

    error = caught.value
    message = str(error)
    report = partition.read_json("report")
    assert f"1 of {report['events_extracted']} extracted events are unaccounted for" in message
    assert f"body {body.body_id[:12]}" in message
    assert "1 events unaccounted for" in message
    assert str(partition.report) in message
    assert report["accounted"] is False
    assert report["events_unaccounted"] == 1
    assert isinstance(error, AirflowFailException)  # no retry: it would count the same files
    assert OmnisendRetryPolicy().evaluate(error, try_number=1, max_tries=4).action.value == "fail"


def test_steps_out_of_step_with_each_other_are_problems(tmp_path: Path, conns: dict[str, Any]) -> None:
    run = run_partition(
        tmp_path / "staging",
        source_conn_id=conns["source_conn_id"],
        omnisend_conn_id=conns["omnisend_conn_id"],
    )
    partition = run.partition
    # events.ndjson changes and is validated again, but neither extract.json nor plan.json follows
    extra = make_events(1, first_order=70_000)[0]
    extra["eventTime"] = "2024-03-26T10:00:00Z"
    partition.write_bytes(partition.events, partition.events.read_bytes() + orjson.dumps(extra) + b"\n")
    OmnisendValidateEventsOperator(
        task_id="validate",
        store_id=SHOP,
        partition=SHOP_DAY,
        staging=partition.root.url,
        max_reject_ratio=0.05,
    ).execute({})

    with pytest.raises(OmnisendUnaccountedEventsError):
        _report(partition)
    problems = partition.read_json("report")["problems"]
    assert any("validation ran on another events file" in p for p in problems)
    assert any("different events.ndjson than extract.json describes" in p for p in problems)
    assert any("plan.json covers" in p and "re-run plan after validate" in p for p in problems)


def test_a_dry_run_accounts_valid_events_as_planned(
    tmp_path: Path, conns: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    run = run_partition(
        tmp_path / "staging",
        source_conn_id=conns["source_conn_id"],
        omnisend_conn_id=conns["omnisend_conn_id"],
        dry_run=True,
    )
    assert run.shards == []  # the mapped send is skipped in a DAG
    report = run.partition.read_json("report")
    assert report["dry_run"] is True
    assert report["accounted"] is True
    assert report["events_planned_not_sent"] == report["events_valid"] > 0
    assert report["events_rejected"] + report["events_valid"] == report["events_extracted"]
    assert (report["events_sent"], report["events_accepted"], report["batches"], report["requests"]) == (
        0,
        0,
        0,
        0,
    )
    assert not run.partition.plan.exists()
    assert emulator.store.accepted_count() == 0
    assert emulator.store.request_count(path_prefix="/v5/batches") == 0
    would = report["dry_run_plan"]  # what a real run would send, and what it costs at the rate limit
    assert would["events"] == report["events_valid"]
    assert would["bodies"] >= 1
    assert would["requests"] >= 2 * would["bodies"]
    assert would["minutes"] == pytest.approx(would["requests"] / 400, abs=1e-3)


def test_an_imported_file_without_extract_is_accounted_from_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: OmnisendEmulator
) -> None:
    conn_id = connect(monkeypatch, emulator, "omnisend_import", max_items_per_batch=40)
    source = tmp_path / "import.ndjson"
    events = make_events(60)
    events[3]["properties"]["currency"] = "euro"  # rejected
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    common: dict[str, Any] = {"store_id": STORE, "partition": DAY, "staging": str(tmp_path / "staging")}
    OmnisendValidateEventsOperator(
        task_id="v", events_path=str(source), max_reject_ratio=0.1, **common
    ).execute({})
    shards = OmnisendPlanBatchesOperator(task_id="p", omnisend_conn_id=conn_id, **common).execute({})
    for shard in shards:
        OmnisendSendBatchesOperator(
            task_id="s", shard=shard, omnisend_conn_id=conn_id, **FAST_SEND, **common
        ).execute({})

    manifest = OmnisendReportOperator(task_id="r", **common).execute({})

    partition = StagingRoot(str(tmp_path / "staging")).partition(STORE, DAY)
    report = partition.read_json("report")
    assert report["extracted_from"] == str(source)
    assert report["events_extracted"] == len(events)
    assert report["rows_rejected"] == 0
    assert report["events_rejected"] == 1
    assert report["events_accepted"] == len(events) - 1 == emulator.store.accepted_count()
    assert report["automation_check"] is None
    assert report["notes"] == [
        "no automation_check.json: the automation safety check did not run for this partition"
    ]
    assert manifest["counts"]["events_unaccounted"] == 0


def test_send_dead_letters_and_unsent_bodies_are_counted(tmp_path: Path) -> None:
    """Built from staging files alone: a body with items dead-lettered by Omnisend, one never sent."""
    partition = StagingRoot(str(tmp_path)).partition(STORE, DAY)
    events = make_events(30)[:30]
    valid = b"".join(orjson.dumps(e) + b"\n" for e in events)
    partition.write_bytes(partition.events, valid)
    OmnisendValidateEventsOperator(task_id="v", store_id=STORE, partition=DAY, staging=str(tmp_path)).execute(
        {}
    )
    plan_doc = {
        "version": 1,
        "limits": {"max_items": 100, "max_payload_bytes": 1_000_000},
        "max_shards": 64,
        "min_bodies_per_shard": 1,
        "totals": {
            "events": len(events),
            "items": len(events),
            "bodies": 2,
            "shards": 1,
            "dead_lettered": 0,
            "bytes": 0,
            "split_orders": 0,
        },
        "lower_bound": 1,
        "packing_ratio": 2.0,
        "packing": "test",
        "shards": [
            {
                "index": 0,
                "items": len(events),
                "size": 0,
                "bodies": [
                    {
                        "body_id": hashlib.sha256(b"a").hexdigest(),
                        "index": 0,
                        "items": 20,
                        "size": 0,
                        "first_event_id": None,
                        "last_event_id": None,
                    },
                    {
                        "body_id": hashlib.sha256(b"b").hexdigest(),
                        "index": 1,
                        "items": len(events) - 20,
                        "size": 0,
                        "first_event_id": None,
                        "last_event_id": None,
                    },
                ],
            }
        ],
    }
    partition.write_json("plan", plan_doc)
    first = hashlib.sha256(b"a").hexdigest()
    now = utc_timestamp()
    PartitionReceipts(partition).write(
        BatchReceipt(
            body_id=first,
            shard=0,
            batch_id="b1",
            status="finished",
            submitted_at=now,
            finished_at=now,
            items=20,
            accepted=18,
            dead_lettered=2,
            attempts=2,
        )
    )
    dead = partition.send_dead_letters(first)
    partition.write_bytes(dead, b'{"event":{},"reason":"bad"}\n{"event":{},"reason":"bad"}\n')

    with pytest.raises(OmnisendUnaccountedEventsError, match=r"was never sent: 10 events"):
        _report(partition)
    report = partition.read_json("report")
    assert report["events_accepted"] == 18
    assert report["events_dead_lettered_by_stage"] == {"plan": 0, "send": 2}
    assert report["events_unaccounted"] == 10
    assert report["requests"] == 2  # the body was POSTed twice (a lost response)
    assert report["item_submissions"] == 40
    assert report["dead_letter_files"] == [str(dead)]

    # the second body was refused by Omnisend as a whole: its events are dead-lettered, none is lost
    second = hashlib.sha256(b"b").hexdigest()
    partition.write_bytes(partition.send_dead_letters(second), b'{"event":{},"reason":"400"}\n' * 10)
    assert _report(partition)["counts"]["events_dead_lettered"] == 12


def test_missing_inputs_fail_the_report_without_retry(tmp_path: Path) -> None:
    partition = StagingRoot(str(tmp_path)).partition(STORE, DAY)
    with pytest.raises(
        OmnisendUnaccountedEventsError, match=r"validation\.json does not exist; the validate step"
    ):
        _report(partition)
    partition.write_bytes(partition.events, b"".join(orjson.dumps(e) + b"\n" for e in make_events(5)))
    OmnisendValidateEventsOperator(task_id="v", store_id=STORE, partition=DAY, staging=str(tmp_path)).execute(
        {}
    )
    with pytest.raises(OmnisendUnaccountedEventsError, match=r"plan\.json does not exist; the plan step"):
        _report(partition)
    assert _report(partition, dry_run=True)["counts"]["events_unaccounted"] == 0


def test_templated_fields_and_the_default_trigger_rule(tmp_path: Path) -> None:
    op = OmnisendReportOperator(
        task_id="report",
        store_id="{{ params.store }}",
        partition="{{ ds }}",
        staging="{{ params.staging }}",
        dry_run="{{ params.dry_run }}",
    )
    assert op.trigger_rule == TriggerRule.NONE_FAILED
    assert set(op.template_fields) == {"store_id", "partition", "staging", "dry_run_mode"}
    partition = StagingRoot(str(tmp_path)).partition(STORE, DAY)
    partition.write_bytes(partition.events, b"".join(orjson.dumps(e) + b"\n" for e in make_events(5)))
    OmnisendValidateEventsOperator(task_id="v", store_id=STORE, partition=DAY, staging=str(tmp_path)).execute(
        {}
    )
    context: Any = {"ds": DAY, "params": {"store": STORE, "staging": str(tmp_path), "dry_run": True}}
    op.render_template_fields(context)
    assert (op.store_id, op.partition, op.dry_run_mode) == (STORE, DAY, "True")
    assert op.execute(context)["counts"]["events_unaccounted"] == 0
    assert partition.read_json("report")["dry_run"] is True
    other = OmnisendReportOperator(task_id="r2", store_id=STORE, partition=DAY, trigger_rule="all_done")
    assert other.trigger_rule == TriggerRule.ALL_DONE


def test_the_extract_step_can_feed_the_report_directly(tmp_path: Path, conns: dict[str, Any]) -> None:
    """Extract + validate, a dry run: the report reads extract.json and says where the events came from."""
    common: dict[str, Any] = {"store_id": SHOP, "partition": SHOP_DAY, "staging": str(tmp_path / "s")}
    OmnisendExtractOrdersOperator(
        task_id="e", timezone=TZ, source_conn_id=conns["source_conn_id"], **common
    ).execute({})
    OmnisendValidateEventsOperator(task_id="v", max_reject_ratio=0.05, **common).execute({})
    manifest = OmnisendReportOperator(task_id="r", dry_run=True, **common).execute({})
    report = StagingRoot(str(tmp_path / "s")).partition(SHOP, SHOP_DAY).read_json("report")
    assert report["extracted_from"] == f"sql:{conns['source_conn_id']}"
    assert manifest["counts"]["events_extracted"] == report["events_extracted"] > 0


def test_a_finished_period_drops_its_event_copies_and_a_rerun_sends_nothing(
    tmp_path: Path, conns: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    kwargs: dict[str, Any] = {
        "source_conn_id": conns["source_conn_id"],
        "omnisend_conn_id": conns["omnisend_conn_id"],
        "keep_staged_events": False,
    }
    first = run_partition(tmp_path / "staging", **kwargs)
    partition = first.partition
    kept = ["extract.json", "validation.json", "rejected.ndjson", "plan.json", "report.json"]
    assert not partition.events.exists()
    assert not partition.valid.exists()
    assert not partition.bodies_dir.exists()
    assert all((partition.dir / name).exists() for name in kept)
    assert list(partition.receipts_dir.iterdir())
    assert partition.dead_letters("plan").exists()
    accepted = emulator.store.accepted_count()
    posts = emulator.store.request_count("/v5/batches", method="POST")
    assert posts > 0

    second = run_partition(tmp_path / "staging", **kwargs)

    assert emulator.store.request_count("/v5/batches", method="POST") == posts
    assert emulator.store.accepted_count() == accepted
    assert second.report["counts"] == first.report["counts"]
    assert not partition.events.exists()


def test_a_dry_run_keeps_its_event_copies(tmp_path: Path, conns: dict[str, Any]) -> None:
    run = run_partition(
        tmp_path / "staging",
        source_conn_id=conns["source_conn_id"],
        omnisend_conn_id=conns["omnisend_conn_id"],
        dry_run=True,
        keep_staged_events=False,
    )
    assert run.partition.events.exists()
    assert run.partition.valid.exists()


def test_a_rerun_says_it_sent_nothing_and_what_earlier_runs_sent(
    tmp_path: Path, conns: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    run = run_partition(
        tmp_path / "staging",
        source_conn_id=conns["source_conn_id"],
        omnisend_conn_id=conns["omnisend_conn_id"],
    )
    partition = run.partition
    plan = current_plan(partition)
    report = partition.read_json("report")  # executed outside a DAG run: its receipts name no run
    assert report["run"] is None
    assert (report["events_sent_this_run"], report["events_sent_earlier"]) == (report["events_sent"], 0)
    assert (report["batches_this_run"], report["batches_earlier"]) == (report["batches"], 0)
    assert report["bodies_sent_this_run"] == plan.bodies
    assert report["requests_this_run"] == report["requests"]
    assert report["earlier_runs"] == []

    # the first bodies were sent by the scheduled run; the others by a run before receipts named theirs
    scheduled = SendingRun("scheduled__2024-03-26T00:00:00+00:00", clear_number=0, try_number=1)
    receipts = PartitionReceipts(partition)
    mine = list(receipts.all())[:3]
    for old in mine:
        PartitionReceipts(partition, run=scheduled).write(old)
    split = build_report(partition, dry_run=False, this_run=SendingRun(scheduled.run_id, 0, try_number=2))
    sent_here = sum(r.items for r in mine)
    assert (split["events_sent_this_run"], split["events_sent_earlier"]) == (
        sent_here,
        report["events_sent"] - sent_here,
    )
    assert split["bodies_sent_this_run"] == split["batches_this_run"] == 3
    assert split["earlier_runs"] == ["a run before receipts named theirs"]
    assert split["events_sent"] == report["events_sent"]  # the existing keys keep their meaning
    assert split["accounted"] is True

    # the run is cleared and runs again: it finds every body finished and sends nothing
    rerun = build_report(partition, dry_run=False, this_run=SendingRun(scheduled.run_id, 1, try_number=3))
    assert (rerun["events_sent_this_run"], rerun["batches_this_run"], rerun["requests_this_run"]) == (0, 0, 0)
    assert rerun["events_sent_earlier"] == report["events_sent"] > 0
    assert rerun["batches_earlier"] == report["batches"]
    assert rerun["earlier_runs"] == ["a run before receipts named theirs", scheduled.run_id]
    assert rerun["run"] == {"run_id": scheduled.run_id, "clear_number": 1, "try_number": 3}
    text = describe(rerun)
    assert re.search(r"^sent +0   this run, in 0 batches, 0 POST requests$", text, re.MULTILINE), text
    assert re.search(
        rf"^ +{report['events_sent']}   in {report['batches']} batches sent by earlier runs \(a run before "
        rf"receipts named theirs, {re.escape(scheduled.run_id)}\), not sent again$",
        text,
        re.MULTILINE,
    ), text
