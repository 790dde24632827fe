"""``airflow dags test`` per partition, as a real CLI subprocess, against the Omnisend emulator.

The test session's Airflow home (tests/conftest.py) after ``airflow db migrate``; connections through
``AIRFLOW_CONN_*`` pointing at an in-process emulator and a sample store; the stores file and staging in a
temporary folder. Proves, per store-local day: every extracted event is accepted exactly once or rejected
with a reason, report.json adds up, a rerun submits nothing, a dry run sends nothing and estimates the
requests, the automation check blocks unless acknowledged - and that ``airflow backfill create`` reads
its dates as the store's local days (the timetable decision, docs/timetable.md).
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.events.validation import EventValidator
from airflow_omnisend.sources import DbApiOrderSource, extract_partition
from airflow_omnisend.stores import STORES_ENV
from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "omnisend_orders__demo"
TZ = "Europe/Vilnius"
#: 300 orders placed 2024-03-25..31 (seed 7): 2024-03-26 holds two orders with a non-ISO currency
SAMPLE = {"orders": 300, "seed": 7, "timezone": TZ, "start": "2024-03-25", "days": 7}
STORES = """\
stores:
  - store_id: demo
    omnisend_conn_id: omnisend_demo
    source_conn_id: shop_demo
    timezone: Europe/Vilnius
    start_date: "2024-03-04"
    max_reject_ratio: 0.1   # the sample store is 1% dirty on purpose; small days go above 1%
    pool: omnisend_demo_never_created   # dags test must not need the store's pool
  - store_id: demo_month
    omnisend_conn_id: omnisend_demo
    source_conn_id: shop_demo
    timezone: Europe/Vilnius
    start_date: "2024-03-01"
    period: month
    max_reject_ratio: 0.1
    pool: omnisend_demo_never_created
"""
POOL = "omnisend_demo_never_created"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Migrated metadata DB, the sample shop, the stores file and a staging folder (shared by the module)."""
    root = tmp_path_factory.mktemp("dags-test-e2e")
    shop = root / "shop.sqlite"
    build_sample_store(shop, **SAMPLE)  # type: ignore[arg-type]
    stores = root / "stores.yaml"
    stores.write_text(STORES, encoding="utf-8")
    env = dict(os.environ)
    env.update(
        {
            STORES_ENV: str(stores),
            "AIRFLOW_OMNISEND_STAGING": str(root / "staging"),
            "AIRFLOW__OMNISEND__IMPORT_ALLOWED_ROOTS": str(root / "imports"),
            "AIRFLOW_CONN_SHOP_DEMO": json.dumps({"conn_type": "sqlite", "host": str(shop)}),
        }
    )
    migrate = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    return {"root": root, "shop": shop, "staging": root / "staging", "env": env}


@pytest.fixture
def emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.02)) as emu:
        yield emu


def dags_test(
    workspace: dict[str, Any], emu: OmnisendEmulator, conf: dict[str, Any] | None, dag_id: str = DAG_ID
):
    env = dict(workspace["env"])
    env["AIRFLOW_CONN_OMNISEND_DEMO"] = json.dumps(
        {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key}
    )
    args = [AIRFLOW, "dags", "test", dag_id]
    if conf is not None:
        args += ["-c", json.dumps(conf)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)


def partition_dir(workspace: dict[str, Any], day: str, store: str = "demo") -> Path:
    return Path(workspace["staging"]) / store / day


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def extracted(workspace: dict[str, Any], day: str) -> list[dict[str, Any]]:
    """The events the extractor produces for ``day`` straight from the shop (no Airflow)."""
    out = io.BytesIO()
    with sqlite3.connect(workspace["shop"]) as conn:
        extract_partition(DbApiOrderSource(conn), "demo", PartitionWindow.for_day(day, TZ), out)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def posts(emu: OmnisendEmulator) -> int:
    return sum(1 for r in emu.store.request_log() if r.method == "POST" and "batches" in r.path)


def automation(event: str) -> dict[str, Any]:
    return {
        "id": "65f0000000000000000000e1",
        "name": "Order confirmation",
        "isEnabled": True,
        "trigger": {"condition": {"event": event, "origin": "api", "filterGroups": []}},
        "exitConditions": [],
    }


def metadata_rows(workspace: dict[str, Any], query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of the test session's metadata DB (SQLite), as Airflow's UI would read them."""
    url = workspace["env"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if not url.startswith("sqlite:///"):
        pytest.skip(f"the metadata DB is not SQLite here ({url.split(':')[0]})")
    with sqlite3.connect(url[len("sqlite:///") :]) as conn:
        return conn.execute(query, args).fetchall()


def explain(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stdout + result.stderr).splitlines()
    return "\n".join(line for line in lines if re.search(r"error|Error|fail|Fail", line))[-6000:]


def test_days_are_accepted_exactly_once_and_a_rerun_sends_nothing(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    days = ["2024-03-26", "2024-03-31"]  # an ordinary day with dirty rows, and the 23-hour DST day
    pools = subprocess.run(
        [AIRFLOW, "pools", "list", "-o", "plain"],
        env=workspace["env"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert POOL not in pools.stdout  # the safety check and the sends are in this pool: it need not exist
    reports = {}
    for day in days:
        result = dags_test(workspace, emulator, {"partition": day})
        assert result.returncode == 0, explain(result)
        reports[day] = json.loads((partition_dir(workspace, day) / "report.json").read_text())

    accepted = [e.event_id for e in emulator.store.accepted_events()]
    assert len(accepted) == len(set(accepted)), "an event was accepted twice"
    assert emulator.store.duplicate_count() == 0

    expected_valid: set[str] = set()
    total_rejected = 0
    for day in days:
        events = extracted(workspace, day)
        ids = [e["eventID"] for e in events]
        assert len(ids) == len(set(ids))
        rejected = read_ndjson(partition_dir(workspace, day) / "rejected.ndjson")
        rejected_ids = {r["event"]["eventID"] for r in rejected}
        assert rejected_ids <= set(ids)
        for line in rejected:  # dirty rows: named by order id, with the reasons
            assert line["event"]["properties"]["orderID"]
            assert line["errors"]
            assert all(err["path"] and err["message"] for err in line["errors"])
        total_rejected += len(rejected_ids)
        expected_valid |= set(ids) - rejected_ids

        report = reports[day]
        assert report["partition"] == day
        assert report["events_extracted"] == len(events)
        assert report["events_rejected"] == len(rejected_ids)
        assert report["events_valid"] == len(events) - len(rejected_ids)
        assert report["events_accepted"] == report["events_valid"] == report["events_sent"]
        assert report["events_dead_lettered"] == 0
        assert report["events_unaccounted"] == 0
        assert report["accounted"] is True
        assert (
            report["events_accepted"] + report["events_rejected"] + report["events_dead_lettered"]
            == report["events_extracted"]
        )
        assert report["automation_check"]["outcome"] == "passed"
        assert report["requests"] == report["batches"] >= 1
    assert total_rejected >= 2, "the sample store's dirty rows of 2024-03-26 must be rejected"

    # what the UI shows for a day's run: each mapped send named by its shard, links on report and check
    run_id = reports[days[0]]["run"]["run_id"]
    labels = metadata_rows(
        workspace,
        "SELECT map_index, rendered_map_index FROM task_instance WHERE dag_id = ? AND run_id = ? "
        "AND task_id = 'send' ORDER BY map_index",
        DAG_ID,
        run_id,
    )
    assert labels, run_id
    for index, label in labels:
        assert re.fullmatch(rf"shard {index}: [\d,]+ bod(y|ies), [\d,]+ events?", label or ""), labels
    links = dict(
        metadata_rows(
            workspace,
            "SELECT task_id || ' ' || key, value FROM xcom WHERE dag_id = ? AND run_id = ? "
            "AND key LIKE '_link_%'",
            DAG_ID,
            run_id,
        )
    )
    period = f"/omnisend/stores/demo/periods/{days[0]}/report"
    assert json.loads(links["report _link_OmnisendPeriodReportLink"]) == period, links
    assert json.loads(links["report _link_OmnisendStoreDashboardLink"]) == "/omnisend/stores/demo", links
    automations = json.loads(links["automation_safety_check _link_OmnisendAutomationsLink"])
    assert automations == "https://app.omnisend.com/automations", links
    assert set(accepted) == expected_valid

    # a second run of the same day: every body has a finished receipt, nothing is submitted
    before = posts(emulator)
    assert before >= 2
    again = dags_test(workspace, emulator, {"partition": days[0]})
    assert again.returncode == 0, explain(again)
    assert posts(emulator) == before
    assert len(emulator.store.accepted_events()) == len(accepted)
    report = json.loads((partition_dir(workspace, days[0]) / "report.json").read_text())
    assert report["events_accepted"] == reports[days[0]]["events_accepted"]
    # ... and its report says so: nothing sent by this run, everything by the first one
    first = reports[days[0]]
    assert first["events_sent_this_run"] == first["events_sent"] > 0
    assert first["earlier_runs"] == []
    assert (report["events_sent_this_run"], report["batches_this_run"]) == (0, 0)
    assert report["events_sent_earlier"] == first["events_sent"]
    assert report["earlier_runs"] == [first["run"]["run_id"]] != [report["run"]["run_id"]]
    assert re.search(r"sent +0   this run, in 0 batches", again.stdout + again.stderr), explain(again)


def test_dry_run_sends_nothing_and_estimates_requests(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    day = "2024-03-27"
    result = dags_test(workspace, emulator, {"partition": day, "dry_run": True})
    assert result.returncode == 0, explain(result)
    assert posts(emulator) == 0
    assert emulator.store.accepted_events() == []
    report = json.loads((partition_dir(workspace, day) / "report.json").read_text())
    assert report["dry_run"] is True
    assert report["events_sent"] == 0
    assert report["events_planned_not_sent"] == report["events_valid"] > 0
    assert report["accounted"] is True
    # what it would take: the plan task's estimate (bodies, requests, minutes at the rate limit)
    estimate = re.search(
        r"Estimate: (\d+) bodies: \d+ POST /batches \+ \d+ polls = (\d+) requests, about ([\d.]+) min at 400 "
        r"requests/min",
        result.stdout + result.stderr,
    )
    assert estimate, explain(result)
    assert int(estimate.group(1)) >= 1
    assert int(estimate.group(2)) >= 2
    # ... and the same figures in report.json, for whoever reads the report instead of the log
    would = report["dry_run_plan"]
    assert (would["bodies"], would["requests"]) == (int(estimate.group(1)), int(estimate.group(2)))
    assert would["events"] == report["events_valid"]


def test_automation_check_blocks_unless_acknowledged(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    day = "2024-03-28"
    emulator.set_automations([automation("placed order")])
    blocked = dags_test(workspace, emulator, {"partition": day})
    assert blocked.returncode != 0
    check = json.loads((partition_dir(workspace, day) / "automation_check.json").read_text())
    assert check["outcome"] == "blocked"
    assert [m["id"] for m in check["automations_matched"]] == ["65f0000000000000000000e1"]
    assert check["summary"].startswith(f"BLOCKED {day}: 1 automation (")
    assert check["summary"] in blocked.stdout + blocked.stderr, explain(blocked)
    assert posts(emulator) == 0
    assert not (partition_dir(workspace, day) / "plan.json").exists()

    reason = "Order confirmation flow paused by Ana for the historic import (ticket OPS-42)"
    passed = dags_test(workspace, emulator, {"partition": day, "acknowledge_automations": reason})
    assert passed.returncode == 0, explain(passed)
    report = json.loads((partition_dir(workspace, day) / "report.json").read_text())
    assert report["automation_check"]["outcome"] == "acknowledged"
    assert report["automation_check"]["acknowledgement"] == reason
    assert report["events_accepted"] == report["events_valid"] > 0
    assert len(emulator.store.accepted_events()) == report["events_accepted"]


def test_a_run_without_a_partition_says_how_to_name_one(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    result = dags_test(workspace, emulator, None)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "does not name the day to process" in output
    assert """airflow dags test omnisend_orders__demo -c '{"partition": "YYYY-MM-DD"}'""" in output
    assert "Task failed" in output
    assert posts(emulator) == 0


def test_unknown_conf_key_and_unended_day_are_refused(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    typo = dags_test(workspace, emulator, {"partition": "2024-03-29", "dry_rn": True})
    assert typo.returncode != 0
    assert "unknown key(s) ['dry_rn']" in typo.stdout + typo.stderr
    future = dags_test(workspace, emulator, {"partition": "2099-01-01"})
    assert future.returncode != 0
    assert "2099-01-01 has not ended in Europe/Vilnius" in future.stdout + future.stderr
    assert posts(emulator) == 0


def test_import_file_dag_sends_an_events_file(workspace: dict[str, Any], emulator: OmnisendEmulator) -> None:
    events = extracted(workspace, "2024-03-29")
    source = Path(workspace["root"]) / "imports" / "import.ndjson"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    store_day = partition_dir(workspace, "2024-03-29")
    store_day.mkdir(parents=True, exist_ok=True)
    for name in ("report.json", "valid.ndjson", "rejected.ndjson"):  # the store's own run's files
        if not (store_day / name).exists():
            (store_day / name).write_text(f"the store's {name}\n", encoding="utf-8")
    store_files = {p: p.read_bytes() for p in store_day.iterdir() if p.is_file()}
    # a store's own id and day: the import stages apart and leaves the store's files as they were
    conf = {"path": str(source), "store_id": "demo", "partition": "2024-03-29"}  # conn from the stores file
    result = dags_test(workspace, emulator, conf, dag_id="omnisend_import_file")
    assert result.returncode == 0, explain(result)
    assert {p: p.read_bytes() for p in store_files} == store_files
    report = json.loads(
        (partition_dir(workspace, "2024-03-29", "file-imports/demo") / "report.json").read_text()
    )
    assert report["events_extracted"] == len(events)
    assert report["events_accepted"] + report["events_rejected"] == len(events)
    assert len(emulator.store.accepted_events()) == report["events_accepted"] > 0


def contract_form(canonical: str, i: int) -> str:
    """``canonical`` (a UTC eventTime) in one of four spellings of Omnisend's 2026-03-15 events contract."""
    instant = datetime.fromisoformat(canonical)
    fraction = f".{instant.microsecond:06d}000" if instant.microsecond else ""  # 9 digits
    hours, sep, offset = [(2, " ", "+02:00"), (-5, "t", "-0500"), (5, "T", "+05"), (0, "T", "z")][i % 4]
    local = instant.astimezone(timezone(timedelta(hours=hours)))
    return local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + fraction + offset


def test_import_file_dag_sends_contract_time_forms_as_canonical_utc(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    """Issue 11 §3: an imported file whose eventTimes use the contract's other forms (a space or 't',
    nine fraction digits, +0200 / +05 offsets, 'z') goes through, and Omnisend (the emulator, which reads
    only ±HH:MM offsets) receives each event with the canonical UTC string the extraction writes."""
    validator = EventValidator()
    events = [e for e in extracted(workspace, "2024-03-27") if validator.check(e).ok]  # not the dirty rows
    canonical = {e["eventID"]: e["eventTime"] for e in events}
    source = Path(workspace["root"]) / "imports" / "contract-forms.ndjson"
    source.parent.mkdir(exist_ok=True)
    forms = [{**e, "eventTime": contract_form(e["eventTime"], i)} for i, e in enumerate(events)]
    assert (
        sum(f["eventTime"] != e["eventTime"] for f, e in zip(forms, events, strict=True)) > len(events) // 2
    )
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in forms))
    conf = {"path": str(source), "omnisend_conn_id": "omnisend_demo", "partition": "2024-03-27"}
    result = dags_test(workspace, emulator, conf, dag_id="omnisend_import_file")
    assert result.returncode == 0, explain(result)
    report = json.loads(
        (partition_dir(workspace, "2024-03-27", "file-imports/file_import") / "report.json").read_text()
    )
    assert report["events_extracted"] == report["events_accepted"] == len(events)
    accepted = emulator.store.accepted_events()
    assert {a.event_id: a.event_time for a in accepted} == canonical


def test_import_file_dag_refuses_a_file_outside_the_import_roots(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    outside = Path(workspace["root"]) / "outside.ndjson"
    outside.write_bytes(b"")
    for path in (
        str(outside),
        "/etc/passwd",
        str(Path(workspace["root"]) / "imports" / ".." / "shop.sqlite"),
    ):
        before = posts(emulator)
        result = dags_test(
            workspace, emulator, {"path": path, "partition": "2000-01-02"}, dag_id="omnisend_import_file"
        )
        assert result.returncode != 0
        assert "not under an allowed import root" in result.stdout + result.stderr
        assert posts(emulator) == before
    assert not (
        Path(workspace["staging"]) / "file-imports" / "file_import" / "2000-01-02" / "valid.ndjson"
    ).exists()


def test_backfill_reads_dates_as_the_stores_local_days(workspace: dict[str, Any]) -> None:
    """The timetable decision: from/to dates are store-local partition keys, DST day included."""
    env = workspace["env"]

    def airflow(*args: str) -> str:
        result = subprocess.run(
            [AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    airflow("dags", "reserialize")
    table = airflow(
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        "2024-03-30",
        "--to-date",
        "2024-04-01",
        "--dry-run",
    )
    keys = re.findall(r"\|\s*(\d{4}-\d{2}-\d{2})\s*\|\s*(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\+00:00)", table)
    assert keys == [
        ("2024-03-30", "2024-03-29 22:00:00+00:00"),
        ("2024-03-31", "2024-03-30 22:00:00+00:00"),  # 23 hours: the next day starts at 21:00 UTC
        ("2024-04-01", "2024-03-31 21:00:00+00:00"),
    ]


def test_import_file_dag_fails_at_once_on_a_file_no_retry_can_fix(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    """Issue 14, item 8: a file that is not NDJSON fails the validate task at once (no up_for_retry,
    no 60 s waits), naming the line and saying it is not retried; nothing is sent."""
    source = Path(workspace["root"]) / "imports" / "not-ndjson.ndjson"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(b"<html>a login page, not events</html>\n")
    conf = {"path": str(source), "store_id": "demo", "partition": "2000-01-02"}
    result = dags_test(workspace, emulator, conf, dag_id="omnisend_import_file")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "line 1: not JSON" in output, explain(result)
    assert "not retried" in output, explain(result)
    assert "up_for_retry" not in output.lower(), explain(result)
    assert posts(emulator) == 0


def test_a_month_partition_runs_whole_under_dags_test(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    wrong = dags_test(workspace, emulator, {"partition": "2024-03-26"}, dag_id="omnisend_orders__demo_month")
    assert wrong.returncode != 0
    # the trigger form names a month store's period in the Partition Key, so no Param checks the conf's
    # alias: the extract task refuses the day, naming the month form, before anything is read or sent
    assert "run conf partition '2024-03-26' is not a month" in wrong.stdout + wrong.stderr
    assert "give one in the form YYYY-MM (e.g. 2024-03)" in wrong.stdout + wrong.stderr
    assert posts(emulator) == 0

    result = dags_test(workspace, emulator, {"partition": "2024-03"}, dag_id="omnisend_orders__demo_month")
    assert result.returncode == 0, explain(result)
    folder = partition_dir(workspace, "2024-03", store="demo_month")
    report = json.loads((folder / "report.json").read_text())
    out = io.BytesIO()
    with sqlite3.connect(workspace["shop"]) as conn:
        window = PartitionWindow.for_period("2024-03", "month", TZ)
        extract_partition(DbApiOrderSource(conn), "demo_month", window, out)
    month_ids = [orjson.loads(line)["eventID"] for line in out.getvalue().splitlines()]
    rejected = {r["event"]["eventID"] for r in read_ndjson(folder / "rejected.ndjson")}
    accepted = [e.event_id for e in emulator.store.accepted_events()]
    assert report["partition"] == "2024-03"
    assert report["events_extracted"] == len(month_ids) > 0
    assert report["accounted"] is True
    assert sorted(accepted) == sorted(set(month_ids) - rejected)
    assert not (folder / "valid.ndjson").exists()  # retention: the copies go once the month is sent
    assert not (folder / "bodies").exists()
    # the month holds exactly the days' events: the same rule, the same eventIDs
    days = [f"2024-03-{d:02d}" for d in range(25, 32)]
    out = io.BytesIO()
    with sqlite3.connect(workspace["shop"]) as conn:
        for day in days:
            extract_partition(DbApiOrderSource(conn), "demo_month", PartitionWindow.for_day(day, TZ), out)
    assert sorted(orjson.loads(line)["eventID"] for line in out.getvalue().splitlines()) == sorted(month_ids)


def test_every_kind_the_import_can_start_blocks_and_what_it_can_change_only_warns(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    """Issue 11 §1 in real Airflow: derived-event, segment-entry and unreadable triggers block with no
    POST; splits and audience filters on order data pass with the warning in the report."""
    day = "2024-03-25"  # no other test of the module sends it
    on = {"isEnabled": True, "exitConditions": []}
    blocking = [
        {**on, "id": "65f0000000000000000000f1", "name": "Review ask",
         "trigger": {"condition": {"event": "ordered product", "origin": "api"}}},
        {**on, "id": "65f0000000000000000000f2", "name": "VIP welcome",
         "trigger": {"condition": {"event": "entered segment", "origin": "omnisend", "segmentName": "VIP"}}},
        {**on, "id": "65f0000000000000000000f3", "name": "Odd shape", "trigger": ["placed order"]},
    ]  # fmt: skip
    warning = [
        {**on, "id": "65f0000000000000000000f4", "name": "Browse follow-up",
         "trigger": {"condition": {"event": "viewed product", "origin": "api"}},
         "blocks": [{"type": "conditionalSplit", "filterGroup": {"property": "totalPrice"}}]},
        {**on, "id": "65f0000000000000000000f5", "name": "Cart reminder",
         "trigger": {"condition": {"event": "added product to cart", "origin": "api"},
                     "audienceFilterGroup": {"event": "placed order"}}},
    ]  # fmt: skip
    emulator.set_automations([*blocking, *warning])
    blocked = dags_test(workspace, emulator, {"partition": day})
    assert blocked.returncode != 0
    check = json.loads((partition_dir(workspace, day) / "automation_check.json").read_text())
    assert check["outcome"] == "blocked"
    assert [m["id"] for m in check["automations_matched"]] == [a["id"] for a in blocking]
    assert "segment 'VIP'" in check["reason"]
    assert posts(emulator) == 0

    emulator.set_automations(warning)
    passed = dags_test(workspace, emulator, {"partition": day})
    assert passed.returncode == 0, explain(passed)
    report = json.loads((partition_dir(workspace, day) / "report.json").read_text())
    assert report["automation_check"]["outcome"] == "passed"
    assert report["automation_check"]["warnings"] == 2
    assert {a["name"]: a["verdict"] for a in report["automation_check"]["automations"]} == {
        "Browse follow-up": "warn",
        "Cart reminder": "warn",
    }
    assert report["events_accepted"] == report["events_valid"] > 0
