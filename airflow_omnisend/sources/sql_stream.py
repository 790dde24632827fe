"""One partition from SQL: a query per event kind, streamed side by side, merged into one event stream.

Each kind's query returns its rows grouped by order (by refund, for ``refunded``). A group whose time is
in the window becomes one event (:func:`~.sql_rows.group_event`); a group whose time cannot be placed is
reported as a :class:`RowRejection` by the partition that owns it (:func:`~.base.place`); rows of one
group apart from each other are a query error (:class:`OmnisendConfigError`: it must ORDER BY), never two
half events. An id held by rows with different order (refund) values is a duplicate in the source: the
first is kept, each other row is rejected once (``duplicate_order_id`` / ``duplicate_refund_id``) and
the day goes on. The five streams are merged by ``(order id,
instant, lifecycle rank)``, so an order's events come out together, in lifecycle order, and each order
is prepared once for all of them (:class:`~.sql_rows.PreparedOrders`).

When SQLite text turns out not to be UTF-8 (:mod:`.sqlite_text`), a stream runs its query again
leniently: the groups it already emitted or reported are skipped, and each group holding undecodable
text becomes a rejection instead of an event.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

from airflow_omnisend.events.names import LIFECYCLE_RANK
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.sources.base import RowRejection, place
from airflow_omnisend.sources.sql_queries import KINDS, bind, paramstyle_of
from airflow_omnisend.sources.sql_rows import RowLayout, group_event
from airflow_omnisend.sources.sqlite_text import QueryReader, undecodable_column, undecodable_rejection

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Sequence
    from datetime import datetime

    from airflow_omnisend.events.partition import PartitionWindow
    from airflow_omnisend.sources.sql_queries import SqlQueries
    from airflow_omnisend.sources.sql_rows import PreparedOrders
    from airflow_omnisend.sources.sqlite_text import TextDecoding

#: ``(ids that are text, order id, instant, lifecycle rank)``: the order of the merged stream
MergeKey = tuple[bool, Any, "datetime", int]

_NO_KEY: Final = object()


@dataclass(frozen=True)
class Extraction:
    """What the streams of one partition's read share.

    :param params: the queries' parameters for ``window`` (:func:`~.sql_queries.window_parameters`).
    :param orders: the orders prepared last, with the mapper that prepares them.
    :param decoding: how the connection decodes text (one lenient switch serves every stream).
    """

    conn: Any
    dialect: str
    window: PartitionWindow
    params: dict[str, Any]
    reject: Callable[[RowRejection], None]
    fetch_size: int
    orders: PreparedOrders
    decoding: TextDecoding
    paramstyle: str | None = None  # the source's override of the driver's (``sql_queries.paramstyle_of``)


def merged_events(extraction: Extraction, queries: SqlQueries) -> Iterator[dict[str, Any]]:
    """The events of every kind, merged by :data:`MergeKey`."""
    streams = [KindStream(extraction, kind, getattr(queries, kind)).events() for kind in KINDS]
    try:
        for _key, event in heapq.merge(*streams, key=itemgetter(0)):
            yield event
    finally:
        for stream in streams:
            stream.close()


def order_sort_key(order_id: Any) -> tuple[bool, Any]:
    """Ints before text, like SQLite orders mixed storage classes; anything else compares as text."""
    if type(order_id) is int:
        return (False, order_id)
    return (True, order_id if type(order_id) is str else ("" if order_id is None else str(order_id)))


class KindStream:
    """The events of one kind (one query) in the window, in the query's order, each with its merge key."""

    def __init__(self, extraction: Extraction, kind: str, query: str) -> None:
        self.extraction = extraction
        self.kind = kind
        self.query = query
        self.event_name, self.time_column = KINDS[kind]
        self.rank = LIFECYCLE_RANK[self.event_name]
        self.day_labels = extraction.window.day_labels
        # the group being read: its key, its rows (empty: no event is made of it) and its placed time
        self._current: Any = _NO_KEY
        self._rows: list[Sequence[Any]] = []
        self._placed: tuple[datetime, str] | None = None
        self._seen: dict[Any, int] = {}  # group id -> hash of its first row's identity
        self._skip: frozenset[Any] = frozenset()  # groups done before a lenient re-read
        self._layout: RowLayout | None = None
        # what the group's first row holds (None: the group is a rejected duplicate), and the other
        # rows with its id already reported
        self._identity: tuple[Any, ...] | None = None
        self._reported: set[tuple[Any, ...] | None] = set()

    def events(self) -> Generator[tuple[MergeKey, dict[str, Any]], None, None]:
        extraction = self.extraction
        sql, args = bind(
            self.query,
            extraction.params,
            paramstyle_of(extraction.conn, extraction.dialect, extraction.paramstyle),
        )
        reader = QueryReader(extraction.conn, extraction.fetch_size, extraction.decoding, sql, args)
        try:
            try:
                rows = reader.start()
            except Exception as exc:
                raise OmnisendInputError(
                    f"the {self.kind!r} query failed: {type(exc).__name__}: {exc}"
                ) from exc
            self._layout = RowLayout.of(self.kind, reader.description)
            while rows:
                yield from self._take(rows, lenient=extraction.decoding.lenient)
                fetched = reader.fetch()
                if fetched is None:  # text that is not UTF-8: read again leniently
                    self._restart()
                    fetched = reader.reread()
                rows = fetched
            if self._rows:
                yield self._event()
        finally:
            reader.close()

    def _take(self, rows: list[Any], *, lenient: bool) -> Iterator[tuple[MergeKey, dict[str, Any]]]:
        """The events of the groups that ``rows`` complete (the last group may go on in the next rows).

        :param lenient: the text was read leniently, so a cell may hold undecodable bytes.
        """
        assert self._layout is not None
        group_at = self._layout.group
        for row in rows:
            key = row[group_at]
            if key == self._current:
                if not self._duplicate(row) and self._rows:
                    self._add(row, lenient=lenient)
                continue
            if self._rows:
                yield self._event()
            self._start(row, key, lenient=lenient)

    def _start(self, row: Sequence[Any], key: Any, *, lenient: bool) -> None:
        self._current = key
        self._rows = []
        self._identity = self._identity_of(row)
        self._reported = set()
        if lenient and key in self._skip:
            return
        seen = self._seen.get(key)
        if seen is not None:
            if seen == hash(self._identity):
                order = "refund" if self.kind == "refunded" else "order"
                columns = "order_id, refund_id" if self.kind == "refunded" else "order_id"
                raise OmnisendConfigError(
                    f"the {self.kind!r} query returned rows of {order} {key!r} apart from each other; "
                    f"it must ORDER BY {columns}, line_number"
                )
            self._reported.add(self._identity)
            self._reject_duplicate(row, "comes again with other values after other rows (the first is kept)")
            self._identity = None  # every further row of this group is part of the rejected one
            return
        self._seen[key] = hash(self._identity)
        placed = self._place(row, key)
        if placed is not None:
            self._placed = placed
            self._add(row, lenient=lenient)

    def _identity_of(self, row: Sequence[Any]) -> tuple[Any, ...] | None:
        """What every row of one group shares: the order's columns (and the refund's, for ``refunded``)."""
        assert self._layout is not None
        layout = self._layout
        return (layout.order(row), layout.refund(row) if layout.refund is not None else None)

    def _duplicate(self, row: Sequence[Any]) -> bool:
        """``row`` is another order (refund) with the group's id: report it once, keep the first."""
        if self._identity is None:
            return True
        identity = self._identity_of(row)
        if identity == self._identity:
            return False
        if identity not in self._reported:
            self._reported.add(identity)
            self._reject_duplicate(row, "is held by two different rows (the first is kept)")
        return True

    def _reject_duplicate(self, row: Sequence[Any], what: str) -> None:
        assert self._layout is not None
        refunded = self.kind == "refunded"
        column = "refund_id" if refunded else "order_id"
        key = row[self._layout.group]
        self.extraction.reject(
            RowRejection(
                event_name=self.event_name,
                order_id=row[self._layout.order_id],
                refund_id=self._refund_id(row),
                column=column,
                value=key,
                reason=(
                    f"{column} {key!r} {what}: make {column} unique in the source; a custom query must "
                    f"also ORDER BY {'order_id, refund_id' if refunded else 'order_id'}, line_number"
                ),
                code=f"duplicate_{column}",
            )
        )

    def _add(self, row: Sequence[Any], *, lenient: bool) -> None:
        """Add ``row`` to the group, or drop the whole group when the row holds undecodable text (the
        partition that holds the group reports it)."""
        if lenient and (column := undecodable_column(row)) is not None:
            self._rows = []
            assert self._layout is not None
            self.extraction.reject(
                undecodable_rejection(
                    self.event_name,
                    row[self._layout.order_id],
                    self._refund_id(row),
                    self._layout.names[column],
                    row[column],
                )
            )
        else:
            self._rows.append(row)

    def _place(self, row: Sequence[Any], key: Any) -> tuple[datetime, str] | None:
        """``(instant, canonical eventTime)`` of the group's time when it is in the window; reports the
        time when it cannot be placed and this partition owns it."""
        assert self._layout is not None
        extraction = self.extraction
        value = row[self._layout.time]
        placed = place(
            value,
            extraction.window,
            self.day_labels,
            exact_source=extraction.dialect == "postgres",
            times=extraction.orders.mapper.times,
        )
        if placed is None or isinstance(placed, tuple):
            return placed
        extraction.reject(
            RowRejection(
                event_name=self.event_name,
                order_id=row[self._layout.order_id],
                refund_id=self._refund_id(row),
                column=self.time_column,
                value=value,
                reason=str(placed),
            )
        )
        return None

    def _refund_id(self, row: Sequence[Any]) -> Any:
        assert self._layout is not None
        return row[self._layout.group] if self.kind == "refunded" else None

    def _restart(self) -> None:
        """Before a lenient re-read: skip the groups done, start the one being read over."""
        done = [k for k in self._seen if not (self._rows and k == self._current)]
        self._skip = frozenset(done)
        self._seen = {k: self._seen[k] for k in done}
        self._rows, self._current = [], _NO_KEY

    def _event(self) -> tuple[MergeKey, dict[str, Any]]:
        assert self._layout is not None
        assert self._placed is not None
        rows, placed = self._rows, self._placed
        event = group_event(self.kind, rows, self._layout, self.extraction.orders, placed)
        return (*order_sort_key(rows[0][self._layout.order_id]), placed[0], self.rank), event
