"""Orders from a SQL database: one query per event kind, streamed, grouped by order in Python.

:class:`SqlOrderSource` reads through any Airflow SQL connection (``BaseHook.get_connection(conn_id)
.get_hook()``: SqliteHook, PostgresHook, ...); :class:`DbApiOrderSource` and :func:`iter_sql_events` do the
same over a plain DB-API connection (tests, benchmarks, scripts: no Airflow import).

**Picking a day exactly.** A partition is ``[start_utc, end_utc)`` (a store-local day). In PostgreSQL the
times are ``timestamptz`` and the queries compare them exactly. In SQLite they are ISO text with any offset,
so comparing text is wrong ('2024-03-09T23:59:59-05:00' is on 2024-03-10 in UTC); the default SQLite
queries use the ``created_at`` index for a range of whole days that covers every offset, keep the rows
whose ``julianday()`` (offset-aware, millisecond precision) is within a second of the window, and Python
then keeps exactly the rows whose parsed instant is in the window. Every source applies that exact test,
so a custom query may return more rows than the window, never fewer.

The queries themselves, their parameters and the columns they must return: :mod:`.sql_queries`. How a
partition is read: :mod:`.sql_stream` (the five streams and their merge), :mod:`.sql_rows` (rows ->
events), :mod:`.sqlite_text` (text that is not UTF-8), :mod:`.sql_cursors`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from airflow_omnisend.checks import check_int
from airflow_omnisend.events.mapping import OrderEventMapper
from airflow_omnisend.events.names import PLACED, REFUNDED
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.sources.base import RowRejection
from airflow_omnisend.sources.sql_cursors import end_read, open_cursor, register_reconnect
from airflow_omnisend.sources.sql_queries import (
    DIALECTS,
    KINDS,
    PARAMETERS,
    REQUIRED_LINE_COLUMNS,
    REQUIRED_ORDER_COLUMNS,
    REQUIRED_REFUND_COLUMNS,
    REQUIRED_REFUNDED_LINE_COLUMNS,
    Dialect,
    SqlQueries,
    bind,
    check_dialect,
    check_paramstyle,
    detect_dialect,
    paramstyle_of,
    window_parameters,
)
from airflow_omnisend.sources.sql_rows import PreparedOrders, RowLayout
from airflow_omnisend.sources.sql_stream import Extraction, merged_events
from airflow_omnisend.sources.sqlite_text import TextDecoding

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_omnisend.events.partition import PartitionWindow

__all__ = [
    "DIALECTS",
    "KINDS",
    "PARAMETERS",
    "REQUIRED_LINE_COLUMNS",
    "REQUIRED_ORDER_COLUMNS",
    "REQUIRED_REFUNDED_LINE_COLUMNS",
    "REQUIRED_REFUND_COLUMNS",
    "DbApiOrderSource",
    "Dialect",
    "SqlOrderSource",
    "SqlQueries",
    "bind",
    "check_queries",
    "detect_dialect",
    "find_orphans_sql",
    "find_unplaceable_sql",
    "iter_sql_events",
    "window_parameters",
]

log = logging.getLogger(__name__)


def _log_only(rejection: RowRejection) -> None:
    log.warning("row cannot be placed in a partition: %s", rejection.to_dict())


def iter_sql_events(
    conn: Any,
    dialect: str | None,
    store_id: str,
    window: PartitionWindow,
    *,
    queries: SqlQueries | None = None,
    reject: Callable[[RowRejection], None] | None = None,
    fetch_size: int = 2000,
    paramstyle: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The events of ``window`` from a DB-API connection, without Airflow.

    The five queries stream side by side and are merged by order, so an order's events of the day come
    out together, in lifecycle order (:mod:`.sql_stream`). ``reject`` receives the rows that cannot be
    placed (default: they are logged only - pass a callback to keep them). ``paramstyle`` overrides the
    driver's (:func:`~.sql_queries.paramstyle_of`).
    """
    dialect = check_dialect(dialect or detect_dialect(conn))
    extraction = Extraction(
        conn=conn,
        dialect=dialect,
        window=window,
        params=window_parameters(window, dialect),
        reject=reject or _log_only,
        fetch_size=fetch_size,
        orders=PreparedOrders(OrderEventMapper(store_id)),
        decoding=TextDecoding(conn),
        paramstyle=paramstyle,
    )
    try:
        yield from merged_events(extraction, queries or SqlQueries.default(dialect))
    finally:
        extraction.decoding.restore()
        end_read(conn)


def find_unplaceable_sql(
    conn: Any, dialect: str | None, queries: SqlQueries | None, reject: Callable[[RowRejection], None]
) -> int:
    """Run the store-wide sweep of ``queries.unplaceable``, reporting each row to ``reject``; return the
    count."""
    dialect = check_dialect(dialect or detect_dialect(conn))
    queries = queries or SqlQueries.default(dialect)
    if queries.unplaceable is None:
        log.info("no 'unplaceable' query: skipping the sweep for rows without a usable date")
        return 0
    decoding = TextDecoding(conn)
    if dialect == "sqlite" and hasattr(conn, "text_factory"):
        decoding.switch(announce=False)  # the sweep returns few rows: decode them all leniently
    count = 0
    try:
        for event_name, order_id, refund_id, column, value in _sweep_rows(conn, queries.unplaceable):
            count += 1
            reject(
                RowRejection(
                    event_name=event_name,
                    order_id=order_id,
                    refund_id=refund_id,
                    column=column,
                    value=value,
                    reason=f"{column} {value!r} has no date, so no partition can hold this row",
                    code="no_date",
                )
            )
    finally:
        decoding.restore()
        end_read(conn)
    return count


def _sweep_rows(conn: Any, sql: str) -> Iterator[tuple[Any, ...]]:
    """Every row of a store-wide sweep query, fetched 1,000 at a time on a cursor closed afterwards."""
    cur = open_cursor(conn, 1000)
    try:
        cur.execute(sql)
        while rows := cur.fetchmany(1000):
            yield from rows
    finally:
        cur.close()


#: Store-wide checks of the reference schema for rows no event query can return (each row: order_id,
#: refund_id, line, column, value), with the event they would have belonged to and the code they get.
ORPHAN_QUERIES: Final = (
    (
        "null_order_id",
        PLACED,
        "SELECT NULL, NULL, NULL, 'order_id', created_at FROM orders WHERE order_id IS NULL",
        "the order row has no order_id (created_at {value}), so no event can name it: give it its id",
    ),
    (
        "line_without_order",
        PLACED,
        "SELECT l.order_id, NULL, l.line_number, 'order_id', l.order_id FROM order_lines l"
        " WHERE l.order_id IS NULL OR NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = l.order_id)",
        "order_lines line {line} names order {value!r}, which does not exist: add the order or delete "
        "the line",
    ),
    (
        "refund_line_without_refund",
        REFUNDED,
        "SELECT NULL, rl.refund_id, rl.line_number, 'refund_id', rl.refund_id FROM refund_lines rl"
        " WHERE rl.refund_id IS NULL"
        " OR NOT EXISTS (SELECT 1 FROM refunds r WHERE r.refund_id = rl.refund_id)",
        "refund_lines line {line} names refund {value!r}, which does not exist: add the refund or "
        "delete the line",
    ),
    (
        "refund_line_without_order_line",
        REFUNDED,
        "SELECT r.order_id, rl.refund_id, rl.line_number, 'line_number', rl.line_number"
        " FROM refund_lines rl JOIN refunds r ON r.refund_id = rl.refund_id"
        " WHERE NOT EXISTS (SELECT 1 FROM order_lines l"
        " WHERE l.order_id = r.order_id AND l.line_number = rl.line_number)",
        "refund_lines row of refund {refund_id!r} refunds line {value!r}, which order {order_id!r} does not "
        "have: fix the line_number",
    ),
    (
        "null_refund_id",
        REFUNDED,
        "SELECT order_id, NULL, NULL, 'refund_id', created_at FROM refunds WHERE refund_id IS NULL",
        "the refunds row of order {order_id!r} has no refund_id, so no event can name it: give it its id",
    ),
)


def find_orphans_sql(conn: Any, reject: Callable[[RowRejection], None]) -> int:
    """Store-wide: report rows of the reference schema that no event query returns (an order without
    order_id, a line of an order that does not exist, a refund line of a missing refund or order line);
    return how many. For the default queries only: custom queries read their own schema."""
    count = 0
    try:
        for code, event_name, sql, reason in ORPHAN_QUERIES:
            for order_id, refund_id, line, column, value in _sweep_rows(conn, sql):
                count += 1
                reject(
                    RowRejection(
                        event_name=event_name,
                        order_id=order_id,
                        refund_id=refund_id,
                        column=column,
                        value=value,
                        reason=reason.format(order_id=order_id, refund_id=refund_id, line=line, value=value),
                        code=code,
                    )
                )
    finally:
        end_read(conn)
    return count


def check_queries(conn: Any, dialect: str | None, queries: SqlQueries, paramstyle: str | None = None) -> None:
    """Run every query over an empty window and check its columns; raise :class:`OmnisendConfigError`
    naming the query and the missing columns. Cheap: call it before a backfill starts."""
    from airflow_omnisend.events.partition import PartitionWindow

    dialect = check_dialect(dialect or detect_dialect(conn))
    probe = PartitionWindow.for_day("1970-01-02", "UTC")
    params = window_parameters(probe, dialect)
    params.update(end=params["start"], scan_end=params["scan_start"], julian_end=params["julian_start"])
    params.update(next_day=params["day"])
    try:
        for kind in KINDS:
            _check_query(conn, paramstyle_of(conn, dialect, paramstyle), kind, getattr(queries, kind), params)
    finally:
        end_read(conn)


def _check_query(conn: Any, paramstyle: str, kind: str, query: str, params: dict[str, Any]) -> None:
    sql, args = bind(query, params, paramstyle)
    cur = open_cursor(conn, 10)
    try:
        try:
            cur.execute(sql, args)
            cur.fetchmany(1)
        except Exception as exc:
            raise OmnisendConfigError(f"the {kind!r} query failed: {type(exc).__name__}: {exc}") from exc
        RowLayout.of(kind, cur.description)
    finally:
        cur.close()


# -- sources ----------------------------------------------------------------------------------------------


class DbApiOrderSource:
    """Orders from a DB-API connection (no Airflow): :class:`~airflow_omnisend.sources.base.OrderSource`.

    :param connection: an open DB-API connection (left open), or a zero-argument callable that opens one
        (closed after each use).
    :param dialect: ``"sqlite"``, ``"postgres"``, ``"mysql"`` or ``"generic"`` (custom queries only);
        default: from the driver.
    :param queries: custom queries; default: :meth:`SqlQueries.default` for the dialect.
    :param fetch_size: rows per ``fetchmany`` and per server-side fetch: the memory bound (from an
        in-process ``sqlite3`` connection, fetches take at most 64 rows: see
        :func:`~.sql_cursors.fetch_batch`).
    :param paramstyle: the DB-API paramstyle to bind parameters in; default: the driver module's own
        (:func:`~.sql_queries.paramstyle_of`). MySQL/MariaDB streams need a connection factory (each
        stream reads on a connection of its own: :mod:`.sql_cursors`).
    """

    def __init__(
        self,
        connection: Any,
        *,
        dialect: str | None = None,
        queries: SqlQueries | None = None,
        fetch_size: int = 2000,
        paramstyle: str | None = None,
    ) -> None:
        if paramstyle is not None:
            check_paramstyle(paramstyle)
        if dialect is not None:
            check_dialect(dialect)
        if queries is None and dialect == "generic":
            raise OmnisendConfigError(
                "dialect 'generic' has no default queries: pass queries=SqlQueries(...)"
            )
        check_int(
            "fetch_size", fetch_size, minimum=1, maximum=1_000_000, fix="pass the rows per fetch, e.g. 2000"
        )
        self._connection = connection
        self.dialect = dialect
        self.queries = queries
        self.fetch_size = fetch_size
        self.paramstyle = paramstyle

    def _connect(self) -> tuple[Any, bool]:
        if callable(self._connection) and not hasattr(self._connection, "cursor"):
            conn = self._connection()
            register_reconnect(conn, self._connection)
            return conn, True
        return self._connection, False

    def iter_events(
        self, store_id: str, window: PartitionWindow, reject: Callable[[RowRejection], None]
    ) -> Iterator[dict[str, Any]]:
        conn, owned = self._connect()
        try:
            yield from iter_sql_events(
                conn,
                self.dialect,
                store_id,
                window,
                queries=self.queries,
                reject=reject,
                fetch_size=self.fetch_size,
                paramstyle=self.paramstyle,
            )
        finally:
            if owned:
                conn.close()

    def find_unplaceable(self, reject: Callable[[RowRejection], None]) -> int:
        """The store-wide sweep: rows without a usable date, and (default queries) rows no query returns
        (:func:`find_orphans_sql`)."""
        conn, owned = self._connect()
        try:
            found = find_unplaceable_sql(conn, self.dialect, self.queries, reject)
            if self.queries is None:
                found += find_orphans_sql(conn, reject)
            return found
        finally:
            if owned:
                conn.close()

    def check_queries(self) -> None:
        conn, owned = self._connect()
        try:
            check_queries(
                conn,
                self.dialect,
                self.queries or SqlQueries.default(self.dialect or detect_dialect(conn)),
                self.paramstyle,
            )
        finally:
            if owned:
                conn.close()


class SqlOrderSource(DbApiOrderSource):
    """Orders read through an Airflow SQL connection (any ``DbApiHook``: SqliteHook, PostgresHook, ...).

    The hook is resolved when the source is used (inside the task), not when it is built, so building one
    in a DAG file costs nothing. Other parameters as for :class:`DbApiOrderSource`.
    """

    def __init__(
        self,
        conn_id: str,
        *,
        dialect: str | None = None,
        queries: SqlQueries | None = None,
        fetch_size: int = 2000,
        paramstyle: str | None = None,
    ) -> None:
        if not isinstance(conn_id, str) or not conn_id:
            raise OmnisendConfigError(f"conn_id must name an Airflow SQL connection, got {conn_id!r}")
        super().__init__(
            self._open, dialect=dialect, queries=queries, fetch_size=fetch_size, paramstyle=paramstyle
        )
        self.conn_id = conn_id

    def _open(self) -> Any:
        from airflow.sdk import BaseHook

        hook = BaseHook.get_connection(self.conn_id).get_hook()  # type: ignore[no-untyped-call]
        if not hasattr(hook, "get_conn"):
            raise OmnisendConfigError(
                f"connection {self.conn_id!r} gives a {type(hook).__name__}, not a SQL hook with get_conn()"
            )
        return hook.get_conn()
