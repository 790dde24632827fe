"""The SQL source end to end: sample stores, both databases, custom queries, Airflow connections."""

from __future__ import annotations

import dataclasses
import io
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from shops import Shop, pg_connect

from airflow_omnisend.events.mapping import LIFECYCLE_RANK
from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.events.validation import EventValidator
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.sources.extract import extract_partition
from airflow_omnisend.sources.sql import (
    DbApiOrderSource,
    SqlOrderSource,
    SqlQueries,
    bind,
    check_queries,
    iter_sql_events,
    window_parameters,
)
from airflow_omnisend.testing.sample_store import SampleStoreSummary, build_sample_store

if TYPE_CHECKING:
    from pathlib import Path

TZ = "America/New_York"
START = date(2024, 3, 8)  # five days across the 2024-03-10 DST change


def _days(summary: SampleStoreSummary) -> list[date]:
    assert summary.first_event_day is not None
    assert summary.last_event_day is not None
    count = (summary.last_event_day - summary.first_event_day).days + 1
    return [summary.first_event_day + timedelta(days=i) for i in range(count)]


def _extract_all(source: Any, summary: SampleStoreSummary) -> tuple[bytes, Counter[str]]:
    out = io.BytesIO()
    counts: Counter[str] = Counter()
    for day in _days(summary):
        result = extract_partition(source, "demo", PartitionWindow.for_day(day, summary.timezone), out)
        counts.update(result.by_event_name)
        assert result.rows_rejected == 0
    return out.getvalue(), counts


def _dirty_orders(conn: Any) -> set[str]:
    cur = conn.cursor()
    cur.execute(
        "SELECT order_id FROM orders"
        " WHERE (email IS NULL AND phone IS NULL) OR currency NOT IN ('EUR', 'USD')"
        " UNION SELECT order_id FROM order_lines WHERE unit_price < 0"
    )
    found = {row[0] for row in cur.fetchall()}
    cur.close()
    return found


def _check_store(source: Any, conn: Any, summary: SampleStoreSummary) -> bytes:
    data, counts = _extract_all(source, summary)
    assert dict(counts) == summary.events
    events = [orjson.loads(line) for line in data.splitlines()]
    assert len(events) == summary.total_events
    assert len({e["eventID"] for e in events}) == len(events)
    validator = EventValidator(now=datetime(2030, 1, 1, tzinfo=UTC))
    rejected = {e["properties"]["orderID"] for e in events if validator.check(e).errors}
    assert rejected == _dirty_orders(conn)
    return data


def test_sample_store_sqlite_every_event_once_and_only_dirt_rejected(tmp_path: Path) -> None:
    summary = build_sample_store(tmp_path / "shop.sqlite", 400, 11, timezone=TZ, start=START, days=5)
    import sqlite3

    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    _check_store(DbApiOrderSource(conn), conn, summary)


@pytest.mark.postgres
def test_postgres_and_sqlite_give_the_same_bytes(tmp_path: Path, pg_schema: tuple[Any, str]) -> None:
    import sqlite3

    conn, _schema = pg_schema
    pg_summary = build_sample_store(conn, 400, 11, timezone=TZ, start=START, days=5, dialect="postgres")
    lite_summary = build_sample_store(tmp_path / "shop.sqlite", 400, 11, timezone=TZ, start=START, days=5)
    assert pg_summary.events == lite_summary.events
    pg_data = _check_store(DbApiOrderSource(conn, fetch_size=7), conn, pg_summary)
    lite = sqlite3.connect(tmp_path / "shop.sqlite")
    assert pg_data == _extract_all(DbApiOrderSource(lite), lite_summary)[0]


def test_events_of_an_order_come_together_in_lifecycle_order(tmp_path: Path) -> None:
    import sqlite3

    summary = build_sample_store(tmp_path / "shop.sqlite", 300, 5, timezone=TZ, start=START, days=3)
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    for day in _days(summary):
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
    assert _extract_all(DbApiOrderSource(conn, fetch_size=1), summary) == _extract_all(
        DbApiOrderSource(conn), summary
    )


# -- custom queries ---------------------------------------------------------------------------------------

ROW_PER_LINE_PAID = """
SELECT o.*, l.line_number, l.product_id, l.variant_id, l.sku, l.title, l.variant_title, l.vendor,
       l.category_id, l.category_title, l.quantity, l.unit_price, l.discount, l.product_url, l.image_url
FROM orders o LEFT JOIN order_lines l ON l.order_id = o.order_id
WHERE o.paid_at >= :scan_start AND o.paid_at < :scan_end
ORDER BY o.order_id, l.line_number
"""


def _paid_events(conn: Any, day: date, queries: SqlQueries | None = None) -> list[dict[str, Any]]:
    window = PartitionWindow.for_day(day, TZ)
    return [
        e
        for e in iter_sql_events(conn, None, "demo", window, queries=queries)
        if e["eventName"] == "paid for order"
    ]


def test_custom_row_per_line_query_gives_the_same_events(tmp_path: Path) -> None:
    import sqlite3

    build_sample_store(tmp_path / "shop.sqlite", 300, 9, timezone=TZ, start=START, days=3)
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    custom = dataclasses.replace(SqlQueries.default("sqlite"), paid=ROW_PER_LINE_PAID)
    for day in (START, START + timedelta(days=2)):
        default = _paid_events(conn, day)
        assert default
        assert _paid_events(conn, day, custom) == default


def test_custom_query_with_lines_as_json_objects(sqlite_shop: Shop) -> None:
    sqlite_shop.insert(
        "orders",
        [
            {
                "order_id": "A",
                "email": "a@example.com",
                "currency": "EUR",
                "subtotal_price": 5,
                "total_price": 5,
                "created_at": "2024-03-10T12:00:00Z",
            }
        ],
    )
    query = (
        "SELECT order_id, email, phone, currency, total_price, created_at, paid_at, fulfilled_at,"
        " canceled_at, json_array(json_object('product_id', 'P9', 'title', 'Thing', 'quantity', 2,"
        " 'unit_price', 2.5)) AS lines_json FROM orders"
        " WHERE created_at >= :scan_start AND created_at < :scan_end ORDER BY order_id"
    )
    queries = dataclasses.replace(SqlQueries.default("sqlite"), placed=query)
    [event] = list(
        iter_sql_events(
            sqlite_shop.conn, "sqlite", "s", PartitionWindow.for_day("2024-03-10", "UTC"), queries=queries
        )
    )
    assert event["properties"]["lineItems"] == [
        {"productID": "P9", "productTitle": "Thing", "productPrice": 2.5, "productQuantity": 2}
    ]


def test_missing_columns_are_named(sqlite_shop: Shop) -> None:
    bad = "SELECT order_id, created_at, paid_at FROM orders WHERE created_at >= :scan_start ORDER BY order_id"
    queries = dataclasses.replace(SqlQueries.default("sqlite"), placed=bad)
    with pytest.raises(
        OmnisendConfigError, match="'placed' query does not return the required column"
    ) as info:
        check_queries(sqlite_shop.conn, "sqlite", queries)
    for column in ("email", "phone", "currency", "total_price", "fulfilled_at", "canceled_at", "line_number"):
        assert column in str(info.value)
    # the same check happens when extracting, before anything is written
    _fill_one(sqlite_shop)
    out = io.BytesIO()
    with pytest.raises(OmnisendConfigError, match="currency"):
        extract_partition(
            DbApiOrderSource(sqlite_shop.conn, queries=queries),
            "s",
            PartitionWindow.for_day("2024-03-10", "UTC"),
            out,
        )
    assert out.getvalue() == b""


def test_refunded_query_needs_its_refund_columns(sqlite_shop: Shop) -> None:
    default = SqlQueries.default("sqlite")
    bad = default.refunded.replace("r.refund_id,", "").replace("r.created_at AS refund_created_at,", "")
    with pytest.raises(OmnisendConfigError, match="refund_id, refund_created_at"):
        check_queries(sqlite_shop.conn, "sqlite", dataclasses.replace(default, refunded=bad))


def test_default_queries_pass_their_own_check(shop: Shop) -> None:
    DbApiOrderSource(shop.conn).check_queries()


def test_a_failing_query_says_which(sqlite_shop: Shop) -> None:
    queries = dataclasses.replace(SqlQueries.default("sqlite"), canceled="SELECT * FROM no_such_table")
    with pytest.raises(OmnisendConfigError, match=r"'canceled' query failed.*no_such_table"):
        check_queries(sqlite_shop.conn, "sqlite", queries)


def _fill_one(shop: Shop, order_id: str = "A", lines: int = 2) -> None:
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


def test_rows_of_one_order_apart_are_an_error(sqlite_shop: Shop) -> None:
    _fill_one(sqlite_shop, "A")
    _fill_one(sqlite_shop, "B")
    apart = ROW_PER_LINE_PAID.replace(
        "ORDER BY o.order_id, l.line_number", "ORDER BY l.line_number, o.order_id"
    )
    queries = dataclasses.replace(SqlQueries.default("sqlite"), paid=apart)
    with pytest.raises(OmnisendInputError, match="rows of order 'A' apart"):
        list(
            iter_sql_events(
                sqlite_shop.conn, "sqlite", "s", PartitionWindow.for_day("2024-03-10", "UTC"), queries=queries
            )
        )


def test_every_parameter_can_be_used(shop: Shop) -> None:
    _fill_one(shop)
    cast = "::timestamptz" if shop.dialect == "postgres" else ""
    time_test = (
        "o.created_at >= :start AND o.created_at < :end"
        if shop.dialect == "postgres"
        else "julianday(o.created_at) >= :julian_start AND julianday(o.created_at) < :julian_end"
    )
    query = (
        "SELECT o.order_id, o.email, o.phone, o.currency, o.total_price, o.created_at, o.paid_at,"
        " o.fulfilled_at, o.canceled_at, NULL AS lines_json,"
        f" :day AS d1, :next_day AS d2, :scan_start AS d3, :scan_end AS d4, '100%' AS pct, :start{cast} AS s"
        f" FROM orders o WHERE {time_test} ORDER BY o.order_id"
    )
    queries = dataclasses.replace(SqlQueries.default(shop.dialect), placed=query)
    events = list(
        iter_sql_events(
            shop.conn, shop.dialect, "s", PartitionWindow.for_day("2024-03-10", "UTC"), queries=queries
        )
    )
    assert [e["eventName"] for e in events] == ["placed order", "paid for order"]


def test_bind_rewrites_parameters_for_each_paramstyle() -> None:
    params = {"start": "S", "end": "E", "day": "D"}
    query = "SELECT x::text, '50%' FROM t WHERE a >= :start AND b < :end AND c = :day AND d = :start"
    query += " AND e = :other"
    assert bind(query, params, "named") == (query, {"start": "S", "end": "E", "day": "D"})
    sql, args = bind(query, params, "qmark")
    assert sql.count("?") == 4
    assert "::text" in sql
    assert ":other" in sql
    assert args == ["S", "E", "D", "S"]
    sql, args = bind(query, params, "pyformat")
    assert "%(start)s" in sql
    assert "'50%%'" in sql
    assert args == {"start": "S", "end": "E", "day": "D"}
    sql, args = bind(query, params, "format")
    assert sql.count("%s") == 4
    assert args == ["S", "E", "D", "S"]
    sql, args = bind(query, params, "numeric")
    assert ":1" in sql
    assert ":4" in sql
    assert args == ["S", "E", "D", "S"]
    with pytest.raises(OmnisendConfigError, match="paramstyle"):
        bind(query, params, "dollar")


def test_window_parameters() -> None:
    window = PartitionWindow.for_day("2024-03-10", TZ)
    lite = window_parameters(window, "sqlite")
    assert lite["start"] == "2024-03-10T05:00:00Z"
    assert lite["end"] == "2024-03-11T04:00:00Z"
    assert (lite["scan_start"], lite["scan_end"]) == ("2024-03-09", "2024-03-13")
    assert (lite["day"], lite["next_day"]) == ("2024-03-10", "2024-03-11")
    assert lite["julian_start"] < 2460379.7083333 < lite["julian_end"]
    pg = window_parameters(window, "postgres")
    assert pg["start"] == window.start_utc
    assert pg["end"] == window.end_utc


def test_query_configuration_errors() -> None:
    with pytest.raises(OmnisendConfigError, match=r"SqlQueries\.paid must be a non-empty SQL string"):
        dataclasses.replace(SqlQueries.default("sqlite"), paid=" ")
    with pytest.raises(OmnisendConfigError, match="no default queries for dialect 'mysql'"):
        SqlQueries.default("mysql")
    with pytest.raises(OmnisendConfigError, match="generic"):
        DbApiOrderSource(object(), dialect="generic")
    with pytest.raises(OmnisendConfigError, match="dialect must be one of"):
        DbApiOrderSource(object(), dialect="oracle")
    with pytest.raises(OmnisendConfigError, match="fetch_size"):
        DbApiOrderSource(object(), fetch_size=0)
    with pytest.raises(OmnisendConfigError, match="conn_id"):
        SqlOrderSource("")


# -- through Airflow connections ----------------------------------------------------------------------------


def test_sql_order_source_through_an_airflow_sqlite_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = build_sample_store(tmp_path / "shop.sqlite", 150, 2, timezone=TZ, start=START, days=2)
    connection = {"conn_type": "sqlite", "host": str(tmp_path / "shop.sqlite")}
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_TEST_SHOP", json.dumps(connection))
    source = SqlOrderSource("omnisend_test_shop")
    source.check_queries()
    data, counts = _extract_all(source, summary)
    assert dict(counts) == summary.events
    import sqlite3

    assert data == _extract_all(DbApiOrderSource(sqlite3.connect(tmp_path / "shop.sqlite")), summary)[0]


@pytest.mark.postgres
def test_sql_order_source_through_an_airflow_postgres_connection(
    pg_schema: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn, schema = pg_schema
    summary = build_sample_store(conn, 150, 2, timezone=TZ, start=START, days=2, dialect="postgres")
    connection = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": 5432,
        "login": "postgres",
        "schema": "test",
        # a dict cursor on the connection must not change what the source reads
        "extra": {"options": f"-c search_path={schema}", "cursor": "dictcursor"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_TEST_PG", json.dumps(connection))
    source = SqlOrderSource("omnisend_test_pg")
    data, counts = _extract_all(source, summary)
    assert dict(counts) == summary.events
    assert data == _extract_all(DbApiOrderSource(pg_connect_in(schema)), summary)[0]


def pg_connect_in(schema: str) -> Any:
    conn = pg_connect()
    conn.execute(f"SET search_path TO {schema}")
    conn.commit()
    return conn


@pytest.mark.postgres
def test_psycopg2_connections_read_the_same(pg_schema: tuple[Any, str]) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    conn, schema = pg_schema
    summary = build_sample_store(conn, 120, 4, timezone=TZ, start=START, days=2, dialect="postgres")
    legacy = psycopg2.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname="test", options=f"-c search_path={schema}"
    )
    try:
        assert _extract_all(DbApiOrderSource(legacy, fetch_size=5), summary) == _extract_all(
            DbApiOrderSource(conn), summary
        )
    finally:
        legacy.close()


@pytest.mark.postgres
def test_postgres_times_without_offset_are_rejected_where_returned(pg_shop: Shop) -> None:
    _fill_one(pg_shop)
    naive = SqlQueries.default("postgres").placed.replace(
        "CASE WHEN isfinite(o.created_at) THEN o.created_at END AS created_at",
        "(o.created_at AT TIME ZONE 'UTC') AS created_at",
    )
    queries = dataclasses.replace(SqlQueries.default("postgres"), placed=naive)
    rejected: list[Any] = []
    window = PartitionWindow.for_day("2024-03-10", "UTC")
    events = list(
        iter_sql_events(pg_shop.conn, "postgres", "s", window, queries=queries, reject=rejected.append)
    )
    assert [e["eventName"] for e in events] == ["paid for order"]
    assert [(r.order_id, r.event_name, r.column) for r in rejected] == [("A", "placed order", "created_at")]
    assert "no UTC offset" in rejected[0].reason


# -- text that is not UTF-8 -------------------------------------------------------------------------------


def _extract_days(conn: Any, summary: SampleStoreSummary, **source: Any) -> tuple[list[Any], list[Any]]:
    events, rejected = io.BytesIO(), io.BytesIO()
    for day in _days(summary):
        window = PartitionWindow.for_day(day, summary.timezone)
        extract_partition(
            DbApiOrderSource(conn, **source), "demo", window, events, rows_rejected_out=rejected
        )
    return (
        [orjson.loads(line) for line in events.getvalue().splitlines()],
        [orjson.loads(line) for line in rejected.getvalue().splitlines()],
    )


@pytest.mark.parametrize("fetch_size", [1, 2000])
def test_text_that_is_not_utf8_rejects_its_order_and_the_rest_go_on(tmp_path: Path, fetch_size: int) -> None:
    import sqlite3

    summary = build_sample_store(tmp_path / "shop.sqlite", 300, 9, timezone=TZ, start=START, days=3)
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    clean, _ = _extract_days(conn, summary, fetch_size=fetch_size)
    ids = sorted({e["properties"]["orderID"] for e in clean})
    named, lined = ids[len(ids) // 3], ids[2 * len(ids) // 3]
    conn.execute("UPDATE orders SET first_name = CAST(x'4aff6f' AS TEXT) WHERE order_id = ?", (named,))
    conn.execute(
        "UPDATE order_lines SET title = CAST(x'c328' AS TEXT) WHERE order_id = ? AND line_number = 1",
        (lined,),
    )
    conn.commit()

    events, rejected = _extract_days(conn, summary, fetch_size=fetch_size)

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
    clean = _paid_events(conn, START, custom)
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
    clean, _ = _extract_days(conn, summary)
    placed = next(e for e in clean if e["eventName"] == "placed order")
    order_id = placed["properties"]["orderID"]
    day = placed["eventTime"][:10]  # the widened prefilter still finds it by its date prefix
    conn.execute(
        "UPDATE orders SET created_at = ? || CAST(x'ff' AS TEXT) WHERE order_id = ?",
        (day + "T12:00:00", order_id),
    )
    conn.commit()
    _, rejected = _extract_days(conn, summary)
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
