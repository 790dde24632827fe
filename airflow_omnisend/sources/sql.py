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

The queries themselves, their parameters and the columns they must return: :mod:`.sql_queries`.
"""

from __future__ import annotations

import heapq
import logging
import re
import uuid
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

import orjson

from airflow_omnisend.events.columns import LINE_COLUMNS, ORDER_COLUMNS
from airflow_omnisend.events.mapping import OrderEventMapper, PreparedOrder, RefundedLine
from airflow_omnisend.events.names import LIFECYCLE_RANK
from airflow_omnisend.events.statuses import parse_refund_history
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.sources.base import RowRejection, place
from airflow_omnisend.sources.sql_queries import (
    DIALECTS,
    KINDS,
    PARAMETERS,
    REFUND_QUERY_COLUMNS,
    REQUIRED_LINE_COLUMNS,
    REQUIRED_ORDER_COLUMNS,
    REQUIRED_REFUND_COLUMNS,
    REQUIRED_REFUNDED_LINE_COLUMNS,
    Dialect,
    SqlQueries,
    _check_dialect,
    _paramstyle,
    bind,
    detect_dialect,
    window_parameters,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Sequence

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
    "find_unplaceable_sql",
    "iter_sql_events",
    "window_parameters",
]

log = logging.getLogger(__name__)


# -- cursors ----------------------------------------------------------------------------------------------


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


def _fetch_batch(conn: Any, fetch_size: int) -> int:
    """Rows per ``fetchmany``: ``fetch_size``, but at most :data:`_IN_PROCESS_BATCH` from ``sqlite3``.

    A ``fetchmany`` from a server is a round trip, so it fetches as many rows as the bound allows; from
    SQLite it only steps the statement in this process, and rows mapped soon after they were made are
    still in the CPU cache (five streams holding 2,000 fetched rows each kept ~30 MB of objects alive):
    64-row fetches made the extraction ~4 us per event faster (bench_prep, 200k orders) and the peak
    RSS 30 MB smaller.
    """
    if type(conn).__module__.split(".")[0] == "sqlite3":
        return min(fetch_size, _IN_PROCESS_BATCH)
    return fetch_size


_IN_PROCESS_BATCH: Final = 64


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
        if len(positions) > 1 and positions == list(range(positions[0], positions[0] + len(positions))):
            # side by side, as the default queries return the order's 29 columns: a tuple row is sliced
            # (~80 ns; picking 29 items one by one costs ~240 ns, once per event)
            window = slice(positions[0], positions[0] + len(positions))

            def get_window(row: Sequence[Any]) -> tuple[Any, ...]:
                return row[window] if type(row) is tuple else get(row)

            return get_window
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
    for row in rows:  # the common case (a few decoded arrays) first: cheaper than setting up the C loops
        if type(row) is not list or len(row) != width:
            break
    else:
        return rows
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
    decoding: _TextDecoding,
) -> Generator[tuple[tuple[Any, ...], dict[str, Any]], None, None]:
    """Events of one kind in ``window``, each with its merge key ``(order, instant, lifecycle rank)``.

    When SQLite text turns out not to be UTF-8, the query is read again leniently (:class:`_TextDecoding`):
    the groups already emitted or reported are skipped, and each group holding undecodable text becomes a
    :class:`RowRejection` instead of an event.
    """
    event_name, time_column = KINDS[kind]
    rank = LIFECYCLE_RANK[event_name]
    exact = dialect == "postgres"
    day_label = window.day.isoformat()
    times = mapper.times
    sql, args = bind(query, params, _paramstyle(conn, dialect))
    cur = _open_cursor(conn, dialect, fetch_size)
    batch = _fetch_batch(conn, fetch_size)
    skip: frozenset[Any] = frozenset()  # groups done before a lenient re-read
    try:
        try:
            cur.execute(sql, args)
            rows = _fetch(cur, batch, decoding)
            if rows is None:
                cur, rows = _reread(conn, dialect, fetch_size, batch, cur, sql, args, decoding)
        except Exception as exc:
            raise OmnisendInputError(f"the {kind!r} query failed: {type(exc).__name__}: {exc}") from exc
        layout = _layout(kind, cur.description)
        names = [str(d[0]).lower() for d in cur.description]
        group_i, time_i, oid_i = layout.group, layout.time, layout.order_id
        start, end = window.start_utc, window.end_utc
        lookup = times.lookup
        seen: set[Any] = set()
        group: list[Sequence[Any]] = []
        current: Any = _NO_KEY
        placed_at: Any = None  # instant and canonical eventTime of the group's event
        placed_time = ""
        while rows:
            lenient = decoding.lenient  # after a switch, any stream's text may hold undecodable bytes
            for row in rows:
                key = row[group_i]
                if key == current:
                    if group:
                        if lenient and (column := _undecodable_column(row)) is not None:
                            group = []  # a later row of the group: none of the group is sent
                            reject(_undecodable_rejection(event_name, kind, key, row, oid_i, names, column))
                        else:
                            group.append(row)
                    continue
                if group:
                    yield _emit(kind, group, layout, mapper, placed_at, placed_time, rank, memo)
                current = key
                if lenient and key in skip:
                    group = []
                    continue
                if key in seen:
                    raise OmnisendInputError(
                        f"the {kind!r} query returned rows of {'refund' if kind == 'refunded' else 'order'} "
                        f"{key!r} apart from each other; it must ORDER BY "
                        f"{'order_id, refund_id' if kind == 'refunded' else 'order_id'}, line_number"
                    )
                seen.add(key)
                value = row[time_i]
                placed = lookup(value)  # the common case of place(), inline: this runs once per event
                if placed is not None:
                    if start <= placed[0] < end:
                        placed_at, placed_time = placed
                        group = [row]
                        if lenient and (column := _undecodable_column(row)) is not None:
                            group = []  # reported by the partition that holds it, as here
                            reject(_undecodable_rejection(event_name, kind, key, row, oid_i, names, column))
                    else:
                        group = []
                    continue
                group = []
                reason = place(value, window, day_label, exact_source=exact, times=times)
                if reason is not None:
                    reject(
                        RowRejection(
                            event_name=event_name,
                            order_id=row[oid_i],
                            refund_id=key if kind == "refunded" else None,
                            column=time_column,
                            value=value,
                            reason=str(reason),
                        )
                    )
            rows = _fetch(cur, batch, decoding)
            if rows is None:
                # read again leniently: skip what is done; a group still being collected starts over
                skip = frozenset(seen - {current}) if group else frozenset(seen)
                seen = set(skip)
                group, current = [], _NO_KEY
                cur, rows = _reread(conn, dialect, fetch_size, batch, cur, sql, args, decoding)
        if group:
            yield _emit(kind, group, layout, mapper, placed_at, placed_time, rank, memo)
    finally:
        cur.close()


# -- text that is not UTF-8 (SQLite) --------------------------------------------------------------------


class _TextDecoding:
    """How a SQLite connection decodes text: strictly (its own fast default) until a cell is not UTF-8.

    SQLite stores whatever bytes it is given; ``sqlite3`` then fails the whole fetch (``Could not decode to
    UTF-8 column ...``), which would end the partition on one dirty row. Decoding every cell through a
    Python callable would cost every row, so the connection switches only when that happens, for the rest
    of the extraction: undecodable bytes become lone surrogates (``surrogateescape``), which the streams
    find and report. The connection's own decoder is restored at the end.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lenient = False
        self._saved: Any = None

    def undecodable(self, exc: Exception) -> bool:
        return (
            type(exc).__module__.split(".")[0] == "sqlite3"
            and "Could not decode to UTF-8" in str(exc)
            and hasattr(self.conn, "text_factory")
        )

    def switch(self, *, announce: bool = True) -> None:
        if not self.lenient:
            self._saved = self.conn.text_factory
            self.conn.text_factory = _lenient_text
            self.lenient = True
            if announce:
                log.warning("some text in the shop database is not UTF-8: reading it again leniently")

    def restore(self) -> None:
        if self.lenient:
            self.conn.text_factory = self._saved
            self.lenient = False


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


_UNDECODED: Final = re.compile("[\udc80-\udcff]")


def _fetch(cur: Any, batch: int, decoding: _TextDecoding) -> list[Any] | None:
    """The next rows, or None when their text is not UTF-8 (the caller reads again leniently)."""
    try:
        rows: list[Any] = cur.fetchmany(batch)
    except Exception as exc:
        if not decoding.undecodable(exc):
            raise
        return None
    return rows


def _reread(
    conn: Any,
    dialect: str,
    fetch_size: int,
    batch: int,
    cur: Any,
    sql: str,
    args: Any,
    decoding: _TextDecoding,
) -> tuple[Any, list[Any]]:
    """Switch to lenient decoding and run the query again: its new cursor and first rows."""
    decoding.switch()
    cur.close()
    again = _open_cursor(conn, dialect, fetch_size)
    again.execute(sql, args)
    return again, again.fetchmany(batch)


def _undecodable_column(row: Sequence[Any]) -> int | None:
    for i, cell in enumerate(row):
        if type(cell) is str and not cell.isascii() and _UNDECODED.search(cell):
            return i
    return None


def _undecodable_rejection(
    event_name: str, kind: str, key: Any, row: Sequence[Any], oid_i: int, names: list[str], column: int
) -> RowRejection:
    cell = row[column]
    match = _UNDECODED.search(cell)
    at = match.start() if match else 0
    start, end = max(0, at - 60), at + 60  # lines_json holds all the lines: show where the bytes are
    shown = cell[start:end].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    shown = ("..." if start else "") + shown + ("..." if end < len(cell) else "")
    return RowRejection(
        event_name=event_name,
        order_id=row[oid_i],
        refund_id=key if kind == "refunded" else None,
        column=names[column],
        value=shown,
        code="text_not_utf8",
        reason=f"column {names[column]!r} holds text that is not UTF-8 ({shown!r}); "
        "fix its encoding in the shop database and rerun the partition",
    )


#: order_id -> (order tuple, raw lines value, lines, PreparedOrder) of the orders seen last
_Memo = dict[Any, tuple[tuple[Any, ...], Any, list[Any], PreparedOrder]]
#: FIFO, not emptied when full: a memo that grows and is then emptied makes the live objects swing by
#: ~1,000 containers, which triggered a gen-0 collection every ~90 events. 16 orders keep 99% of the hits
#: of 64 and were ~0.5 us/event faster than 32 (fewer objects to keep in cache and to free cold)
_MEMO_SIZE = 16


def _emit(
    kind: str,
    group: list[Sequence[Any]],
    layout: _Layout,
    mapper: OrderEventMapper,
    instant: Any,
    canonical: str,
    rank: int,
    memo: _Memo,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The event of one group of rows, with its merge key ``(is_text, order_id, instant, lifecycle rank)``
    (ids that are ints sort before text ones, as in SQLite; see :func:`_order_sort_key`)."""
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
        if len(memo) >= _MEMO_SIZE:
            del memo[next(iter(memo))]
        memo[order_id] = (order, raw, lines, prepared)
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
        event = mapper.order_event(
            KINDS[kind][0],
            prepared,
            event_time=canonical,
            as_of=instant,
            history=history,
            time_is_canonical=True,
        )
    if type(order_id) is str:
        return (True, order_id, instant, rank), event
    text_first, sort_id = _order_sort_key(order_id)
    return (text_first, sort_id, instant, rank), event


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
    decoding = _TextDecoding(conn)
    streams: list[Generator[tuple[tuple[Any, ...], dict[str, Any]], None, None]] = [
        _stream_kind(
            conn,
            dialect,
            kind,
            getattr(queries, kind),
            params,
            mapper,
            window,
            sink,
            fetch_size,
            memo,
            decoding,
        )
        for kind in KINDS
    ]
    try:
        for _key, event in heapq.merge(*streams, key=itemgetter(0)):
            yield event
    finally:
        for stream in streams:
            stream.close()
        decoding.restore()
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
    decoding = _TextDecoding(conn)
    if dialect == "sqlite" and hasattr(conn, "text_factory"):
        decoding.switch(announce=False)  # the sweep returns few rows: decode them all leniently
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
        decoding.restore()
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
    :param fetch_size: rows per ``fetchmany`` and per server-side fetch: the memory bound (from an
        in-process ``sqlite3`` connection, fetches take at most 64 rows: see :func:`_fetch_batch`).
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
