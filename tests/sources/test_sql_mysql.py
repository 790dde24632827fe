"""The SQL source on MariaDB/MySQL (the local server, read with PyMySQL's unbuffered cursors): the default
and custom queries give the same events as SQLite over the sample store."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from shops import drop_mysql_database, mysql_database
from sql_samples import ROW_PER_LINE_PAID, START, TZ, extract_all, paid_events

from airflow_omnisend.events.columns import ORDER_COLUMNS
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.sources.sql import DbApiOrderSource, SqlQueries, iter_sql_events
from airflow_omnisend.sources.sql_cursors import MySqlStream, open_cursor, register_reconnect
from airflow_omnisend.sources.sql_queries import detect_dialect, paramstyle_of
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.mysql


@pytest.fixture
def mysql_connect() -> Iterator[Callable[[], Any]]:
    connect, name = mysql_database()
    try:
        yield connect
    finally:
        drop_mysql_database(name)


def _stores(tmp_path: Path, connect: Callable[[], Any], orders: int, days: int) -> Any:
    conn = connect()
    mysql_summary = build_sample_store(conn, orders, 11, timezone=TZ, start=START, days=days, dialect="mysql")
    conn.close()
    lite_summary = build_sample_store(
        tmp_path / "shop.sqlite", orders, 11, timezone=TZ, start=START, days=days
    )
    assert mysql_summary.events == lite_summary.events
    return lite_summary


def test_default_queries_give_the_same_bytes_as_sqlite(
    tmp_path: Path, mysql_connect: Callable[[], Any]
) -> None:
    summary = _stores(tmp_path, mysql_connect, 400, 5)
    mysql_data, counts = extract_all(DbApiOrderSource(mysql_connect, fetch_size=7), summary)
    assert dict(counts) == summary.events
    lite = sqlite3.connect(tmp_path / "shop.sqlite")
    assert mysql_data == extract_all(DbApiOrderSource(lite), summary)[0]
    lite.close()


def test_custom_row_per_line_query_gives_the_same_events(
    tmp_path: Path, mysql_connect: Callable[[], Any]
) -> None:
    _stores(tmp_path, mysql_connect, 200, 3)
    # MySQL DATETIMEs carry no offset: a custom query returns its times as UTC text
    times = ("created_at", "paid_at", "fulfilled_at", "canceled_at")
    order_columns = ", ".join(
        f"DATE_FORMAT(o.{c}, '%Y-%m-%dT%H:%i:%s.%fZ') AS {c}" if c in times else f"o.{c}"
        for c in ORDER_COLUMNS
    )
    custom_paid = (
        ROW_PER_LINE_PAID.replace("SELECT o.*,", f"SELECT {order_columns},")
        .replace(
            "o.paid_at >= :scan_start AND o.paid_at < :scan_end", "o.paid_at >= :start AND o.paid_at < :end"
        )
        .replace("ORDER BY o.order_id", "ORDER BY CAST(o.order_id AS BINARY)")
    )
    custom = dataclasses.replace(SqlQueries.default("mysql"), paid=custom_paid)
    lite = sqlite3.connect(tmp_path / "shop.sqlite")
    for day in (START, START + timedelta(days=2)):
        conn = mysql_connect()
        register_reconnect(conn, mysql_connect)  # the streams beside the first read on their own
        try:
            expected = paid_events(lite, day)
            assert expected
            assert paid_events(conn, day, custom) == expected
        finally:
            conn.close()
    lite.close()


def test_pymysql_is_the_mysql_dialect_with_its_own_paramstyle(mysql_connect: Callable[[], Any]) -> None:
    conn = mysql_connect()
    try:
        assert detect_dialect(conn) == "mysql"
        assert paramstyle_of(conn, "mysql") == "pyformat"
        assert paramstyle_of(conn, "mysql", "format") == "format"
        with pytest.raises(OmnisendConfigError, match="paramstyle must be one of"):
            paramstyle_of(conn, "mysql", "dollar")
    finally:
        conn.close()


def test_streams_are_unbuffered_and_each_further_one_reads_on_its_own_connection(
    mysql_connect: Callable[[], Any],
) -> None:
    import pymysql.cursors

    conn = mysql_connect()
    try:
        first = open_cursor(conn, 5)
        assert isinstance(first, MySqlStream)
        assert isinstance(first._cursor, pymysql.cursors.SSCursor)
        first.execute("SELECT seq FROM seq_1_to_100000")  # MariaDB's sequence engine
        assert [r[0] for r in first.fetchmany()] == [1, 2, 3, 4, 5]
        with pytest.raises(OmnisendConfigError, match="connection of their own"):
            open_cursor(conn, 5)  # one open connection cannot carry a second unbuffered result
        first.close()
        again = open_cursor(conn, 5)  # the connection is free again
        again.execute("SELECT @@session.time_zone")
        assert again.fetchmany() == [("+00:00",)]
        again.close()
    finally:
        conn.close()


def test_one_open_connection_is_refused_with_the_fix(
    tmp_path: Path, mysql_connect: Callable[[], Any]
) -> None:
    summary = _stores(tmp_path, mysql_connect, 20, 1)
    conn = mysql_connect()
    try:
        from airflow_omnisend.events.partition import PartitionWindow

        window = PartitionWindow.for_day(summary.start, TZ)
        with pytest.raises(OmnisendConfigError, match="connection factory"):
            list(iter_sql_events(conn, None, "demo", window))
    finally:
        conn.close()


def test_mysql_connector_python_reads_the_same_bytes(
    tmp_path: Path, mysql_connect: Callable[[], Any]
) -> None:
    """mysql-connector-python (``cursor(buffered=False)``; it leaves ``%%`` as is, unlike PyMySQL)."""
    connector = pytest.importorskip("mysql.connector", reason="mysql-connector-python is not installed here")
    summary = _stores(tmp_path, mysql_connect, 200, 3)
    probe = mysql_connect()
    database = probe.db.decode()
    probe.close()

    def connect() -> Any:
        return connector.connect(host="127.0.0.1", port=3306, user="root", password="", database=database)

    data, counts = extract_all(DbApiOrderSource(connect, fetch_size=7), summary)
    assert dict(counts) == summary.events
    lite = sqlite3.connect(tmp_path / "shop.sqlite")
    assert data == extract_all(DbApiOrderSource(lite), summary)[0]
    lite.close()
