"""The SQL source's event stream: an order's events together, in lifecycle order, whatever the fetch size."""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime
from typing import TYPE_CHECKING

import orjson
import pytest
from sql_samples import ROW_PER_LINE_PAID, START, TZ, days_of, extract_all, fill_one

from airflow_omnisend.events.names import LIFECYCLE_RANK
from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.sources.extract import extract_partition
from airflow_omnisend.sources.sql import DbApiOrderSource, SqlQueries, iter_sql_events
from airflow_omnisend.sources.sql_stream import order_sort_key
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from pathlib import Path

    from shops import Shop


def test_events_of_an_order_come_together_in_lifecycle_order(tmp_path: Path) -> None:
    import sqlite3

    summary = build_sample_store(tmp_path / "shop.sqlite", 300, 5, timezone=TZ, start=START, days=3)
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    for day in days_of(summary):
        out = io.BytesIO()
        extract_partition(DbApiOrderSource(conn), "demo", PartitionWindow.for_day(day, TZ), out)
        events = [orjson.loads(line) for line in out.getvalue().splitlines()]
        order_ids = [e["properties"]["orderID"] for e in events]
        runs = [oid for i, oid in enumerate(order_ids) if i == 0 or order_ids[i - 1] != oid]
        assert len(runs) == len(set(order_ids)), "an order's events are split"
        assert order_ids == sorted(order_ids)
        for oid in set(order_ids):
            mine = [e for e in events if e["properties"]["orderID"] == oid]
            keys = [(datetime.fromisoformat(e["eventTime"]), LIFECYCLE_RANK[e["eventName"]]) for e in mine]
            assert keys == sorted(keys)


def test_small_fetches_stream_the_same_events(tmp_path: Path) -> None:
    import sqlite3

    summary = build_sample_store(tmp_path / "shop.sqlite", 200, 3, timezone=TZ, start=START, days=2)
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    assert extract_all(DbApiOrderSource(conn, fetch_size=1), summary) == extract_all(
        DbApiOrderSource(conn), summary
    )


def test_rows_of_one_order_apart_are_a_query_error(sqlite_shop: Shop) -> None:
    """A configuration error (not retried): the query must ORDER BY; never two half events."""
    fill_one(sqlite_shop, "A")
    fill_one(sqlite_shop, "B")
    apart = ROW_PER_LINE_PAID.replace(
        "ORDER BY o.order_id, l.line_number", "ORDER BY l.line_number, o.order_id"
    )
    queries = dataclasses.replace(SqlQueries.default("sqlite"), paid=apart)
    with pytest.raises(OmnisendConfigError, match="rows of order 'A' apart"):
        list(
            iter_sql_events(
                sqlite_shop.conn, "sqlite", "s", PartitionWindow.for_day("2024-03-10", "UTC"), queries=queries
            )
        )


def test_order_sort_key_puts_ints_before_text_like_sqlite() -> None:
    # ints by value, then the rest by their text (None as ""), as the queries' ORDER BY returns them
    assert sorted(["B", 10, None, "A", 2, 3.5], key=order_sort_key) == [2, 10, None, 3.5, "A", "B"]


def _orders_without_primary_key(shop: Shop) -> None:
    if shop.dialect == "postgres":
        shop.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey CASCADE")
        return
    shop.execute("ALTER TABLE orders RENAME TO orders_pk")
    shop.execute("CREATE TABLE orders AS SELECT * FROM orders_pk WHERE 0")


def test_a_duplicate_order_id_becomes_rejected_rows_and_the_day_goes_on(shop: Shop) -> None:
    """Issue 14, item 8: two different orders with one order_id; the first is kept, the other is one
    rows_rejected line per event kind with a code, and the other orders of the day are extracted."""
    _orders_without_primary_key(shop)
    base = {
        "email": "a@example.com",
        "currency": "EUR",
        "subtotal_price": 5,
        "created_at": "2024-03-10T12:00:00Z",
    }
    shop.insert(
        "orders",
        [
            {"order_id": "A", **base, "total_price": 5, "paid_at": None},
            {"order_id": "A", **base, "total_price": 7, "paid_at": "2024-03-10T13:00:00Z"},
            {"order_id": "B", **base, "total_price": 5, "paid_at": None},
        ],
    )
    out, rejected = io.BytesIO(), io.BytesIO()
    summary = extract_partition(
        DbApiOrderSource(shop.conn), "s", PartitionWindow.for_day("2024-03-10", "UTC"), out,
        rows_rejected_out=rejected,
    )  # fmt: skip
    events = [
        (e["eventName"], e["properties"]["orderID"]) for e in map(orjson.loads, out.getvalue().splitlines())
    ]
    assert events.count(("placed order", "A")) == 1  # the first of the two is kept ...
    assert ("placed order", "B") in events  # ... and the day goes on
    rows = [orjson.loads(line) for line in rejected.getvalue().splitlines()]
    assert "placed order" in {r["eventName"] for r in rows}  # ... the other is reported, with a code
    assert set(summary.rows_rejected_by_code) == {"duplicate_order_id"}
    assert all(r["orderID"] == "A" and "make order_id unique" in r["reason"] for r in rows)
