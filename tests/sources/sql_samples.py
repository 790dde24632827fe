"""Sample stores for the SQL source tests (helpers; the fixtures are in conftest.py)."""

from __future__ import annotations

import io
from collections import Counter
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.sources.extract import extract_partition
from airflow_omnisend.sources.sql import DbApiOrderSource, SqlQueries, iter_sql_events

if TYPE_CHECKING:
    from shops import Shop

    from airflow_omnisend.testing.sample_store import SampleStoreSummary

TZ = "America/New_York"
START = date(2024, 3, 8)  # five days across the 2024-03-10 DST change


def days_of(summary: SampleStoreSummary) -> list[date]:
    assert summary.first_event_day is not None
    assert summary.last_event_day is not None
    count = (summary.last_event_day - summary.first_event_day).days + 1
    return [summary.first_event_day + timedelta(days=i) for i in range(count)]


def extract_all(source: Any, summary: SampleStoreSummary) -> tuple[bytes, Counter[str]]:
    out = io.BytesIO()
    counts: Counter[str] = Counter()
    for day in days_of(summary):
        result = extract_partition(source, "demo", PartitionWindow.for_day(day, summary.timezone), out)
        counts.update(result.by_event_name)
        assert result.rows_rejected == 0
    return out.getvalue(), counts


ROW_PER_LINE_PAID = """
SELECT o.*, l.line_number, l.product_id, l.variant_id, l.sku, l.title, l.variant_title, l.vendor,
       l.category_id, l.category_title, l.quantity, l.unit_price, l.discount, l.product_url, l.image_url
FROM orders o LEFT JOIN order_lines l ON l.order_id = o.order_id
WHERE o.paid_at >= :scan_start AND o.paid_at < :scan_end
ORDER BY o.order_id, l.line_number
"""


def paid_events(conn: Any, day: date, queries: SqlQueries | None = None) -> list[dict[str, Any]]:
    window = PartitionWindow.for_day(day, TZ)
    return [
        e
        for e in iter_sql_events(conn, None, "demo", window, queries=queries)
        if e["eventName"] == "paid for order"
    ]


def fill_one(shop: Shop, order_id: str = "A", lines: int = 2) -> None:
    shop.insert(
        "orders",
        [
            {
                "order_id": order_id,
                "email": "a@example.com",
                "currency": "EUR",
                "subtotal_price": 5,
                "total_price": 5,
                "created_at": "2024-03-10T12:00:00Z",
                "paid_at": "2024-03-10T12:00:01Z",
            }
        ],
    )
    shop.insert(
        "order_lines",
        [
            {
                "order_id": order_id,
                "line_number": n,
                "product_id": f"P{n}",
                "title": "T",
                "quantity": 1,
                "unit_price": 1,
            }
            for n in range(1, lines + 1)
        ],
    )


def extract_days(conn: Any, summary: SampleStoreSummary, **source: Any) -> tuple[list[Any], list[Any]]:
    events, rejected = io.BytesIO(), io.BytesIO()
    for day in days_of(summary):
        window = PartitionWindow.for_day(day, summary.timezone)
        extract_partition(
            DbApiOrderSource(conn, **source), "demo", window, events, rows_rejected_out=rejected
        )
    return (
        [orjson.loads(line) for line in events.getvalue().splitlines()],
        [orjson.loads(line) for line in rejected.getvalue().splitlines()],
    )
