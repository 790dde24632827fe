"""OmnisendExtractOrdersOperator: a sample shop through an Airflow SQL connection or files -> staging."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from airflow.sdk.exceptions import AirflowFailException
from pipeline_helpers import SHOP, SHOP_DAY, TZ, execute_sql, sample_shop, sqlite_connection

from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.events.schema import EVENT_NAMES
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
from airflow_omnisend.operators.report import OmnisendReportOperator
from airflow_omnisend.operators.retry import OmnisendRetryPolicy
from airflow_omnisend.operators.validate import OmnisendValidateEventsOperator
from airflow_omnisend.staging import StagingManifest, StagingRoot
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    db = sample_shop(tmp_path)
    return db, sqlite_connection(monkeypatch, db)


def _extract(staging: Path, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"store_id": SHOP, "partition": SHOP_DAY, "timezone": TZ, "staging": str(staging)}
    args.update(kwargs)
    return OmnisendExtractOrdersOperator(task_id="extract", **args).execute({})


def _lines(path: Any) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_sql_connection_to_events_in_staging_with_a_small_manifest(
    tmp_path: Path, shop: tuple[Path, str]
) -> None:
    _, conn_id = shop
    manifest = _extract(tmp_path / "staging", source_conn_id=conn_id)

    partition = StagingManifest.from_dict(manifest).partition
    assert partition == StagingRoot(str(tmp_path / "staging")).partition(SHOP, SHOP_DAY)
    assert manifest["files"] == {
        "events": "events.ndjson",
        "rows_rejected": "rows_rejected.ndjson",
        "extract": "extract.json",
    }
    data = partition.events.read_bytes()
    events = _lines(partition.events)
    assert manifest["counts"] == {"events": len(events), "rows_rejected": 0, "rows_unplaceable": 0}
    assert len(events) > 250
    assert manifest["hashes"] == {"events": hashlib.sha256(data).hexdigest()}
    by_name: dict[str, int] = {}
    for event in events:
        by_name[event["eventName"]] = by_name.get(event["eventName"], 0) + 1
    assert manifest["by_event_name"] == dict(sorted(by_name.items()))
    assert set(by_name) == set(EVENT_NAMES)  # the day has every kind of event
    window = PartitionWindow.for_day(SHOP_DAY, TZ)
    assert all(window.contains(datetime.fromisoformat(e["eventTime"])) for e in events)
    assert len({e["eventID"] for e in events}) == len(events)
    assert partition.rows_rejected.read_bytes() == b""
    summary = partition.read_json("extract")
    assert summary["events"] == len(events)
    assert summary["by_event_name"] == manifest["by_event_name"]
    assert summary["events_sha256"] == manifest["hashes"]["events"]
    assert summary["source"] == f"sql:{conn_id}"
    assert summary["timezone"] == TZ
    # XCom stays small: no event data, whatever the partition's size
    assert len(orjson.dumps(manifest)) < 1000

    again = _extract(tmp_path / "staging", source_conn_id=conn_id)  # a rerun is byte-identical
    assert again["hashes"] == manifest["hashes"]


def test_rows_that_cannot_become_events_are_listed_not_lost(tmp_path: Path, shop: tuple[Path, str]) -> None:
    db, conn_id = shop
    with sqlite3.connect(db) as conn:
        (order_id,) = conn.execute(
            "SELECT order_id FROM orders WHERE paid_at LIKE ? ORDER BY order_id LIMIT 1", (f"{SHOP_DAY}%",)
        ).fetchone()
    execute_sql(db, "UPDATE orders SET paid_at = ? WHERE order_id = ?", f"{SHOP_DAY} 10:00", order_id)

    manifest = _extract(tmp_path, source_conn_id=conn_id)

    partition = StagingManifest.from_dict(manifest).partition
    assert manifest["counts"]["rows_rejected"] == 1
    (row,) = _lines(partition.rows_rejected)
    assert (row["orderID"], row["column"], row["value"]) == (str(order_id), "paid_at", f"{SHOP_DAY} 10:00")
    assert row["eventName"] == "paid for order"
    summary = partition.read_json("extract")
    assert summary["rows_rejected"] == 1
    assert summary["rows_rejected_by_code"] == {"unplaceable_time": 1}


def _export_csv(db: Path, folder: Path) -> None:
    folder.mkdir()
    order_by = {
        "orders": "order_id",
        "order_lines": "order_id, line_number",
        "refunds": "order_id, refund_id",
        "refund_lines": "refund_id, line_number",
    }
    with sqlite3.connect(db) as conn:
        for table, ordering in order_by.items():
            cur = conn.execute(f"SELECT * FROM {table} ORDER BY {ordering}")
            names = [d[0] for d in cur.description]
            with (folder / f"{table}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(names)
                writer.writerows(["" if v is None else v for v in row] for row in cur)


def test_file_sources_give_the_sql_events(tmp_path: Path, shop: tuple[Path, str]) -> None:
    db, conn_id = shop
    sql = _extract(tmp_path / "sql", source_conn_id=conn_id)
    expected = StagingManifest.from_dict(sql).partition.events.read_bytes()

    # CSV exports of the tables, as a folder (format guessed)
    _export_csv(db, tmp_path / "csv")
    from_csv = _extract(tmp_path / "from_csv", source_path=str(tmp_path / "csv"))
    assert StagingManifest.from_dict(from_csv).partition.events.read_bytes() == expected
    assert (
        StagingManifest.from_dict(from_csv).partition.read_json("extract")["source"].startswith("orders_csv:")
    )

    # ready events of several days in one NDJSON file: each partition keeps its own (a file:// URL)
    other_day = _extract(tmp_path / "sql", source_conn_id=conn_id, partition="2024-03-25")
    events_file = tmp_path / "events.ndjson"
    events_file.write_bytes(StagingManifest.from_dict(other_day).partition.events.read_bytes() + expected)
    from_events = _extract(tmp_path / "from_events", source_path=f"file://{events_file}")
    assert StagingManifest.from_dict(from_events).partition.events.read_bytes() == expected
    extract_json = StagingManifest.from_dict(from_events).partition.read_json("extract")
    assert extract_json["source"] == f"events_ndjson:file://{events_file}"
    assert from_events["counts"] == sql["counts"]


def test_refuses_a_day_that_has_not_ended_in_the_store_timezone(
    tmp_path: Path, shop: tuple[Path, str]
) -> None:
    _, conn_id = shop
    tz = "Pacific/Kiritimati"  # UTC+14: its today has not ended anywhere yet
    today = datetime.now(UTC).astimezone(ZoneInfo(tz)).date().isoformat()
    with pytest.raises(OmnisendConfigError) as caught:
        _extract(tmp_path, source_conn_id=conn_id, partition=today, timezone=tz)
    message = str(caught.value)
    assert f"the day {today} has not ended in the store's timezone {tz}" in message
    assert f"it is {today}T" in message  # the current local time...
    assert "+14:00 there now" in message
    assert not (tmp_path / SHOP).exists()  # nothing written
    decision = OmnisendRetryPolicy().evaluate(caught.value, try_number=1, max_tries=3)
    assert decision.action.value == "fail"  # a retry minutes later would not help

    yesterday = (datetime.now(UTC).astimezone(ZoneInfo(tz)) - timedelta(days=1)).date().isoformat()
    manifest = _extract(tmp_path, source_conn_id=conn_id, partition=yesterday, timezone=tz)
    assert manifest["counts"]["events"] == 0  # ended: extracted (the sample shop has nothing then)


def test_templated_fields_render_from_the_context(tmp_path: Path, shop: tuple[Path, str]) -> None:
    _, conn_id = shop
    op = OmnisendExtractOrdersOperator(
        task_id="extract",
        store_id="{{ params.store }}",
        partition="{{ ds }}",
        timezone="{{ params.tz }}",
        source_conn_id="{{ params.conn }}",
        source_path="{{ params.path }}",  # renders "None": not given
        staging="{{ params.staging }}",
    )
    assert set(op.template_fields) == {
        "store_id", "partition", "timezone", "source_conn_id", "source_path", "source_format", "staging",
    }  # fmt: skip
    context: Any = {
        "ds": SHOP_DAY,
        "params": {"store": SHOP, "tz": TZ, "conn": conn_id, "path": None, "staging": str(tmp_path)},
    }
    op.render_template_fields(context)
    assert (op.store_id, op.partition, op.timezone, op.source_conn_id) == (SHOP, SHOP_DAY, TZ, conn_id)
    manifest = op.execute(context)
    assert manifest["day"] == SHOP_DAY
    assert manifest["counts"]["events"] > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give exactly one source"),
        ({"source_conn_id": "a", "source_path": "/x.ndjson"}, "give exactly one source"),
        ({"source_path": "/x.ndjson", "source_format": "parquet"}, "source_format must be one of"),
        ({"source_conn_id": "a", "source_format": "orders_csv"}, "a SQL source"),
        ({"source_path": "/x.ndjson", "queries": object()}, "queries must be a SqlQueries"),
        ({"source_conn_id": "a", "timezone": "Mars/Olympus"}, "not a known IANA timezone"),
        ({"source_conn_id": "a", "fetch_size": 0}, "fetch_size must be an integer >= 1"),
    ],
)
def test_unusable_arguments_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"store_id": SHOP, "partition": SHOP_DAY, "timezone": TZ, **kwargs}
    with pytest.raises(OmnisendConfigError, match=message):
        OmnisendExtractOrdersOperator(task_id="extract", **args)


def test_file_problems_name_the_file_and_fail_without_retry(tmp_path: Path) -> None:
    """Issue 14, item 8: no retry can fix a wrong file, so each ends the task at once
    (AirflowFailException: FAILED before retries are counted) with the fix."""
    (tmp_path / "empty_folder").mkdir()
    odd = tmp_path / "orders.parquet"
    odd.write_bytes(b"PAR1")
    zeros = tmp_path / "zeros.ndjson"
    zeros.write_bytes(b"{" + b"0" * (5 << 20))
    cases = [
        (str(tmp_path / "empty_folder"), r"has no orders\.csv", {}),
        (str(odd), "cannot tell the format of", {}),
        (str(tmp_path / "missing.ndjson"), "does not exist", {}),
        ("nosuchscheme://bucket/orders.ndjson", "nosuchscheme", {}),
        (str(tmp_path / "empty_folder"), "is a folder|not a file", {"source_format": "events_ndjson"}),
        (str(zeros), "line 1 is longer than 4194304 bytes", {"source_format": "events_ndjson"}),
    ]
    for path, match, extra in cases:
        with pytest.raises(AirflowFailException, match=match) as raised:
            _extract(tmp_path / "staging", source_path=path, **extra)
        assert isinstance(raised.value, OmnisendInputError)
        assert "not retried" in str(raised.value)


@pytest.mark.postgres
def test_a_postgres_connection_gives_the_sqlite_events(
    tmp_path: Path, shop: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any Airflow SQL connection: the sample shop in PostgreSQL (timestamptz) gives the same bytes."""
    psycopg = pytest.importorskip("psycopg")
    dsn = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
    try:
        admin = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc})")
    schema = f"omnisend_extract_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        with psycopg.connect(dsn, options=f"-c search_path={schema}") as conn:
            build_sample_store(conn, orders=300, seed=7, timezone=TZ, days=2, dialect="postgres")
        pg_conn = {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": 5432,
            "login": "postgres",
            "schema": "postgres",
            "extra": {"options": f"-c search_path={schema}"},
        }
        monkeypatch.setenv("AIRFLOW_CONN_SHOP_POSTGRES", json.dumps(pg_conn))
        from_pg = _extract(tmp_path / "pg", source_conn_id="shop_postgres")
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()
    from_sqlite = _extract(tmp_path / "sqlite", source_conn_id=shop[1])
    assert from_pg["counts"]["events"] > 250
    assert from_pg["hashes"] == from_sqlite["hashes"]
    assert StagingManifest.from_dict(from_pg).partition.read_json("extract")["source"] == "sql:shop_postgres"


def test_a_templated_source_is_checked_once_rendered(tmp_path: Path) -> None:
    op = OmnisendExtractOrdersOperator(
        task_id="extract",
        store_id=SHOP,
        partition=SHOP_DAY,
        timezone=TZ,
        source_conn_id="{{ params.conn }}",
        source_path="{{ params.path }}",
        staging=str(tmp_path),
    )
    context: Any = {"params": {"conn": None, "path": None}}
    op.render_template_fields(context)
    with pytest.raises(OmnisendConfigError, match="give exactly one source"):
        op.execute(context)


def test_rows_whose_time_has_no_date_are_reported_by_every_partition_run(
    tmp_path: Path, shop: tuple[Path, str]
) -> None:
    """No day's window can select a row created 'yesterday': the store-wide sweep lists it, so it is
    never lost silently (the report carries the count and a note)."""
    db, conn_id = shop
    with sqlite3.connect(db) as con:
        order_id = con.execute("SELECT order_id FROM orders LIMIT 1").fetchone()[0]
        con.execute("UPDATE orders SET created_at = 'yesterday' WHERE order_id = ?", (order_id,))
    manifest = _extract(tmp_path / "staging", source_conn_id=conn_id)
    assert manifest["counts"]["rows_unplaceable"] == 1
    partition = StagingManifest.from_dict(manifest).partition
    [row] = _lines(partition.file("unplaceable"))
    assert (row["orderID"], row["column"], row["value"], row["code"]) == (
        order_id,
        "created_at",
        "yesterday",
        "no_date",
    )
    assert partition.read_json("extract")["rows_unplaceable"] == 1
    common = {"store_id": SHOP, "partition": SHOP_DAY, "staging": str(tmp_path / "staging")}
    OmnisendValidateEventsOperator(task_id="v", max_reject_ratio=0.5, **common).execute({})
    OmnisendReportOperator(task_id="r", dry_run=True, **common).execute({})
    report = partition.read_json("report")
    assert report["rows_unplaceable"] == 1
    assert any("1 source rows of the store belong to no day" in n for n in report["notes"])

    quiet = _extract(tmp_path / "quiet", source_conn_id=conn_id, check_unplaceable=False)
    assert quiet["counts"]["rows_unplaceable"] == 0


def test_rows_no_event_query_returns_are_reported_with_codes(tmp_path: Path, shop: tuple[Path, str]) -> None:
    """An order without order_id, a line of a missing order, a refund line of a missing line: each ends
    in unplaceable_rows.ndjson with a code, counted in extract.json and the report (issue 14, item 1)."""
    db, conn_id = shop
    with sqlite3.connect(db) as con:
        order_id, created = con.execute("SELECT order_id, created_at FROM orders LIMIT 1").fetchone()
        con.execute(
            "INSERT INTO orders (order_id, email, currency, subtotal_price, total_price, created_at)"
            " VALUES (NULL, 'n@example.com', 'EUR', 1, 1, ?)",
            (created,),
        )
        con.execute(
            "INSERT INTO order_lines (order_id, line_number, product_id, title, quantity, unit_price)"
            " VALUES ('no-such-order', 1, 'P', 'T', 1, 1)"
        )
        con.execute(
            "INSERT INTO refunds (refund_id, order_id, created_at, amount) VALUES ('R-orphan', ?, ?, 1)",
            (order_id, created),
        )
        con.execute(
            "INSERT INTO refund_lines (refund_id, line_number, quantity, amount)"
            " VALUES ('R-orphan', 999, 1, 1)"
        )
    manifest = _extract(tmp_path / "staging", source_conn_id=conn_id)
    partition = StagingManifest.from_dict(manifest).partition
    codes = sorted(row["code"] for row in _lines(partition.file("unplaceable")))
    assert codes == ["line_without_order", "null_order_id", "refund_line_without_order_line"]
    extract = partition.read_json("extract")
    assert extract["rows_unplaceable"] == 3
    assert extract["rows_unplaceable_by_code"] == {
        "line_without_order": 1,
        "null_order_id": 1,
        "refund_line_without_order_line": 1,
    }
    common = {"store_id": SHOP, "partition": SHOP_DAY, "staging": str(tmp_path / "staging")}
    OmnisendValidateEventsOperator(task_id="v", max_reject_ratio=1, **common).execute({})
    OmnisendReportOperator(task_id="r", dry_run=True, **common).execute({})
    report = partition.read_json("report")
    assert report["rows_unplaceable"] == 3
    assert any("3 source rows of the store belong to no day" in n for n in report["notes"])
