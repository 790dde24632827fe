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

**Custom queries.** :class:`SqlQueries` holds one query per event kind. A query may use these parameters,
written ``:name`` whatever the driver's paramstyle (they are rewritten for it):

=================== ===============================================================================
``:start, :end``    the window's UTC bounds: aware datetimes (PostgreSQL, other drivers) or
                    ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` text (SQLite)
``:scan_start,``    ``YYYY-MM-DD`` text bounds of a range of whole days that contains every
``:scan_end``       instant of the window written with any offset (for text columns)
``:day, :next_day`` the partition's day and the next, ``YYYY-MM-DD`` (a text time that cannot be parsed
                    is reported by the day it starts with, so include ``col >= :day AND col <
                    :next_day`` when you prefilter text columns)
``:julian_start,``  the window as Julian day numbers, widened by one second (SQLite ``julianday()``)
``:julian_end``
=================== ===============================================================================

It must return the columns below (names case-insensitive), ordered so that the rows of one order (of one
refund, for ``refunded``) come together - ``ORDER BY order_id, line_number`` (``ORDER BY order_id,
refund_id, line_number``): rows of one order arriving apart are an error, never two half events.

* every kind - required: :data:`REQUIRED_ORDER_COLUMNS`; optional (null when absent): the other columns of
  ``orders`` and ``order_lines`` (:data:`~airflow_omnisend.events.mapping.ORDER_COLUMNS`,
  :data:`~airflow_omnisend.events.mapping.LINE_COLUMNS`) and ``refund_history``: a JSON array of
  ``[created_at, amount]`` for every refund of the order, which the payment status as of each event needs.
  One row per order line (line columns null for an order without lines).
* ``refunded`` - also :data:`REQUIRED_REFUND_COLUMNS` (optional ``refund_tax_amount``, ``refund_reason``):
  one row per line of the order, with the refunded quantity and amount of that line (null when this refund
  does not touch it).
"""

from __future__ import annotations

import heapq
import logging
import re
import sys
import uuid
from dataclasses import dataclass, fields
from datetime import timedelta
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

from airflow_omnisend.events.mapping import (
    CANCELED,
    FULFILLED,
    LIFECYCLE_RANK,
    LINE_COLUMNS,
    ORDER_COLUMNS,
    PAID,
    PLACED,
    REFUNDED,
    OrderEventMapper,
    PreparedOrder,
    RefundedLine,
    parse_refund_history,
)
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.sources.base import RowRejection, place

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Sequence

    from airflow_omnisend.events.partition import PartitionWindow

log = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgres", "generic"]
DIALECTS: Final = ("sqlite", "postgres", "generic")

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
    order columns per line: fetching cells is most of the extraction time. ``placed`` and ``paid`` carry
    no ``refund_history``: no refund can precede an order's placement or payment, and leaving the
    aggregation out saves a tenth of the extraction time.
    """
    return _postgres_query(kind) if dialect == "postgres" else _sqlite_query(kind)


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


def _sqlite_query(kind: str) -> str:
    """SQLite: the window's keys are picked through the time index and sorted first (a narrow sort), then
    the wide rows are read in that order; sorting the wide rows instead costs a quarter of the query.
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
            f"SELECT w.refund_id AS k FROM refunds w WHERE {in_window}"
            " ORDER BY +w.order_id, +w.refund_id LIMIT -1"
        )
        ids = f"SELECT w.order_id FROM refunds w WHERE {in_window}"
        return (
            f"SELECT r.order_id AS order_id, {order_cols}, {lines.format(order='r.order_id')},"
            " rh.refund_history, r.refund_id, r.created_at AS refund_created_at, r.amount AS refund_amount,"
            " r.tax_amount AS refund_tax_amount, r.reason AS refund_reason,"
            " (SELECT json_group_array(json_array(rl.line_number, rl.quantity, rl.amount))"
            " FROM refund_lines rl WHERE rl.refund_id = r.refund_id) AS refunded_lines_json"
            f" FROM ({keys}) s JOIN refunds r ON r.refund_id = s.k"
            " LEFT JOIN orders o ON o.order_id = r.order_id"
            f" LEFT JOIN ({history.format(ids=ids)}) rh ON rh.order_id = r.order_id"
        )
    in_window = _window_filter("w." + KINDS[kind][1], "sqlite")
    keys = f"SELECT w.order_id AS k FROM orders w WHERE {in_window} ORDER BY +w.order_id LIMIT -1"
    select = f"SELECT o.order_id, {order_cols}, {lines.format(order='o.order_id')}"
    if kind in ("placed", "paid"):
        return f"{select} FROM ({keys}) s JOIN orders o ON o.order_id = s.k"
    ids = f"SELECT w.order_id FROM orders w WHERE {in_window}"
    return (
        f"{select}, rh.refund_history FROM ({keys}) s JOIN orders o ON o.order_id = s.k"
        f" LEFT JOIN ({history.format(ids=ids)}) rh ON rh.order_id = o.order_id"
    )


def _window_filter(column: str, dialect: str) -> str:
    if dialect == "postgres":
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
        """The queries for the reference shop schema on ``"sqlite"`` or ``"postgres"``."""
        if dialect not in ("sqlite", "postgres"):
            raise OmnisendConfigError(
                f"there are no default queries for dialect {dialect!r} (only 'sqlite' and 'postgres'); "
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
    return {
        "start": format_event_time(start) if dialect == "sqlite" else start,
        "end": format_event_time(end) if dialect == "sqlite" else end,
        # Wall-clock text of an instant is within -12h..+14h of UTC: whole days around both bounds.
        "scan_start": (start - timedelta(days=1)).date().isoformat(),
        "scan_end": (end + timedelta(days=2)).date().isoformat(),
        "day": window.day.isoformat(),
        "next_day": (window.day + timedelta(days=1)).isoformat(),
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

    if paramstyle not in ("named", "qmark", "pyformat", "format", "numeric"):
        raise OmnisendConfigError(f"unsupported DB-API paramstyle {paramstyle!r}")
    if paramstyle in ("pyformat", "format"):
        query = query.replace("%", "%%")
    sql = _PARAM.sub(take, query)
    if paramstyle in ("named", "pyformat"):
        return sql, {name: params[name] for name in names}
    return sql, [params[name] for name in names]


# -- dialects and cursors ---------------------------------------------------------------------------------


def detect_dialect(conn: Any) -> Dialect:
    """``"sqlite"``, ``"postgres"`` or ``"generic"`` from the DB-API connection's driver."""
    module = type(conn).__module__.split(".")[0]
    if module == "sqlite3":
        return "sqlite"
    if module in ("psycopg", "psycopg2", "psycopg_pool"):
        return "postgres"
    return "generic"


def _paramstyle(conn: Any, dialect: str) -> str:
    if dialect == "sqlite":
        return "named"
    if dialect == "postgres":
        return "pyformat"
    module = sys.modules.get(type(conn).__module__.split(".")[0])
    return str(getattr(module, "paramstyle", "qmark"))


def _open_cursor(conn: Any, dialect: str, fetch_size: int) -> Any:
    """A streaming cursor that yields plain tuples: server-side on PostgreSQL (bounded memory)."""
    module = type(conn).__module__.split(".")[0]
    name = f"omnisend_{uuid.uuid4().hex[:16]}"
    if module == "psycopg":
        from psycopg.rows import tuple_row

        cur = conn.cursor(name=name, row_factory=tuple_row)
        cur.itersize = fetch_size
        return cur
    if module == "psycopg2":
        import psycopg2.extensions

        cur = conn.cursor(name=name, cursor_factory=psycopg2.extensions.cursor)
        cur.itersize = fetch_size
        return cur
    cur = conn.cursor()
    cur.arraysize = fetch_size
    return cur


# -- streaming ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where the mapper's columns are in one query's rows (-1: not returned)."""

    order: Callable[[Sequence[Any]], tuple[Any, ...]]
    line: Callable[[Sequence[Any]], tuple[Any, ...]]
    refund: Callable[[Sequence[Any]], tuple[Any, ...]] | None
    group: int
    order_id: int
    time: int
    line_present: tuple[int, int]
    lines_json: int
    history: int
    refunded: tuple[int, int]
    refunded_json: int


def _getter(positions: list[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    if all(p >= 0 for p in positions):
        get = itemgetter(*positions)
        return get if len(positions) > 1 else (lambda row: (get(row),))
    return lambda row: tuple([row[p] if p >= 0 else None for p in positions])


def _layout(kind: str, description: Sequence[Sequence[Any]] | None) -> _Layout:
    if not description:
        raise OmnisendConfigError(f"the {kind!r} query returned no result columns (is it a SELECT?)")
    names = [str(d[0]).lower() for d in description]
    index = {name: i for i, name in reversed(list(enumerate(names)))}
    required = list(REQUIRED_ORDER_COLUMNS)
    if "lines_json" not in index:
        required += REQUIRED_LINE_COLUMNS
    if kind == "refunded":
        required += REQUIRED_REFUND_COLUMNS
        if "refunded_lines_json" not in index:
            required += REQUIRED_REFUNDED_LINE_COLUMNS
    missing = [c for c in required if c not in index]
    if missing:
        raise OmnisendConfigError(
            f"the {kind!r} query does not return the required column(s) {', '.join(missing)}; "
            f"it returned: {', '.join(names)} (see airflow_omnisend.sources.sql for the columns)"
        )

    def pos(name: str) -> int:
        return index.get(name, -1)

    refund = _getter([pos(c) for c in REFUND_QUERY_COLUMNS]) if kind == "refunded" else None
    return _Layout(
        order=_getter([pos(c) for c in ORDER_COLUMNS]),
        line=_getter([pos(c) for c in LINE_COLUMNS]),
        refund=refund,
        group=pos("refund_id") if kind == "refunded" else pos("order_id"),
        order_id=pos("order_id"),
        time=pos(KINDS[kind][1]),
        line_present=(pos("line_number"), pos("product_id")),
        lines_json=pos("lines_json"),
        history=pos("refund_history"),
        refunded=(pos("refunded_quantity"), pos("refunded_amount")),
        refunded_json=pos("refunded_lines_json"),
    )


def _json_rows(value: Any, columns: tuple[str, ...], what: str, key: Any) -> list[Any]:
    """A JSON-array column (text, or already decoded by the driver) of arrays in ``columns`` order or
    objects keyed by column name; null is an empty list. A malformed one is a query error, not dirt."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise OmnisendInputError(f"{what} of {key!r} is not JSON ({exc}): {str(value)[:200]!r}") from None
    if type(value) is not list:
        raise OmnisendInputError(f"{what} of {key!r} is not a JSON array: {str(value)[:200]!r}")
    if value and type(value[0]) is dict:
        value = [tuple(map(item.get, columns)) if type(item) is dict else item for item in value]
    width = len(columns)
    rows: list[Any] = value
    if all(map(isinstance, rows, repeat(_LISTS))) and all(map(width.__eq__, map(len, rows))):  # C loops
        return rows
    bad = next(item for item in rows if type(item) not in (list, tuple) or len(item) != width)
    raise OmnisendInputError(
        f"{what} of {key!r}: {str(bad)[:200]!r} is not an array of {width} values "
        f"({', '.join(columns)}) or an object with those keys"
    )


_LISTS: Final = (list, tuple)
_REFUNDED_JSON_COLUMNS: Final = ("line_number", "quantity", "amount")
_NO_KEY: Final = object()


def _order_sort_key(order_id: Any) -> tuple[bool, Any]:
    # ints before text, like SQLite orders mixed storage classes; anything else compares as text
    if type(order_id) is int:
        return (False, order_id)
    return (True, order_id if type(order_id) is str else ("" if order_id is None else str(order_id)))


def _stream_kind(
    conn: Any,
    dialect: str,
    kind: str,
    query: str,
    params: dict[str, Any],
    mapper: OrderEventMapper,
    window: PartitionWindow,
    reject: Callable[[RowRejection], None],
    fetch_size: int,
    memo: _Memo,
) -> Generator[tuple[tuple[Any, ...], dict[str, Any]], None, None]:
    """Events of one kind in ``window``, each with its merge key ``(order, instant, lifecycle rank)``."""
    event_name, time_column = KINDS[kind]
    rank = LIFECYCLE_RANK[event_name]
    exact = dialect == "postgres"
    day_label = window.day.isoformat()
    times = mapper.times
    sql, args = bind(query, params, _paramstyle(conn, dialect))
    cur = _open_cursor(conn, dialect, fetch_size)
    try:
        try:
            cur.execute(sql, args)
            rows = cur.fetchmany(fetch_size)
        except Exception as exc:
            raise OmnisendInputError(f"the {kind!r} query failed: {type(exc).__name__}: {exc}") from exc
        layout = _layout(kind, cur.description)
        group_i, time_i, oid_i = layout.group, layout.time, layout.order_id
        start, end = window.start_utc, window.end_utc
        instant_of, canonical_of = times.instant, times.canonical
        seen: set[Any] = set()
        group: list[Sequence[Any]] = []
        current: Any = _NO_KEY
        placed: tuple[Any, str] | str | None = None
        while rows:
            for row in rows:
                key = row[group_i]
                if key == current:
                    if group:
                        group.append(row)
                    continue
                if group:
                    yield _emit(kind, group, layout, mapper, placed, rank, memo)
                current = key
                if key in seen:
                    raise OmnisendInputError(
                        f"the {kind!r} query returned rows of {'refund' if kind == 'refunded' else 'order'} "
                        f"{key!r} apart from each other; it must ORDER BY "
                        f"{'order_id, refund_id' if kind == 'refunded' else 'order_id'}, line_number"
                    )
                seen.add(key)
                value = row[time_i]
                at = instant_of(value)  # the common case of place(), inline: this runs once per event
                if at is not None:
                    if start <= at < end:
                        placed = (at, canonical_of(value) or "")
                        group = [row]
                    else:
                        group = []
                    continue
                group = []
                placed = place(value, window, day_label, exact_source=exact, times=times)
                if placed is not None:
                    reject(
                        RowRejection(
                            event_name=event_name,
                            order_id=row[oid_i],
                            refund_id=key if kind == "refunded" else None,
                            column=time_column,
                            value=value,
                            reason=str(placed),
                        )
                    )
            rows = cur.fetchmany(fetch_size)
        if group:
            yield _emit(kind, group, layout, mapper, placed, rank, memo)
    finally:
        cur.close()


#: order_id -> (order tuple, raw lines value, lines, PreparedOrder) of the orders seen last
_Memo = dict[Any, tuple[tuple[Any, ...], Any, list[Any], PreparedOrder]]
_MEMO_SIZE = 64


def _emit(
    kind: str,
    group: list[Sequence[Any]],
    layout: _Layout,
    mapper: OrderEventMapper,
    placed: Any,
    rank: int,
    memo: _Memo,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    instant, canonical = placed
    first = group[0]
    order = layout.order(first)
    get_line = layout.line
    lines: list[Any]
    # The events of one order arrive together (the streams are merged by order): prepare it once.
    raw: Any = first[layout.lines_json] if layout.lines_json >= 0 else None
    if raw is None and layout.lines_json < 0:
        line_i, product_i = layout.line_present
        raw = tuple(
            get_line(row)
            for row in group
            if (line_i >= 0 and row[line_i] is not None) or (product_i >= 0 and row[product_i] is not None)
        )
    order_id = order[0]
    hit = memo.get(order_id)
    if hit is not None and hit[0] == order and hit[1] == raw:
        lines, prepared = hit[2], hit[3]
    else:
        lines = _json_rows(raw, LINE_COLUMNS, "lines_json", order_id) if layout.lines_json >= 0 else list(raw)
        prepared = mapper.prepare(order, lines)
        memo[order_id] = (order, raw, lines, prepared)
        if len(memo) > _MEMO_SIZE:
            del memo[next(iter(memo))]
    history = parse_refund_history(first[layout.history]) if layout.history >= 0 else None
    if kind == "refunded":
        assert layout.refund is not None
        refund = layout.refund(first)
        refunded: list[RefundedLine]
        if layout.refunded_json >= 0:
            by_number = {str(line[0]): line for line in lines}
            refunded = [
                (by_number.get(str(number)), qty, amount)
                for number, qty, amount in _json_rows(
                    first[layout.refunded_json], _REFUNDED_JSON_COLUMNS, "refunded_lines_json", refund[0]
                )
            ]
        else:
            qty_i, amount_i = layout.refunded
            refunded = [
                (get_line(row), row[qty_i], row[amount_i])
                for row in group
                if row[qty_i] is not None or row[amount_i] is not None
            ]
        event = mapper.refund_event(
            prepared,
            lines,
            refund,
            refunded,
            event_time=canonical,
            as_of=instant,
            history=history,
            time_is_canonical=True,
        )
        if order_id is None:
            order_id = refund[1]
    else:
        event = mapper.order_event_at(KINDS[kind][0], prepared, canonical, instant, history)
    if type(order_id) is str:
        return ((True, order_id), instant, rank), event
    return (_order_sort_key(order_id), instant, rank), event


def iter_sql_events(
    conn: Any,
    dialect: str | None,
    store_id: str,
    window: PartitionWindow,
    *,
    queries: SqlQueries | None = None,
    reject: Callable[[RowRejection], None] | None = None,
    fetch_size: int = 2000,
) -> Iterator[dict[str, Any]]:
    """The events of ``window`` from a DB-API connection, without Airflow.

    The five queries stream side by side and are merged by order, so an order's events of the day come
    out together, in lifecycle order. ``reject`` receives the rows that cannot be placed (default: they
    are counted in the log only - pass a callback to keep them).
    """
    dialect = _check_dialect(dialect or detect_dialect(conn))
    queries = queries or SqlQueries.default(dialect)
    mapper = OrderEventMapper(store_id)
    rejected = [0]

    def count_only(rejection: RowRejection) -> None:
        rejected[0] += 1
        log.warning("row cannot be placed in a partition: %s", rejection.to_dict())

    sink = reject or count_only
    params = window_parameters(window, dialect)
    memo: _Memo = {}
    streams: list[Generator[tuple[tuple[Any, ...], dict[str, Any]], None, None]] = [
        _stream_kind(
            conn, dialect, kind, getattr(queries, kind), params, mapper, window, sink, fetch_size, memo
        )
        for kind in KINDS
    ]
    try:
        for _key, event in heapq.merge(*streams, key=itemgetter(0)):
            yield event
    finally:
        for stream in streams:
            stream.close()
        _end_read(conn)


def find_unplaceable_sql(
    conn: Any, dialect: str | None, queries: SqlQueries | None, reject: Callable[[RowRejection], None]
) -> int:
    """Run the store-wide sweep of ``queries.unplaceable``, reporting each row to ``reject``; return the
    count."""
    dialect = _check_dialect(dialect or detect_dialect(conn))
    queries = queries or SqlQueries.default(dialect)
    if queries.unplaceable is None:
        log.info("no 'unplaceable' query: skipping the sweep for rows without a usable date")
        return 0
    cur = _open_cursor(conn, dialect, 1000)
    count = 0
    try:
        cur.execute(queries.unplaceable)
        while rows := cur.fetchmany(1000):
            for event_name, order_id, refund_id, column, value in rows:
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
        cur.close()
        _end_read(conn)
    return count


def check_queries(conn: Any, dialect: str | None, queries: SqlQueries) -> None:
    """Run every query over an empty window and check its columns; raise :class:`OmnisendConfigError`
    naming the query and the missing columns. Cheap: call it before a backfill starts."""
    from airflow_omnisend.events.partition import PartitionWindow

    dialect = _check_dialect(dialect or detect_dialect(conn))
    probe = PartitionWindow.for_day("1970-01-02", "UTC")
    params = window_parameters(probe, dialect)
    params.update(end=params["start"], scan_end=params["scan_start"], julian_end=params["julian_start"])
    params.update(next_day=params["day"])
    try:
        for kind in KINDS:
            sql, args = bind(getattr(queries, kind), params, _paramstyle(conn, dialect))
            cur = _open_cursor(conn, dialect, 10)
            try:
                try:
                    cur.execute(sql, args)
                    cur.fetchmany(1)
                except Exception as exc:
                    raise OmnisendConfigError(
                        f"the {kind!r} query failed: {type(exc).__name__}: {exc}"
                    ) from exc
                _layout(kind, cur.description)
            finally:
                cur.close()
    finally:
        _end_read(conn)


def _check_dialect(dialect: str) -> Dialect:
    if dialect not in DIALECTS:
        raise OmnisendConfigError(f"dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}")
    return dialect  # type: ignore[return-value]


def _end_read(conn: Any) -> None:
    """End the read transaction (PostgreSQL server-side cursors live in one); harmless elsewhere."""
    try:
        if not getattr(conn, "autocommit", False):
            conn.rollback()
    except Exception:  # a closed or broken connection has nothing left to end
        log.debug("rollback after reading failed", exc_info=True)


# -- sources ----------------------------------------------------------------------------------------------


class DbApiOrderSource:
    """Orders from a DB-API connection (no Airflow): :class:`~airflow_omnisend.sources.base.OrderSource`.

    :param connection: an open DB-API connection (left open), or a zero-argument callable that opens one
        (closed after each use).
    :param dialect: ``"sqlite"``, ``"postgres"`` or ``"generic"`` (custom queries only); default: from
        the driver.
    :param queries: custom queries; default: :meth:`SqlQueries.default` for the dialect.
    :param fetch_size: rows per ``fetchmany`` and per server-side fetch: the memory bound.
    """

    def __init__(
        self,
        connection: Any,
        *,
        dialect: str | None = None,
        queries: SqlQueries | None = None,
        fetch_size: int = 2000,
    ) -> None:
        if dialect is not None:
            _check_dialect(dialect)
        if queries is None and dialect == "generic":
            raise OmnisendConfigError(
                "dialect 'generic' has no default queries: pass queries=SqlQueries(...)"
            )
        if not isinstance(fetch_size, int) or fetch_size < 1:
            raise OmnisendConfigError(f"fetch_size must be a positive int, got {fetch_size!r}")
        self._connection = connection
        self.dialect = dialect
        self.queries = queries
        self.fetch_size = fetch_size

    def _connect(self) -> tuple[Any, bool]:
        if callable(self._connection) and not hasattr(self._connection, "cursor"):
            return self._connection(), True
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
            )
        finally:
            if owned:
                conn.close()

    def find_unplaceable(self, reject: Callable[[RowRejection], None]) -> int:
        conn, owned = self._connect()
        try:
            return find_unplaceable_sql(conn, self.dialect, self.queries, reject)
        finally:
            if owned:
                conn.close()

    def check_queries(self) -> None:
        conn, owned = self._connect()
        try:
            check_queries(
                conn, self.dialect, self.queries or SqlQueries.default(self.dialect or detect_dialect(conn))
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
    ) -> None:
        if not isinstance(conn_id, str) or not conn_id:
            raise OmnisendConfigError(f"conn_id must name an Airflow SQL connection, got {conn_id!r}")
        super().__init__(self._open, dialect=dialect, queries=queries, fetch_size=fetch_size)
        self.conn_id = conn_id

    def _open(self) -> Any:
        from airflow.sdk import BaseHook

        hook = BaseHook.get_connection(self.conn_id).get_hook()  # type: ignore[no-untyped-call]
        if not hasattr(hook, "get_conn"):
            raise OmnisendConfigError(
                f"connection {self.conn_id!r} gives a {type(hook).__name__}, not a SQL hook with get_conn()"
            )
        return hook.get_conn()
