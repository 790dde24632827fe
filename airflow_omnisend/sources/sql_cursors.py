"""DB-API cursors of the SQL source: streaming ones, how many rows a fetch takes, ending the read.

The source only reads, and it reads a partition with five queries side by side; each gets its own
cursor, which streams (bounded memory) whatever the driver: a named (server-side) cursor on PostgreSQL,
an unbuffered one on MySQL/MariaDB (``SSCursor`` of mysqlclient and PyMySQL, ``buffered=False`` of
mysql-connector-python and MariaDB Connector/Python). A MySQL connection carries one unbuffered result at
a time, so each further stream reads on a connection of its own, opened by the factory the connection
came from (:func:`register_reconnect`) and closed with its cursor; each MySQL session reads in UTC.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Final

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.sources.sql_queries import MYSQL_DRIVERS

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

#: Rows per ``fetchmany`` from an in-process ``sqlite3`` connection (see :func:`fetch_batch`).
IN_PROCESS_BATCH: Final = 64
#: What each MySQL session the source reads on is set to: UTC times (``TIMESTAMP`` columns are converted
#: to the session's zone), and room for an order's lines aggregated with ``GROUP_CONCAT``.
MYSQL_SESSION: Final = ("SET time_zone = '+00:00'", "SET SESSION group_concat_max_len = 67108864")

_reconnects: weakref.WeakKeyDictionary[Any, Callable[[], Any]] = weakref.WeakKeyDictionary()
_streaming: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_prepared: weakref.WeakSet[Any] = weakref.WeakSet()


def register_reconnect(conn: Any, factory: Callable[[], Any]) -> None:
    """Let the MySQL streams of ``conn`` open their own connections with ``factory`` (no-op elsewhere)."""
    if _driver(conn) in MYSQL_DRIVERS:
        _reconnects[conn] = factory


def _driver(conn: Any) -> str:
    return type(conn).__module__.split(".")[0]


def open_cursor(conn: Any, fetch_size: int) -> Any:
    """A streaming cursor that yields plain tuples: server-side on PostgreSQL (bounded memory)."""
    driver = _driver(conn)
    name = f"omnisend_{uuid.uuid4().hex[:16]}"
    if driver == "psycopg":
        from psycopg.rows import tuple_row

        cur = conn.cursor(name=name, row_factory=tuple_row)
        cur.itersize = fetch_size
        return cur
    if driver == "psycopg2":
        import psycopg2.extensions

        cur = conn.cursor(name=name, cursor_factory=psycopg2.extensions.cursor)
        cur.itersize = fetch_size
        return cur
    if driver in MYSQL_DRIVERS:
        return MySqlStream(conn, fetch_size)
    cur = conn.cursor()
    cur.arraysize = fetch_size
    return cur


def _mysql_unbuffered_cursor(conn: Any) -> Any:
    """An unbuffered cursor of ``conn``'s driver, in a session prepared by :data:`MYSQL_SESSION`."""
    driver = _driver(conn)
    if conn not in _prepared:
        setup = conn.cursor()
        for statement in MYSQL_SESSION:
            setup.execute(statement)
        setup.close()
        _prepared.add(conn)
    if driver == "pymysql":
        import pymysql.cursors

        return conn.cursor(pymysql.cursors.SSCursor)
    if driver == "MySQLdb":
        import MySQLdb.cursors

        return conn.cursor(MySQLdb.cursors.SSCursor)
    return conn.cursor(buffered=False)  # mysql-connector-python, MariaDB Connector/Python


class MySqlStream:
    """A DB-API cursor over an unbuffered MySQL result: on ``conn`` when no other stream reads it, else on
    a connection of its own from :func:`register_reconnect`'s factory (closed with the cursor)."""

    def __init__(self, conn: Any, fetch_size: int) -> None:
        self._base = conn
        self._own: Any = None
        if _streaming.get(conn, 0):
            factory = _reconnects.get(conn)
            if factory is None:
                raise OmnisendConfigError(
                    "MySQL/MariaDB streams each need a connection of their own (one unbuffered result per "
                    "connection): give the source a connection factory (DbApiOrderSource(lambda: "
                    "pymysql.connect(...))) or an Airflow conn_id (SqlOrderSource), not one open connection"
                )
            self._own = factory()
        else:
            _streaming[conn] = 1
        self._cursor = _mysql_unbuffered_cursor(self._own if self._own is not None else conn)
        self._cursor.arraysize = fetch_size
        # mysql-connector-python substitutes %(name)s / %s but leaves the %% that bind() escapes a literal
        # % to (PyMySQL and mysqlclient read %% as %), so the query is given back its single %
        self._literal_percent = _driver(self._base) == "mysql"

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def arraysize(self) -> int:
        return int(self._cursor.arraysize)

    def execute(self, sql: str, args: Any = None) -> None:
        self._cursor.execute(sql.replace("%%", "%") if self._literal_percent else sql, args)

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return list(self._cursor.fetchmany(self.arraysize if size is None else size))

    def close(self) -> None:
        """Close the cursor (reading what is left of its result) and the stream's own connection."""
        try:
            self._cursor.close()
        finally:
            if self._own is not None:
                self._own.close()
                self._own = None
            elif _streaming.get(self._base):
                _streaming[self._base] = 0


def fetch_batch(conn: Any, fetch_size: int) -> int:
    """Rows per ``fetchmany``: ``fetch_size``, but at most :data:`IN_PROCESS_BATCH` from ``sqlite3``.

    A fetch from a server is a round trip, so it takes as many rows as the memory bound allows. From
    SQLite it only steps the statement in this process: small fetches map each row while it is still in
    the CPU cache, and five streams keep few fetched rows alive (measured in docs/prep-path.md).
    """
    if _driver(conn) == "sqlite3":
        return min(fetch_size, IN_PROCESS_BATCH)
    return fetch_size


def end_read(conn: Any) -> None:
    """End the read transaction (PostgreSQL server-side cursors live in one); harmless elsewhere."""
    try:
        if not getattr(conn, "autocommit", False):
            conn.rollback()
    except Exception:  # a closed or broken connection has nothing left to end
        log.debug("rollback after reading failed", exc_info=True)
