"""DB-API cursors: fetch sizes per driver, and ending the read."""

from __future__ import annotations

import sqlite3

from airflow_omnisend.sources.sql_cursors import IN_PROCESS_BATCH, end_read, fetch_batch, open_cursor


def test_in_process_sqlite_fetches_few_rows_at_a_time() -> None:
    conn = sqlite3.connect(":memory:")
    assert fetch_batch(conn, 2000) == IN_PROCESS_BATCH
    assert fetch_batch(conn, 5) == 5
    assert fetch_batch(object(), 2000) == 2000  # a server: as many as the memory bound allows


def test_a_cursor_fetches_tuples_and_the_read_ends() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    cur = open_cursor(conn, 10)
    cur.execute("SELECT x FROM t")
    assert cur.arraysize == 10
    assert cur.fetchmany(5) == [(1,)]
    assert conn.in_transaction
    end_read(conn)
    assert not conn.in_transaction
    conn.close()
    end_read(conn)  # a closed connection has nothing left to end: no error
