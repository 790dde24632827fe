"""Partition boundaries through the SQL source, on SQLite (ISO text, any offset) and PostgreSQL (timestamptz).

Every event kind is placed at instants on and around local midnight of DST days, written with different
offsets; each must land in exactly the store-local day that contains it, and across consecutive days
every event must come out exactly once.
"""

from __future__ import annotations

import io
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.partition import PartitionWindow, load_timezone
from airflow_omnisend.events.timefmt import format_event_time
from airflow_omnisend.sources.extract import extract_partition
from airflow_omnisend.sources.sql import DbApiOrderSource

if TYPE_CHECKING:
    from shops import Shop

US = timedelta(microseconds=1)
DST_DAYS = [
    ("America/New_York", "2024-03-10"),  # 23 hours
    ("America/New_York", "2024-11-03"),  # 25 hours
    ("Europe/Vilnius", "2024-03-31"),  # 23 hours
    ("Europe/Vilnius", "2024-10-27"),  # 25 hours
]


def _texts(instant: datetime, tz: str) -> list[str]:
    """The same instant as ISO text with three different offsets."""
    local = instant.astimezone(load_timezone(tz))
    far = instant.astimezone(
        timezone(timedelta(hours=-11) if local.utcoffset() > timedelta(0) else timedelta(hours=9))
    )
    return [instant.astimezone(UTC).isoformat().replace("+00:00", "Z"), local.isoformat(), far.isoformat()]


def _fill(shop: Shop, times: list[str], *, prefix: str = "O") -> list[tuple[str, str]]:
    """One order per time, with every lifecycle step and one refund at that time; returns (order_id, time)."""
    orders, lines, refunds, refund_lines, made = [], [], [], [], []
    for i, text in enumerate(times):
        order_id = f"{prefix}{i:04d}"
        made.append((order_id, text))
        orders.append(
            {
                "order_id": order_id,
                "order_number": i + 1,
                "email": f"buyer{i}@example.com",
                "currency": "EUR",
                "subtotal_price": "10.00",
                "total_price": "10.00",
                "created_at": text,
                "paid_at": text,
                "fulfilled_at": text,
                "canceled_at": text,
                "cancel_reason": "test",
            }
        )
        lines.append(
            {
                "order_id": order_id,
                "line_number": 1,
                "product_id": "P1",
                "title": "Item",
                "quantity": 1,
                "unit_price": "10.00",
            }
        )
        refunds.append(
            {"refund_id": f"R{order_id}", "order_id": order_id, "created_at": text, "amount": "10.00"}
        )
        refund_lines.append({"refund_id": f"R{order_id}", "line_number": 1, "quantity": 1, "amount": "10.00"})
    shop.insert("orders", orders)
    shop.insert("order_lines", lines)
    shop.insert("refunds", refunds)
    shop.insert("refund_lines", refund_lines)
    return made


def _extract(shop: Shop, day: date | str, tz: str, **kwargs: Any) -> tuple[list[dict[str, Any]], Any]:
    out, rejected = io.BytesIO(), io.BytesIO()
    summary = extract_partition(
        DbApiOrderSource(shop.conn, **kwargs),
        "shop",
        PartitionWindow.for_day(day, tz),
        out,
        rows_rejected_out=rejected,
    )
    events = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert summary.events == len(events)
    summary.rejected_lines = [orjson.loads(line) for line in rejected.getvalue().splitlines()]
    return events, summary


@pytest.mark.parametrize(("tz", "day"), DST_DAYS)
def test_events_at_and_around_local_midnight_land_in_their_day(shop: Shop, tz: str, day: str) -> None:
    window = PartitionWindow.for_day(day, tz)
    instants = [
        window.start_utc,  # local midnight: the new day
        window.start_utc - US,  # a microsecond before: the old day
        window.end_utc - US,  # last microsecond of the day
        window.end_utc,  # next local midnight: the next day
        window.start_utc + timedelta(hours=2, minutes=30),  # inside, around the DST change
        window.start_utc + timedelta(hours=1, minutes=30, microseconds=123000),
    ]
    times = [text for instant in instants for text in _texts(instant, tz)]
    made = _fill(shop, times)
    tzinfo = load_timezone(tz)
    expected: dict[date, set[tuple[str, str]]] = {}
    for order_id, text in made:
        instant = datetime.fromisoformat(text)
        for name in EVENT_NAMES:
            expected.setdefault(instant.astimezone(tzinfo).date(), set()).add((order_id, name))
    days = [window.day + timedelta(days=d) for d in (-1, 0, 1)]
    assert set(expected) == set(days)
    for d in days:
        events, summary = _extract(shop, d, tz)
        assert {(e["properties"]["orderID"], e["eventName"]) for e in events} == expected[d], d
        assert summary.rows_rejected == 0
        for event in events:
            text = dict(made)[event["properties"]["orderID"]]
            assert event["eventTime"] == format_event_time(datetime.fromisoformat(text))


@pytest.mark.parametrize(("tz", "day"), DST_DAYS)
def test_every_event_once_across_consecutive_days(shop: Shop, tz: str, day: str) -> None:
    """Random instants (any offset, any precision) over five days around a DST change."""
    rng = random.Random(f"{tz}{day}")
    center = PartitionWindow.for_day(day, tz)
    first = center.day - timedelta(days=2)
    start = PartitionWindow.for_day(first, tz).start_utc
    span = int((PartitionWindow.for_day(first + timedelta(days=4), tz).end_utc - start) / US)
    times = []
    for _ in range(150):
        instant = start + timedelta(microseconds=rng.randrange(span))
        if rng.random() < 0.3:
            instant = instant.replace(microsecond=0)
        offset = timezone(timedelta(minutes=15 * rng.randrange(-12 * 4, 14 * 4 + 1)))
        times.append(instant.astimezone(rng.choice([UTC, offset, load_timezone(tz)])).isoformat())
    made = _fill(shop, times)
    seen: Counter[tuple[str, str]] = Counter()
    for d in range(5):
        events, summary = _extract(shop, first + timedelta(days=d), tz)
        window = PartitionWindow.for_day(first + timedelta(days=d), tz)
        assert summary.rows_rejected == 0
        for event in events:
            seen[(event["properties"]["orderID"], event["eventName"])] += 1
            assert window.contains(datetime.fromisoformat(event["eventTime"]))
    assert len(seen) == len(made) * len(EVENT_NAMES)
    assert set(seen.values()) == {1}


def test_unparseable_times_are_reported_once_by_the_day_they_start_with(sqlite_shop: Shop) -> None:
    tz = "America/New_York"
    _fill(sqlite_shop, ["2024-03-10T12:00:00-04:00"], prefix="OK")
    # naive: SQLite would read it as UTC (= 2024-03-09 21:00 in New York); it is reported by 2024-03-10
    _fill(sqlite_shop, ["2024-03-10T02:00:00"], prefix="NAIVE")
    # a real-looking time that is not a real time, and one with too many fraction digits
    _fill(sqlite_shop, ["2024-03-10T24:00:00Z", "2024-03-11T10:00:00.1234567Z"], prefix="BAD")
    reported: Counter[tuple[str, str]] = Counter()
    by_day: dict[str, int] = {}
    for d in ("2024-03-09", "2024-03-10", "2024-03-11", "2024-03-12"):
        events, summary = _extract(sqlite_shop, d, tz)
        by_day[d] = len(events)
        for row in summary.rejected_lines:
            reported[(row["orderID"], row["eventName"])] += 1
            assert row["code"] == "unplaceable_time"
            assert row["value"].startswith(d)
            assert row["reason"]
    assert set(reported.values()) == {1}
    assert {order for order, _name in reported} == {"NAIVE0000", "BAD0000", "BAD0001"}
    assert len(reported) == 3 * len(EVENT_NAMES)
    assert by_day == {"2024-03-09": 0, "2024-03-10": 5, "2024-03-11": 0, "2024-03-12": 0}


def test_a_naive_time_is_named_in_the_rejection(sqlite_shop: Shop) -> None:
    _fill(sqlite_shop, ["2024-03-10 02:00:00"], prefix="NAIVE")
    _events, summary = _extract(sqlite_shop, "2024-03-10", "UTC")
    assert summary.rows_rejected == len(EVENT_NAMES)
    assert summary.rows_rejected_by_code == {"unplaceable_time": 5}
    first = summary.rejected_lines[0]
    assert first["orderID"] == "NAIVE0000"
    assert "no UTC offset" in first["reason"]
    refund = next(r for r in summary.rejected_lines if r["eventName"] == "order refunded")
    assert refund["refundID"] == "RNAIVE0000"
    assert refund["column"] == "refund_created_at"


def test_sweep_finds_times_without_a_date(sqlite_shop: Shop) -> None:
    _fill(sqlite_shop, ["2024-03-10T12:00:00Z", "yesterday", "2024-02-30T10:00:00Z"], prefix="S")
    sqlite_shop.execute("UPDATE orders SET paid_at = 1710000000 WHERE order_id = 'S0000'")
    found: list[Any] = []
    source = DbApiOrderSource(sqlite_shop.conn)
    assert source.find_unplaceable(found.append) == len(found)
    got = {(r.order_id, r.event_name, r.column) for r in found}
    assert ("S0000", "paid for order", "paid_at") in got
    assert {(o, n) for o, n, _c in got if o != "S0000"} == {
        (o, n) for o in ("S0001", "S0002") for n in EVENT_NAMES
    }
    assert all(r.code == "no_date" for r in found)
    # and no partition reports them
    for d in ("2024-02-29", "2024-03-01", "2024-03-10"):
        _events, summary = _extract(sqlite_shop, d, "UTC")
        assert summary.rows_rejected == 0


@pytest.mark.postgres
def test_postgres_infinity_is_no_event_and_the_sweep_reports_it(pg_shop: Shop) -> None:
    _fill(pg_shop, ["2024-03-10T12:00:00Z", "2024-03-10T13:00:00Z"], prefix="P")
    pg_shop.execute("UPDATE orders SET paid_at = 'infinity' WHERE order_id = 'P0000'")
    pg_shop.execute("UPDATE orders SET created_at = '-infinity' WHERE order_id = 'P0001'")
    events, summary = _extract(pg_shop, "2024-03-10", "UTC")
    names = Counter((e["properties"]["orderID"], e["eventName"]) for e in events)
    assert ("P0000", "paid for order") not in names
    assert ("P0000", "placed order") in names
    assert ("P0001", "placed order") not in names
    placed = next(
        e for e in events if e["properties"]["orderID"] == "P0000" and e["eventName"] == "placed order"
    )
    assert (
        placed["properties"]["paymentStatus"] == "voided"
    )  # never paid (infinity), canceled at that instant
    found: list[Any] = []
    DbApiOrderSource(pg_shop.conn).find_unplaceable(found.append)
    assert {(r.order_id, r.column) for r in found} == {("P0000", "paid_at"), ("P0001", "created_at")}
    assert summary.rows_rejected == 0
