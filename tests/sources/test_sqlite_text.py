"""SQLite text that is not UTF-8: the order that holds it is rejected, the rest of the partition goes on."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from sql_samples import ROW_PER_LINE_PAID, START, TZ, extract_days, paid_events

from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.sources.sql import DbApiOrderSource, SqlQueries, iter_sql_events
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("fetch_size", [1, 2000])
def test_text_that_is_not_utf8_rejects_its_order_and_the_rest_go_on(tmp_path: Path, fetch_size: int) -> None:
    import sqlite3

    summary = build_sample_store(tmp_path / "shop.sqlite", 300, 9, timezone=TZ, start=START, days=3)
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    clean, _ = extract_days(conn, summary, fetch_size=fetch_size)
    ids = sorted({e["properties"]["orderID"] for e in clean})
    named, lined = ids[len(ids) // 3], ids[2 * len(ids) // 3]
    conn.execute("UPDATE orders SET first_name = CAST(x'4aff6f' AS TEXT) WHERE order_id = ?", (named,))
    conn.execute(
        "UPDATE order_lines SET title = CAST(x'c328' AS TEXT) WHERE order_id = ? AND line_number = 1",
        (lined,),
    )
    conn.commit()

    events, rejected = extract_days(conn, summary, fetch_size=fetch_size)

    assert events == [e for e in clean if e["properties"]["orderID"] not in (named, lined)]
    expected = Counter(
        (e["eventName"], e["properties"]["orderID"])
        for e in clean
        if e["properties"]["orderID"] in (named, lined)
    )
    assert Counter((r["eventName"], r["orderID"]) for r in rejected) == expected
    assert {r["code"] for r in rejected} == {"text_not_utf8"}
    assert {(r["orderID"], r["column"]) for r in rejected} == {(named, "first_name"), (lined, "lines_json")}
    assert all(
        "not UTF-8" in r["reason"] and "\\xff" in r["value"] for r in rejected if r["orderID"] == named
    )
    assert conn.text_factory is str  # the connection's own decoder is back


def test_text_that_is_not_utf8_on_a_later_line_drops_the_whole_order(tmp_path: Path) -> None:
    """One row per line: the order's first line arrived before the bad one; none of it is sent."""
    import sqlite3

    build_sample_store(tmp_path / "shop.sqlite", 300, 9, timezone=TZ, start=START, days=3)
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    custom = dataclasses.replace(SqlQueries.default("sqlite"), paid=ROW_PER_LINE_PAID)
    clean = paid_events(conn, START, custom)
    multi = [e["properties"]["orderID"] for e in clean if len(e["properties"]["lineItems"]) >= 2]
    bad = multi[len(multi) // 2]
    conn.execute(
        "UPDATE order_lines SET title = CAST(x'ff' AS TEXT) WHERE order_id = ? AND line_number = 2", (bad,)
    )
    conn.commit()
    rejected: list[Any] = []
    window = PartitionWindow.for_day(START, TZ)
    paid = [
        e
        for e in iter_sql_events(
            conn, None, "demo", window, queries=custom, reject=rejected.append, fetch_size=1
        )
        if e["eventName"] == "paid for order"
    ]
    assert paid == [e for e in clean if e["properties"]["orderID"] != bad]
    assert [
        (r.event_name, r.order_id, r.column, r.code) for r in rejected if r.event_name == "paid for order"
    ] == [("paid for order", bad, "title", "text_not_utf8")]


def test_an_event_time_that_is_not_utf8_is_reported_as_unplaceable(tmp_path: Path) -> None:
    import sqlite3

    summary = build_sample_store(tmp_path / "shop.sqlite", 200, 9, timezone=TZ, start=START, days=2)
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    clean, _ = extract_days(conn, summary)
    placed = next(e for e in clean if e["eventName"] == "placed order")
    order_id = placed["properties"]["orderID"]
    day = placed["eventTime"][:10]  # the widened prefilter still finds it by its date prefix
    conn.execute(
        "UPDATE orders SET created_at = ? || CAST(x'ff' AS TEXT) WHERE order_id = ?",
        (day + "T12:00:00", order_id),
    )
    conn.commit()
    _, rejected = extract_days(conn, summary)
    mine = [r for r in rejected if r["orderID"] == order_id and r["eventName"] == "placed order"]
    assert len(mine) == 1
    assert mine[0]["column"] == "created_at"
    assert mine[0]["value"] == day + "T12:00:00\\xff"


def test_the_sweep_reports_a_date_that_is_not_utf8(tmp_path: Path) -> None:
    import sqlite3

    build_sample_store(tmp_path / "shop.sqlite", 50, 9, timezone=TZ, start=START, days=1)
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    order_id = conn.execute("SELECT min(order_id) FROM orders").fetchone()[0]
    conn.execute("UPDATE orders SET created_at = CAST(x'ff' AS TEXT) WHERE order_id = ?", (order_id,))
    conn.commit()
    found: list[Any] = []
    DbApiOrderSource(conn).find_unplaceable(found.append)
    assert [(r.order_id, r.column, r.code, r.to_dict()["value"]) for r in found] == [
        (order_id, "created_at", "no_date", "\\xff")
    ]
    assert conn.text_factory is str
