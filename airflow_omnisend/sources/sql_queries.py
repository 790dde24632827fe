"""The SQL of the SQL source: default queries per dialect, custom queries, their parameters.

**Custom queries.** :class:`SqlQueries` holds one query per event kind. A query may use these parameters,
written ``:name`` whatever the driver's paramstyle (they are rewritten for it):

=================== ===============================================================================
``:start, :end``    the window's UTC bounds: aware datetimes (PostgreSQL, other drivers) or
                    ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` text (SQLite)
``:scan_start,``    ``YYYY-MM-DD`` text bounds of a range of whole days that contains every
``:scan_end``       instant of the window written with any offset (for text columns)
``:day, :next_day`` the partition's first day and the day after its last (for a day partition: the
                    day and the next), ``YYYY-MM-DD`` (a text time that cannot be parsed is reported
                    by the day it starts with, so include ``col >= :day AND col < :next_day`` when
                    you prefilter text columns)
``:julian_start,``  the window as Julian day numbers, widened by one second (SQLite ``julianday()``)
``:julian_end``
=================== ===============================================================================

It returns columns by name (case-insensitive), in one of two shapes; rows of one order (of one refund, for
``refunded``) must come together, ordered by ``order_id`` (``order_id, refund_id``): an order whose rows
arrive apart is an error, never two half events.

* every kind - required: :data:`REQUIRED_ORDER_COLUMNS`; optional (null when absent): the other columns of
  ``orders`` (:data:`~airflow_omnisend.events.columns.ORDER_COLUMNS`), and ``refund_history``: a JSON array
  of ``[created_at, amount]``, one per refund of the order, which the payment status as of each event
  needs (the defaults leave it out of ``placed`` and ``paid``: no refund precedes those).
* the order's lines, either as ``lines_json`` - a JSON array with one element per line: an array of the
  :data:`~airflow_omnisend.events.columns.LINE_COLUMNS` values in that order, or an object keyed by
  those names (one row per order; what the defaults do) - or one row per order line with the
  ``order_lines`` columns, at least :data:`REQUIRED_LINE_COLUMNS` (null for an order without lines).
* ``refunded`` - also :data:`REQUIRED_REFUND_COLUMNS` (optional ``refund_tax_amount``, ``refund_reason``),
  and the refunded lines: ``refunded_lines_json`` (``[[line_number, quantity, amount], ...]``) or, in the
  one-row-per-line shape, :data:`REQUIRED_REFUNDED_LINE_COLUMNS` on each order line's row (null where
  this refund does not touch the line).

:func:`check_queries` runs every query over an empty window and names missing columns before a backfill
starts; the extraction checks the same before it writes anything.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from airflow_omnisend.events.columns import LINE_COLUMNS, ORDER_COLUMNS
from airflow_omnisend.events.names import CANCELED, FULFILLED, PAID, PLACED, REFUNDED
from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    from airflow_omnisend.events.partition import PartitionWindow

Dialect = Literal["sqlite", "postgres", "mysql", "generic"]
DIALECTS: Final = ("sqlite", "postgres", "mysql", "generic")
PARAMSTYLES: Final = ("named", "qmark", "pyformat", "format", "numeric")
#: Top-level modules of the MySQL/MariaDB DB-API drivers (mysqlclient, PyMySQL, mysql-connector-python,
#: MariaDB Connector/Python).
MYSQL_DRIVERS: Final = frozenset(("MySQLdb", "pymysql", "mysql", "mariadb"))

#: Query field of :class:`SqlQueries` -> event name, and the column whose time places the event.
KINDS: Final = {
    "placed": (PLACED, "created_at"),
    "paid": (PAID, "paid_at"),
    "fulfilled": (FULFILLED, "fulfilled_at"),
    "canceled": (CANCELED, "canceled_at"),
    "refunded": (REFUNDED, "refund_created_at"),
}
REQUIRED_ORDER_COLUMNS: Final = (
    "order_id",
    "email",
    "phone",
    "currency",
    "total_price",
    "created_at",
    "paid_at",
    "fulfilled_at",
    "canceled_at",
)
#: Line columns required in the one-row-per-line form (a query without ``lines_json``).
REQUIRED_LINE_COLUMNS: Final = ("line_number", "product_id", "title", "quantity", "unit_price")
REQUIRED_REFUND_COLUMNS: Final = ("refund_id", "refund_created_at", "refund_amount")
#: Refunded-line columns required in the one-row-per-line form (a query without ``refunded_lines_json``).
REQUIRED_REFUNDED_LINE_COLUMNS: Final = ("refunded_quantity", "refunded_amount")
REFUND_QUERY_COLUMNS: Final = (
    "refund_id",
    "order_id",
    "refund_created_at",
    "refund_amount",
    "refund_tax_amount",
    "refund_reason",
)
PARAMETERS: Final = (
    "start",
    "end",
    "scan_start",
    "scan_end",
    "day",
    "next_day",
    "julian_start",
    "julian_end",
)
_PARAM = re.compile(r"(?<![:\w]):(" + "|".join(PARAMETERS) + r")\b")
_JULIAN_UNIX_EPOCH = 2440587.5
_MARGIN_DAYS = 1.0 / 86400  # one second: julianday() has millisecond precision


# -- queries ------------------------------------------------------------------------------------------------


_TIME_COLUMNS: Final = frozenset(("created_at", "paid_at", "fulfilled_at", "canceled_at"))


def _default_query(kind: str, dialect: str) -> str:
    """The reference-schema query of one kind: one row per event, lines aggregated as JSON arrays.

    Aggregating the lines in SQL (``lines_json``) instead of one row per line avoids repeating the 29
    order columns per line (fetching cells is the larger part of the extraction). ``placed`` and
    ``paid`` carry no ``refund_history``: no refund can precede an order's placement or payment, so the
    aggregation would be work for nothing. Figures: docs/prep-path.md.
    """
    if dialect == "postgres":
        return _postgres_query(kind)
    if dialect == "mysql":
        return _mysql_query(kind)
    return _sqlite_query(kind)


def _postgres_query(kind: str) -> str:
    # 'infinity' cannot be loaded as a datetime: read it as null (no event); the sweep reports it
    order_cols = ", ".join(
        f"CASE WHEN isfinite(o.{c}) THEN o.{c} END AS {c}" if c in _TIME_COLUMNS else f"o.{c}"
        for c in ORDER_COLUMNS[1:]
    )
    line_cols = ", ".join(f"l.{c}" for c in LINE_COLUMNS)
    lines = (
        f"(SELECT json_agg(json_build_array({line_cols}) ORDER BY l.line_number)::text"
        " FROM order_lines l WHERE l.order_id = {order}) AS lines_json"
    )
    history = (
        "SELECT h.order_id, json_agg(json_build_array(h.created_at, h.amount)"
        " ORDER BY h.created_at, h.refund_id)::text AS refund_history FROM refunds h"
        " WHERE h.order_id IN ({ids}) GROUP BY h.order_id"
    )
    c = ' COLLATE "C"'  # byte order == Python str order, so the five streams merge by order_id
    if kind == "refunded":
        in_window = _window_filter("r.created_at", "postgres")
        ids = f"SELECT w.order_id FROM refunds w WHERE {_window_filter('w.created_at', 'postgres')}"
        return (
            f"SELECT r.order_id AS order_id, {order_cols}, {lines.format(order='r.order_id')},"
            " rh.refund_history, r.refund_id, r.created_at AS refund_created_at, r.amount AS refund_amount,"
            " r.tax_amount AS refund_tax_amount, r.reason AS refund_reason,"
            " (SELECT json_agg(json_build_array(rl.line_number, rl.quantity, rl.amount)"
            " ORDER BY rl.line_number)::text FROM refund_lines rl WHERE rl.refund_id = r.refund_id)"
            " AS refunded_lines_json"
            " FROM refunds r LEFT JOIN orders o ON o.order_id = r.order_id"
            f" LEFT JOIN ({history.format(ids=ids)}) rh ON rh.order_id = r.order_id"
            f" WHERE {in_window} ORDER BY r.order_id{c}, r.refund_id{c}"
        )
    column = KINDS[kind][1]
    select = f"SELECT o.order_id, {order_cols}, {lines.format(order='o.order_id')}"
    where = f" WHERE {_window_filter('o.' + column, 'postgres')} ORDER BY o.order_id{c}"
    if kind in ("placed", "paid"):
        return f"{select} FROM orders o{where}"
    ids = f"SELECT w.order_id FROM orders w WHERE {_window_filter('w.' + column, 'postgres')}"
    return (
        f"{select}, rh.refund_history FROM orders o"
        f" LEFT JOIN ({history.format(ids=ids)}) rh ON rh.order_id = o.order_id{where}"
    )


def _mysql_time(column: str) -> str:
    """A ``DATETIME``/``TIMESTAMP`` as UTC ``eventTime`` text (the session runs in UTC: ``sql_cursors``)."""
    return f"DATE_FORMAT({column}, '%Y-%m-%dT%H:%i:%s.%fZ')"


def _mysql_query(kind: str) -> str:
    """MySQL 8 / MariaDB 10.5+: times are UTC ``DATETIME``; lines are aggregated with ``GROUP_CONCAT``
    (ordered on both servers, unlike MySQL's ``JSON_ARRAYAGG``), order ids sorted as bytes (Python's
    order, so the five streams merge by ``order_id``).
    """
    order_cols = ", ".join(
        f"{_mysql_time('o.' + c)} AS {c}" if c in _TIME_COLUMNS else f"o.{c}" for c in ORDER_COLUMNS[1:]
    )
    line_cols = ", ".join(f"l.{c}" for c in LINE_COLUMNS)
    lines = (
        f"(SELECT CONCAT('[', GROUP_CONCAT(JSON_ARRAY({line_cols}) ORDER BY l.line_number SEPARATOR ','),"
        " ']') FROM order_lines l WHERE l.order_id = {order}) AS lines_json"
    )
    history = (
        "SELECT h.order_id, CONCAT('[', GROUP_CONCAT(JSON_ARRAY("
        + _mysql_time("h.created_at")
        + ", h.amount) ORDER BY h.created_at, h.refund_id SEPARATOR ','), ']') AS refund_history"
        " FROM refunds h WHERE h.order_id IN ({ids}) GROUP BY h.order_id"
    )
    if kind == "refunded":
        ids = f"SELECT w.order_id FROM refunds w WHERE {_window_filter('w.created_at', 'mysql')}"
        return (
            f"SELECT r.order_id AS order_id, {order_cols}, {lines.format(order='r.order_id')},"
            f" rh.refund_history, r.refund_id, {_mysql_time('r.created_at')} AS refund_created_at,"
            " r.amount AS refund_amount, r.tax_amount AS refund_tax_amount, r.reason AS refund_reason,"
            " (SELECT CONCAT('[', GROUP_CONCAT(JSON_ARRAY(rl.line_number, rl.quantity, rl.amount)"
            " ORDER BY rl.line_number SEPARATOR ','), ']') FROM refund_lines rl"
            " WHERE rl.refund_id = r.refund_id) AS refunded_lines_json"
            " FROM refunds r LEFT JOIN orders o ON o.order_id = r.order_id"
            f" LEFT JOIN ({history.format(ids=ids)}) rh ON rh.order_id = r.order_id"
            f" WHERE {_window_filter('r.created_at', 'mysql')}"
            " ORDER BY CAST(r.order_id AS BINARY), CAST(r.refund_id AS BINARY)"
        )
    column = KINDS[kind][1]
    select = f"SELECT o.order_id, {order_cols}, {lines.format(order='o.order_id')}"
    where = f" WHERE {_window_filter('o.' + column, 'mysql')} ORDER BY CAST(o.order_id AS BINARY)"
    if kind in ("placed", "paid"):
        return f"{select} FROM orders o{where}"
    ids = f"SELECT w.order_id FROM orders w WHERE {_window_filter('w.' + column, 'mysql')}"
    return (
        f"{select}, rh.refund_history FROM orders o"
        f" LEFT JOIN ({history.format(ids=ids)}) rh ON rh.order_id = o.order_id{where}"
    )


def _sqlite_query(kind: str) -> str:
    """SQLite: the window's keys are picked through the time index and sorted first (a narrow sort), then
    the wide rows are read in that order (sorting the wide rows instead is much slower).
    ``LIMIT -1`` keeps SQLite from flattening the key subquery (which would drop its ORDER BY), and
    ``+`` keeps it from walking the primary key for the sort instead of the time index. Lines come in
    primary-key order (order_id, line_number), which is how SQLite reads them.
    """
    order_cols = ", ".join(f"o.{c}" for c in ORDER_COLUMNS[1:])
    line_cols = ", ".join(f"l.{c}" for c in LINE_COLUMNS)
    lines = (
        f"(SELECT json_group_array(json_array({line_cols})) FROM order_lines l"
        " WHERE l.order_id = {order}) AS lines_json"
    )
    history = (
        "SELECT h.order_id, json_group_array(json_array(h.created_at, h.amount)) AS refund_history"
        " FROM refunds h WHERE h.order_id IN ({ids}) GROUP BY h.order_id"
    )
    if kind == "refunded":
        in_window = _window_filter("w.created_at", "sqlite")
        keys = (
            f"SELECT w.refund_id AS k, w.order_id AS oid FROM refunds w WHERE {in_window}"
            " ORDER BY +w.order_id, +w.refund_id LIMIT -1"
        )
        return (
            f"WITH s AS ({keys})"  # picked once for the rows and the refund history, as below
            f" SELECT r.order_id AS order_id, {order_cols}, {lines.format(order='r.order_id')},"
            " rh.refund_history, r.refund_id, r.created_at AS refund_created_at, r.amount AS refund_amount,"
            " r.tax_amount AS refund_tax_amount, r.reason AS refund_reason,"
            " (SELECT json_group_array(json_array(rl.line_number, rl.quantity, rl.amount))"
            " FROM refund_lines rl WHERE rl.refund_id = r.refund_id) AS refunded_lines_json"
            " FROM s JOIN refunds r ON r.refund_id = s.k"
            " LEFT JOIN orders o ON o.order_id = r.order_id"
            f" LEFT JOIN ({history.format(ids='SELECT oid FROM s')}) rh ON rh.order_id = r.order_id"
        )
    in_window = _window_filter("w." + KINDS[kind][1], "sqlite")
    keys = f"SELECT w.order_id AS k FROM orders w WHERE {in_window} ORDER BY +w.order_id LIMIT -1"
    select = f"SELECT o.order_id, {order_cols}, {lines.format(order='o.order_id')}"
    if kind in ("placed", "paid"):
        return f"{select} FROM ({keys}) s JOIN orders o ON o.order_id = s.k"
    # The refund history is aggregated for the keys already picked (the CTE, used twice, is materialised
    # once) instead of scanning the window through the time index a second time.
    return (
        f"WITH s AS ({keys}) {select}, rh.refund_history FROM s JOIN orders o ON o.order_id = s.k"
        f" LEFT JOIN ({history.format(ids='SELECT k FROM s')}) rh ON rh.order_id = o.order_id"
    )


def _window_filter(column: str, dialect: str) -> str:
    if dialect in ("postgres", "mysql"):
        return f"{column} >= :start AND {column} < :end"
    return (
        f"{column} >= :scan_start AND {column} < :scan_end"
        f" AND (({column} >= :day AND {column} < :next_day)"
        f" OR (julianday({column}) >= :julian_start AND julianday({column}) < :julian_end))"
    )


def _default_unplaceable(dialect: str) -> str | None:
    """Rows whose event time has no date a partition could report them by (see ``sources.base``)."""
    if dialect == "sqlite":

        def bad(col: str) -> str:
            return (
                f"(typeof({col}) <> 'text'"
                f" OR coalesce(date(julianday(substr({col}, 1, 10))), '') <> substr({col}, 1, 10))"
            )

        cols = ("created_at", "paid_at", "fulfilled_at", "canceled_at")
        parts = [
            f"SELECT '{KINDS[k][0]}', order_id, NULL, '{c}', {c} FROM orders WHERE {c} IS NULL OR {bad(c)}"
            if c == "created_at"
            else f"SELECT '{KINDS[k][0]}', order_id, NULL, '{c}', {c} FROM orders"
            f" WHERE {c} IS NOT NULL AND {bad(c)}"
            for k, c in zip(("placed", "paid", "fulfilled", "canceled"), cols, strict=True)
        ]
        parts.append(
            f"SELECT '{REFUNDED}', order_id, refund_id, 'created_at', created_at FROM refunds"
            f" WHERE created_at IS NULL OR {bad('created_at')}"
        )
        return " UNION ALL ".join(parts)
    if dialect == "postgres":
        return (
            f"SELECT '{PLACED}', order_id, NULL, 'created_at', created_at::text FROM orders"
            " WHERE created_at IS NULL OR NOT isfinite(created_at)"
            f" UNION ALL SELECT '{PAID}', order_id, NULL, 'paid_at', paid_at::text FROM orders"
            " WHERE NOT isfinite(paid_at)"
            f" UNION ALL SELECT '{FULFILLED}', order_id, NULL, 'fulfilled_at', fulfilled_at::text FROM orders"
            " WHERE NOT isfinite(fulfilled_at)"
            f" UNION ALL SELECT '{CANCELED}', order_id, NULL, 'canceled_at', canceled_at::text FROM orders"
            " WHERE NOT isfinite(canceled_at)"
            f" UNION ALL SELECT '{REFUNDED}', order_id, refund_id, 'created_at', created_at::text"
            " FROM refunds"
            " WHERE created_at IS NULL OR NOT isfinite(created_at)"
        )
    return None


@dataclass(frozen=True)
class SqlQueries:
    """One query per event kind (see the module docstring for parameters and columns).

    Start from :meth:`default` and replace what you need::

        dataclasses.replace(SqlQueries.default("postgres"), paid="SELECT ... FROM shop.orders ...")

    ``unplaceable`` (optional) is the store-wide sweep: rows ``(event_name, order_id, refund_id, column,
    value)`` whose event time has no date at all; ``None`` skips the sweep.
    """

    placed: str
    paid: str
    fulfilled: str
    canceled: str
    refunded: str
    unplaceable: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "unplaceable" and value is None:
                continue
            if not isinstance(value, str) or not value.strip():
                raise OmnisendConfigError(
                    f"SqlQueries.{f.name} must be a non-empty SQL string, got {value!r}; "
                    "start from SqlQueries.default(dialect) and replace only the queries you change"
                )

    @classmethod
    def default(cls, dialect: str) -> SqlQueries:
        """The queries for the reference shop schema on ``"sqlite"``, ``"postgres"`` or ``"mysql"``."""
        if dialect not in ("sqlite", "postgres", "mysql"):
            raise OmnisendConfigError(
                f"there are no default queries for dialect {dialect!r} (only 'sqlite', 'postgres' and "
                "'mysql'); "
                "pass SqlQueries(...) written for your database"
            )
        return cls(
            **{kind: _default_query(kind, dialect) for kind in KINDS},
            unplaceable=_default_unplaceable(dialect),
        )


# -- parameters ---------------------------------------------------------------------------------------------


def window_parameters(window: PartitionWindow, dialect: str) -> dict[str, Any]:
    """Every parameter a query may use, for ``window`` (see the module docstring)."""
    from airflow_omnisend.events.timefmt import format_event_time

    start, end = window.start_utc, window.end_utc
    bounds: tuple[Any, Any] = (start, end)
    if dialect == "sqlite":
        bounds = (format_event_time(start), format_event_time(end))
    elif dialect == "mysql":  # DATETIME holds no offset: the bounds are naive UTC, as the session is
        bounds = (start.replace(tzinfo=None), end.replace(tzinfo=None))
    return {
        "start": bounds[0],
        "end": bounds[1],
        # Wall-clock text of an instant is within -12h..+14h of UTC: whole days around both bounds.
        "scan_start": (start - timedelta(days=1)).date().isoformat(),
        "scan_end": (end + timedelta(days=2)).date().isoformat(),
        "day": window.day.isoformat(),
        "next_day": window.end_day.isoformat(),
        "julian_start": start.timestamp() / 86400 + _JULIAN_UNIX_EPOCH - _MARGIN_DAYS,
        "julian_end": end.timestamp() / 86400 + _JULIAN_UNIX_EPOCH + _MARGIN_DAYS,
    }


def bind(query: str, params: dict[str, Any], paramstyle: str) -> tuple[str, Any]:
    """Rewrite ``:name`` parameters for the driver's DB-API ``paramstyle``; return (sql, parameters)."""
    names: list[str] = []

    def take(match: re.Match[str]) -> str:
        names.append(match.group(1))
        if paramstyle == "named":
            return match.group(0)
        if paramstyle == "qmark":
            return "?"
        if paramstyle == "pyformat":
            return f"%({match.group(1)})s"
        if paramstyle == "format":
            return "%s"
        return f":{len(names)}"  # numeric

    check_paramstyle(paramstyle)
    if paramstyle in ("pyformat", "format"):
        query = query.replace("%", "%%")
    sql = _PARAM.sub(take, query)
    if paramstyle in ("named", "pyformat"):
        return sql, {name: params[name] for name in names}
    return sql, [params[name] for name in names]


# -- dialects and cursors ---------------------------------------------------------------------------------


def detect_dialect(conn: Any) -> Dialect:
    """``"sqlite"``, ``"postgres"``, ``"mysql"`` or ``"generic"`` from the DB-API connection's driver."""
    module = type(conn).__module__.split(".")[0]
    if module == "sqlite3":
        return "sqlite"
    if module in ("psycopg", "psycopg2", "psycopg_pool"):
        return "postgres"
    if module in MYSQL_DRIVERS:
        return "mysql"
    return "generic"


def driver_paramstyle(conn: Any) -> str | None:
    """The ``paramstyle`` of the DB-API module ``conn`` comes from, or ``None`` when none declares one.

    The connection's class lives in a submodule (``snowflake.connector.connection``,
    ``mysql.connector.connection_cext``, ``google.cloud.bigquery.dbapi.connection``), so the module path
    is walked up to the nearest module that defines ``paramstyle`` (PEP 249 puts it on the driver module).
    """
    parts = type(conn).__module__.split(".")
    for end in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:end]))
        style = getattr(module, "paramstyle", None)
        if isinstance(style, str) and style in PARAMSTYLES:
            return style
    return None


def paramstyle_of(conn: Any, dialect: str, override: str | None = None) -> str:
    """The DB-API paramstyle to write the queries' parameters in (:func:`bind`) for ``conn``.

    ``override`` (the stores file's ``paramstyle``) wins; else SQLite's ``named`` and psycopg's
    ``pyformat``; else the driver module's own (:func:`driver_paramstyle`), ``qmark`` if it declares none.
    """
    if override is not None:
        return check_paramstyle(override)
    if dialect == "sqlite":
        return "named"
    if dialect == "postgres":
        return "pyformat"
    return driver_paramstyle(conn) or "qmark"


def check_paramstyle(paramstyle: Any) -> str:
    """``paramstyle`` when it is a PEP 249 paramstyle, else :class:`OmnisendConfigError`."""
    if paramstyle not in PARAMSTYLES:
        raise OmnisendConfigError(
            f"paramstyle must be one of {', '.join(PARAMSTYLES)} (PEP 249), got {paramstyle!r}"
        )
    return str(paramstyle)


def check_dialect(dialect: str) -> Dialect:
    """``dialect`` when it is one of :data:`DIALECTS`, else :class:`OmnisendConfigError`."""
    if dialect not in DIALECTS:
        raise OmnisendConfigError(f"dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}")
    return dialect  # type: ignore[return-value]
