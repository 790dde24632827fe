"""The SQL source end to end: sample stores, both databases, custom queries, Airflow connections."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from shops import Shop, pg_connect
from sql_samples import ROW_PER_LINE_PAID, START, TZ, extract_all, fill_one, paid_events

from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.events.validation import EventValidator
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.sources.extract import extract_partition
from airflow_omnisend.sources.sql import (
    DbApiOrderSource,
    SqlOrderSource,
    SqlQueries,
    check_queries,
    iter_sql_events,
)
from airflow_omnisend.sources.sql_queries import KINDS, REQUIRED_ORDER_COLUMNS, REQUIRED_REFUND_COLUMNS
from airflow_omnisend.sources.sql_rows import RowLayout
from airflow_omnisend.testing.sample_store import SampleStoreSummary, build_sample_store

if TYPE_CHECKING:
    from pathlib import Path


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
    data, counts = extract_all(source, summary)
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
    assert pg_data == extract_all(DbApiOrderSource(lite), lite_summary)[0]


# -- custom queries ---------------------------------------------------------------------------------------


def test_custom_row_per_line_query_gives_the_same_events(tmp_path: Path) -> None:
    import sqlite3

    build_sample_store(tmp_path / "shop.sqlite", 300, 9, timezone=TZ, start=START, days=3)
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    custom = dataclasses.replace(SqlQueries.default("sqlite"), paid=ROW_PER_LINE_PAID)
    for day in (START, START + timedelta(days=2)):
        default = paid_events(conn, day)
        assert default
        assert paid_events(conn, day, custom) == default


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
    fill_one(sqlite_shop)
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


def test_default_queries_pass_their_own_check(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: dict[str, tuple[str, ...]] = {}
    layout_of = RowLayout.of

    def recording(kind: str, description: Any) -> RowLayout:
        layout = layout_of(kind, description)
        checked[kind] = layout.names
        return layout

    monkeypatch.setattr(RowLayout, "of", staticmethod(recording))
    DbApiOrderSource(shop.conn).check_queries()
    # every query ran, and returned the required columns with its lines as lines_json
    assert list(checked) == list(KINDS)
    for kind, names in checked.items():
        assert set(REQUIRED_ORDER_COLUMNS) <= set(names)
        assert "lines_json" in names
        assert (set(REQUIRED_REFUND_COLUMNS) <= set(names)) == (kind == "refunded")
    assert ("refund_history" in checked["fulfilled"], "refund_history" in checked["placed"]) == (True, False)
    if shop.dialect == "sqlite":
        assert not shop.conn.in_transaction  # the read is ended
    else:
        assert shop.conn.info.transaction_status.name == "IDLE"


def test_a_failing_query_says_which(sqlite_shop: Shop) -> None:
    queries = dataclasses.replace(SqlQueries.default("sqlite"), canceled="SELECT * FROM no_such_table")
    with pytest.raises(OmnisendConfigError, match=r"'canceled' query failed.*no_such_table"):
        check_queries(sqlite_shop.conn, "sqlite", queries)


def test_every_parameter_can_be_used(shop: Shop) -> None:
    fill_one(shop)
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


def test_source_configuration_errors() -> None:
    with pytest.raises(OmnisendConfigError, match="generic"):
        DbApiOrderSource(object(), dialect="generic")
    with pytest.raises(OmnisendConfigError, match="dialect must be one of"):
        DbApiOrderSource(object(), dialect="oracle")
    with pytest.raises(OmnisendConfigError, match="fetch_size"):
        DbApiOrderSource(object(), fetch_size=0)
    with pytest.raises(OmnisendConfigError, match="fetch_size must be an integer"):
        DbApiOrderSource(object(), fetch_size=True)
    with pytest.raises(OmnisendConfigError, match="fetch_size must be from 1 to 1000000"):
        DbApiOrderSource(object(), fetch_size=10**20)
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
    data, counts = extract_all(source, summary)
    assert dict(counts) == summary.events
    import sqlite3

    assert data == extract_all(DbApiOrderSource(sqlite3.connect(tmp_path / "shop.sqlite")), summary)[0]


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
    data, counts = extract_all(source, summary)
    assert dict(counts) == summary.events
    assert data == extract_all(DbApiOrderSource(pg_connect_in(schema)), summary)[0]


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
        assert extract_all(DbApiOrderSource(legacy, fetch_size=5), summary) == extract_all(
            DbApiOrderSource(conn), summary
        )
    finally:
        legacy.close()


@pytest.mark.postgres
def test_postgres_times_without_offset_are_rejected_where_returned(pg_shop: Shop) -> None:
    fill_one(pg_shop)
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


@pytest.mark.postgres
def test_postgres_custom_row_per_line_query_gives_the_same_events_as_sqlite(
    tmp_path: Path, pg_schema: tuple[Any, str]
) -> None:
    import sqlite3

    conn, _schema = pg_schema
    build_sample_store(conn, 300, 9, timezone=TZ, start=START, days=3, dialect="postgres")
    build_sample_store(tmp_path / "shop.sqlite", 300, 9, timezone=TZ, start=START, days=3)
    lite = sqlite3.connect(tmp_path / "shop.sqlite")
    paid = ROW_PER_LINE_PAID.replace(
        "o.paid_at >= :scan_start AND o.paid_at < :scan_end", "o.paid_at >= :start AND o.paid_at < :end"
    )
    paid = paid.replace("ORDER BY o.order_id", 'ORDER BY o.order_id COLLATE "C"')
    custom = dataclasses.replace(SqlQueries.default("postgres"), paid=paid)
    for day in (START, START + timedelta(days=2)):
        expected = paid_events(lite, day)
        assert expected
        assert paid_events(conn, day, custom) == expected
    lite.close()


def test_a_refund_line_of_a_missing_order_line_is_reported_by_the_sweep(shop: Shop) -> None:
    """The event queries cannot return it (issue 14, item 1): the store-wide sweep reports it, on both
    databases (the reference schema has no foreign key from refund_lines to order_lines)."""
    fill_one(shop, "A")
    shop.insert(
        "refunds", [{"refund_id": "R1", "order_id": "A", "created_at": "2024-03-10T14:00:00Z", "amount": 1}]
    )
    shop.insert("refund_lines", [{"refund_id": "R1", "line_number": 7, "quantity": 1, "amount": 1}])
    found: list[Any] = []
    assert DbApiOrderSource(shop.conn).find_unplaceable(found.append) == 1
    [row] = [r.to_dict() for r in found]
    assert (row["orderID"], row["refundID"], row["value"], row["code"]) == (
        "A",
        "R1",
        7,
        "refund_line_without_order_line",
    )
