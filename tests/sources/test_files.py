"""File sources: NDJSON events, NDJSON order objects and CSV tables give what the SQL source gives."""

from __future__ import annotations

import csv
import io
import random
import sqlite3
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.sources.extract import extract_partition
from airflow_omnisend.sources.files import NdjsonEventSource, OrderCsvSource, OrderNdjsonSource
from airflow_omnisend.sources.sql import DbApiOrderSource
from airflow_omnisend.testing.sample_store import SampleStoreSummary, build_sample_store

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_omnisend.sources.base import RowRejection

TZ = "Europe/Vilnius"
START = date(2024, 3, 29)  # across 2024-03-31 (23 hours)
TABLES = ("orders", "order_lines", "refunds", "refund_lines")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleStoreSummary]:
    path = tmp_path_factory.mktemp("files") / "shop.sqlite"
    return path, build_sample_store(path, 250, 21, timezone=TZ, start=START, days=3)


def _days(summary: SampleStoreSummary) -> list[date]:
    assert summary.first_event_day is not None
    assert summary.last_event_day is not None
    return [
        summary.first_event_day + timedelta(days=i)
        for i in range((summary.last_event_day - summary.first_event_day).days + 1)
    ]


def _extract(source: Any, day: date) -> tuple[bytes, list[dict[str, Any]]]:
    out, rejected = io.BytesIO(), io.BytesIO()
    extract_partition(source, "demo", PartitionWindow.for_day(day, TZ), out, rows_rejected_out=rejected)
    return out.getvalue(), [orjson.loads(line) for line in rejected.getvalue().splitlines()]


def _rows(conn: sqlite3.Connection, table: str, order_by: str) -> list[dict[str, Any]]:
    cur = conn.execute(f"SELECT * FROM {table} ORDER BY {order_by}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


ORDERING = {
    "orders": "order_id",
    "order_lines": "order_id, line_number",
    "refunds": "order_id, refund_id",
    "refund_lines": "refund_id, line_number",
}


def test_ndjson_order_objects_give_the_sql_events(
    store: tuple[Path, SampleStoreSummary], tmp_path: Path
) -> None:
    path, summary = store
    conn = sqlite3.connect(path)
    lines: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(conn, "order_lines", ORDERING["order_lines"]):
        lines.setdefault(row.pop("order_id"), []).append(row)
    refund_lines: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(conn, "refund_lines", ORDERING["refund_lines"]):
        refund_lines.setdefault(row["refund_id"], []).append(row)
    refunds: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(conn, "refunds", ORDERING["refunds"]):
        refunds.setdefault(row["order_id"], []).append(
            {**row, "lines": refund_lines.get(row["refund_id"], [])}
        )
    orders_file = tmp_path / "orders.ndjson"
    with orders_file.open("wb") as handle:
        for order in _rows(conn, "orders", "order_id"):
            nested = {
                **order,
                "lines": lines.get(order["order_id"], []),
                "refunds": refunds.get(order["order_id"], []),
            }
            handle.write(orjson.dumps(nested) + b"\n")
    sql, files = DbApiOrderSource(conn), OrderNdjsonSource(orders_file)
    total = 0
    for day in _days(summary):
        expected, _ = _extract(sql, day)
        got, rejected = _extract(files, day)
        assert got == expected, day
        assert rejected == []
        total += len(got.splitlines())
    assert total == summary.total_events
    assert files.find_unplaceable(pytest.fail) == 0


def _write_csv(conn: sqlite3.Connection, table: str, target: Path) -> Path:
    rows = _rows(conn, table, ORDERING[table])
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return target


def test_csv_tables_give_the_sql_events(store: tuple[Path, SampleStoreSummary], tmp_path: Path) -> None:
    path, summary = store
    conn = sqlite3.connect(path)
    files = {table: _write_csv(conn, table, tmp_path / f"{table}.csv") for table in TABLES}
    source = OrderCsvSource(files["orders"], files["order_lines"], files["refunds"], files["refund_lines"])
    sql = DbApiOrderSource(conn)
    for day in _days(summary):
        expected, _ = _extract(sql, day)
        got, rejected = _extract(source, day)
        assert got == expected, day
        assert rejected == []
    assert source.find_unplaceable(pytest.fail) == 0


def test_csv_orders_alone(tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,email,currency,total_price,created_at,paid_at\n"
        "A,a@example.com,EUR,5.00,2024-03-31T00:30:00+02:00,\n"
        "B,b@example.com,EUR,7.5,2024-03-30T23:30:00+02:00,2024-03-31T12:00:00Z\n",
        encoding="utf-8",
    )
    got, _ = _extract(OrderCsvSource(orders), date(2024, 3, 31))
    events = [orjson.loads(line) for line in got.splitlines()]
    assert [(e["properties"]["orderID"], e["eventName"]) for e in events] == [
        ("A", "placed order"),
        ("B", "paid for order"),
    ]
    assert events[0]["properties"]["totalPrice"] == 5
    assert events[0]["properties"]["lineItems"] == []


def test_csv_rows_without_their_parent_row_are_reported_store_wide(tmp_path: Path) -> None:
    """Issue 14, item 1, for CSV tables: a line of an order that does not exist (or of none) and a refund
    line of a missing refund are read by no partition; the store-wide sweep reports each with a code."""
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,email,currency,total_price,created_at\nA,a@example.com,EUR,5.00,2024-03-31T00:30:00Z\n",
        encoding="utf-8",
    )
    lines = tmp_path / "order_lines.csv"
    lines.write_text("order_id,line_number,price\nA,1,5.00\nZ,1,2.00\n,2,1.00\n", encoding="utf-8")
    refunds = tmp_path / "refunds.csv"
    refunds.write_text(
        "refund_id,order_id,created_at,amount\nR1,A,2024-04-01T10:00:00Z,5\n", encoding="utf-8"
    )
    refund_lines = tmp_path / "refund_lines.csv"
    refund_lines.write_text("refund_id,line_number,quantity\nR1,1,1\nR9,1,1\n", encoding="utf-8")
    found: list[Any] = []
    source = OrderCsvSource(orders, lines, refunds, refund_lines)
    assert source.find_unplaceable(found.append) == 3
    assert [(r.code, r.order_id, r.refund_id, r.line, r.value) for r in found] == [
        ("line_without_order", "Z", None, 3, "Z"),
        ("line_without_order", None, None, 4, None),
        ("refund_line_without_refund", None, "R9", 3, "R9"),
    ]
    assert "order_lines.csv line 3 names order 'Z', which does not exist" in found[0].reason


def test_csv_problems_are_reported(tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,created_at\nA,2024-03-31T00:00:00Z\n", encoding="utf-8")
    with pytest.raises(OmnisendInputError, match=r"orders\.csv has no column\(s\) currency"):
        OrderCsvSource(orders)
    with pytest.raises(OmnisendConfigError, match="does not exist"):
        OrderCsvSource(tmp_path / "missing.csv")
    with pytest.raises(OmnisendConfigError, match="refund_lines needs refunds"):
        OrderCsvSource(orders, refund_lines=orders)


def test_csv_in_another_encoding_names_the_file_and_the_fix(tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    rows = "".join(f"O{i},o{i}@example.com,EUR,5.00,2024-03-31T00:30:00+02:00,Jonas\n" for i in range(400))
    text = (
        "order_id,email,currency,total_price,created_at,first_name\n"
        + rows
        + "Z,z@example.com,EUR,1,2024-03-31T01:00:00+02:00,Žydrūnas\n"
    )
    orders.write_bytes(text.replace("ū", "u").encode("cp1252"))
    source = OrderCsvSource(orders)  # the header and the first rows decode: the bad byte comes later
    with pytest.raises(
        OmnisendInputError,
        match=r"orders\.csv is not utf-8-sig text: byte b'\\x8e' near line \d+ .*encoding='cp1252'",
    ):
        _extract(source, date(2024, 3, 31))
    got, _ = _extract(OrderCsvSource(orders, encoding="cp1252"), date(2024, 3, 31))
    names = {orjson.loads(line)["contact"].get("firstName") for line in got.splitlines()}
    assert names == {"Jonas", "Žydrunas"}
    small = tmp_path / "small.csv"
    small.write_bytes(
        "order_id,created_at,currency,first_name\nA,2024-03-31T00:00:00Z,EUR,Žana\n".encode("cp1252")
    )
    with pytest.raises(OmnisendInputError, match=r"small\.csv is not utf-8-sig text"):
        OrderCsvSource(small)


def test_csv_unplaceable_times(tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,email,currency,created_at,paid_at\n"
        "A,a@example.com,EUR,2024-03-31 10:00,\n"  # no offset: reported by 2024-03-31
        "B,b@example.com,EUR,sometime,\n"  # no date: the sweep
        "C,c@example.com,EUR,2024-03-31T10:00:00Z,2024-04-01T10:00:00.1234567Z\n",
        encoding="utf-8",
    )
    source = OrderCsvSource(orders)
    reported: list[dict[str, Any]] = []
    for day in (date(2024, 3, 30), date(2024, 3, 31), date(2024, 4, 1), date(2024, 4, 2)):
        got, rejected = _extract(source, day)
        reported += rejected
        if day == date(2024, 3, 31):
            assert [orjson.loads(line)["properties"]["orderID"] for line in got.splitlines()] == ["C"]
    assert [(r["orderID"], r["column"]) for r in reported] == [("A", "created_at"), ("C", "paid_at")]
    swept: list[RowRejection] = []
    assert source.find_unplaceable(swept.append) == 1
    assert (swept[0].order_id, swept[0].code, swept[0].line) == ("B", "no_date", 3)


def test_ndjson_events_are_passed_through_by_window(
    store: tuple[Path, SampleStoreSummary], tmp_path: Path
) -> None:
    path, summary = store
    sql = DbApiOrderSource(sqlite3.connect(path))
    per_day = {day: _extract(sql, day)[0] for day in _days(summary)}
    lines = [line for data in per_day.values() for line in data.splitlines()]
    random.Random(3).shuffle(lines)
    dirty = [
        b"not json",
        b"[1, 2]",
        b'{"eventName": "placed order", "eventTime": "yesterday", "properties": {"orderID": "X1"}}',
        b'{"eventName": "placed order", "eventTime": "2024-03-31 10:00:00", "properties": {"orderID": "X2"}}',
    ]
    events_file = tmp_path / "events.ndjson"
    events_file.write_bytes(b"\n".join(lines[:10] + dirty + lines[10:]) + b"\n")
    source = NdjsonEventSource(events_file)
    reported = []
    for day, expected in per_day.items():
        got, rejected = _extract(source, day)
        assert sorted(got.splitlines()) == sorted(expected.splitlines())
        reported += rejected
    assert [(r["orderID"], r["code"]) for r in reported] == [("X2", "unplaceable_time")]
    swept: list[RowRejection] = []
    assert source.find_unplaceable(swept.append) == 3
    assert [(r.line, r.code) for r in swept] == [(11, "bad_line"), (12, "bad_line"), (13, "no_date")]


def test_ndjson_events_without_window(tmp_path: Path) -> None:
    events_file = tmp_path / "events.ndjson"
    events_file.write_bytes(
        b'\xef\xbb\xbf{"eventName": "placed order", "eventTime": "1999-01-01T00:00:00Z"}\n\n'
        b"broken\n"
        b'{"eventName": "paid for order"}\n'
    )
    source = NdjsonEventSource(events_file, by_window=False)
    got, rejected = _extract(source, date(2024, 3, 31))
    assert [orjson.loads(line)["eventName"] for line in got.splitlines()] == [
        "placed order",
        "paid for order",
    ]
    assert [(r["line"], r["code"]) for r in rejected] == [(3, "bad_line")]
    assert source.find_unplaceable(pytest.fail) == 0


def test_ndjson_orders_with_bad_lines(tmp_path: Path) -> None:
    orders_file = tmp_path / "orders.ndjson"
    good = {
        "order_id": "A",
        "email": "a@example.com",
        "currency": "EUR",
        "created_at": "2024-03-31T08:00:00Z",
        "refunds": [{"refund_id": "R", "created_at": "never", "amount": 1, "lines": []}, "junk"],
        "lines": [{"line_number": 1, "product_id": "P", "title": "T", "quantity": 1, "unit_price": 1}],
    }
    orders_file.write_bytes(orjson.dumps(good) + b"\n{oops\n" + orjson.dumps({"order_id": "B"}) + b"\n")
    source = OrderNdjsonSource(orders_file)
    got, rejected = _extract(source, date(2024, 3, 31))
    assert [orjson.loads(line)["eventName"] for line in got.splitlines()] == ["placed order"]
    assert rejected == []
    swept: list[RowRejection] = []
    source.find_unplaceable(swept.append)
    assert sorted((r.line, r.order_id, r.event_name, r.code) for r in swept) == [
        (1, "A", "order refunded", "no_date"),
        (2, None, "", "bad_line"),
        (3, "B", "placed order", "no_date"),
    ]
    assert set(EVENT_NAMES) >= {r.event_name for r in swept if r.event_name}
