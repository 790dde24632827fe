"""The rows of the SQL source's queries: where the mapper's columns are, and one group of rows -> one event.

A query returns columns by name (:mod:`.sql_queries` lists them); :class:`RowLayout` finds them once per
query, and picks the mapper's tuples (:mod:`airflow_omnisend.events.columns`) out of each row. The rows
of one order (of one refund, for ``refunded``) form a group; :func:`group_event` makes its event, its
lines either from the ``lines_json`` column or from one row per line.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

import orjson

from airflow_omnisend.events.columns import (
    LINE_COLUMNS,
    ORDER_COLUMNS,
    LineColumn,
    OrderColumn,
    RefundColumn,
)
from airflow_omnisend.events.statuses import parse_refund_history
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.sources.sql_queries import (
    KINDS,
    REFUND_QUERY_COLUMNS,
    REQUIRED_LINE_COLUMNS,
    REQUIRED_ORDER_COLUMNS,
    REQUIRED_REFUND_COLUMNS,
    REQUIRED_REFUNDED_LINE_COLUMNS,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from airflow_omnisend.events.mapping import OrderEventMapper, PreparedOrder, RefundedLine

_REFUNDED_JSON_COLUMNS: Final = ("line_number", "quantity", "amount")
#: How many prepared orders :class:`PreparedOrders` keeps (docs/prep-path.md: why 16).
PREPARED_ORDERS: Final = 16


def _picker(positions: list[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function that picks ``positions`` out of a row as a tuple (-1: a column the query lacks: null)."""
    if len(positions) > 1 and all(p >= 0 for p in positions):
        return itemgetter(*positions)
    return lambda row: tuple([row[p] if p >= 0 else None for p in positions])


@dataclass(frozen=True)
class RowLayout:
    """Where the mapper's columns are in one query's rows (-1: not returned)."""

    names: tuple[str, ...]
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

    @classmethod
    def of(cls, kind: str, description: Sequence[Sequence[Any]] | None) -> RowLayout:
        """The layout of the ``kind`` query's result (its cursor's ``description``); raises
        :class:`OmnisendConfigError` naming the required columns it lacks."""
        if not description:
            raise OmnisendConfigError(f"the {kind!r} query returned no result columns (is it a SELECT?)")
        names = tuple(str(d[0]).lower() for d in description)
        index = {name: i for i, name in reversed(list(enumerate(names)))}
        _check_required(kind, names, index)

        def pos(name: str) -> int:
            return index.get(name, -1)

        refunded = kind == "refunded"
        return cls(
            names=names,
            order=_picker([pos(c) for c in ORDER_COLUMNS]),
            line=_picker([pos(c) for c in LINE_COLUMNS]),
            refund=_picker([pos(c) for c in REFUND_QUERY_COLUMNS]) if refunded else None,
            group=pos("refund_id") if refunded else pos("order_id"),
            order_id=pos("order_id"),
            time=pos(KINDS[kind][1]),
            line_present=(pos("line_number"), pos("product_id")),
            lines_json=pos("lines_json"),
            history=pos("refund_history"),
            refunded=(pos("refunded_quantity"), pos("refunded_amount")),
            refunded_json=pos("refunded_lines_json"),
        )

    def raw_lines(self, rows: Sequence[Sequence[Any]]) -> Any:
        """The group's lines as returned: the ``lines_json`` cell, or the line tuples of its rows."""
        if self.lines_json >= 0:
            return rows[0][self.lines_json]
        line_i, product_i = self.line_present
        return tuple(
            self.line(row)
            for row in rows
            if (line_i >= 0 and row[line_i] is not None) or (product_i >= 0 and row[product_i] is not None)
        )

    def lines(self, raw: Any, order_id: Any) -> list[Any]:
        """The line tuples of :meth:`raw_lines`."""
        if self.lines_json >= 0:
            return json_rows(raw, LINE_COLUMNS, "lines_json", order_id)
        return list(raw)

    def refunded_lines(self, rows: Sequence[Sequence[Any]], lines: list[Any]) -> list[RefundedLine]:
        """The refund's lines, each with the order line it refunds (``refunded`` only)."""
        first = rows[0]
        if self.refunded_json >= 0:
            assert self.refund is not None
            refund_id = self.refund(first)[RefundColumn.REFUND_ID]
            by_number = {str(line[LineColumn.LINE_NUMBER]): line for line in lines}
            found = json_rows(
                first[self.refunded_json], _REFUNDED_JSON_COLUMNS, "refunded_lines_json", refund_id
            )
            return [(by_number.get(str(number)), qty, amount) for number, qty, amount in found]
        qty_i, amount_i = self.refunded
        return [
            (self.line(row), row[qty_i], row[amount_i])
            for row in rows
            if row[qty_i] is not None or row[amount_i] is not None
        ]


def _check_required(kind: str, names: tuple[str, ...], index: dict[str, int]) -> None:
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
            f"it returned: {', '.join(names)} (see airflow_omnisend.sources.sql_queries for the columns)"
        )


def json_rows(value: Any, columns: tuple[str, ...], what: str, key: Any) -> list[Any]:
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
    rows: list[Any] = value
    if rows and type(rows[0]) is dict:
        rows = [tuple(map(item.get, columns)) if type(item) is dict else item for item in rows]
    width = len(columns)
    for row in rows:
        if type(row) not in (list, tuple) or len(row) != width:
            raise OmnisendInputError(
                f"{what} of {key!r}: {str(row)[:200]!r} is not an array of {width} values "
                f"({', '.join(columns)}) or an object with those keys"
            )
    return rows


class PreparedOrders:
    """The orders prepared last, so that an order is prepared once for all its events of the partition
    (the five streams are merged by order, so its events arrive together). First in, first out."""

    def __init__(self, mapper: OrderEventMapper, size: int = PREPARED_ORDERS) -> None:
        self.mapper = mapper
        self._size = size
        #: order_id -> (order tuple, raw lines value, lines, PreparedOrder)
        self._orders: dict[Any, tuple[tuple[Any, ...], Any, list[Any], PreparedOrder]] = {}

    def get(
        self, order: tuple[Any, ...], raw_lines: Any, layout: RowLayout
    ) -> tuple[list[Any], PreparedOrder]:
        """The lines and the :class:`PreparedOrder` of ``order`` (prepared again when its row changed)."""
        order_id = order[OrderColumn.ORDER_ID]
        hit = self._orders.get(order_id)
        if hit is not None and hit[0] == order and hit[1] == raw_lines:
            return hit[2], hit[3]
        lines = layout.lines(raw_lines, order_id)
        prepared = self.mapper.prepare(order, lines)
        if len(self._orders) >= self._size:
            del self._orders[next(iter(self._orders))]
        self._orders[order_id] = (order, raw_lines, lines, prepared)
        return lines, prepared


def group_event(
    kind: str,
    rows: Sequence[Sequence[Any]],
    layout: RowLayout,
    orders: PreparedOrders,
    placed: tuple[datetime, str],
) -> dict[str, Any]:
    """The event of one group of rows whose time ``placed`` (instant, canonical eventTime) is in the
    window."""
    first = rows[0]
    order = layout.order(first)
    lines, prepared = orders.get(order, layout.raw_lines(rows), layout)
    history = parse_refund_history(first[layout.history]) if layout.history >= 0 else None
    instant, canonical = placed
    mapper = orders.mapper
    if kind != "refunded":
        return mapper.order_event(
            KINDS[kind][0],
            prepared,
            event_time=canonical,
            as_of=instant,
            history=history,
            time_is_canonical=True,
        )
    assert layout.refund is not None
    return mapper.refund_event(
        prepared,
        lines,
        layout.refund(first),
        layout.refunded_lines(rows, lines),
        event_time=canonical,
        as_of=instant,
        history=history,
        time_is_canonical=True,
    )
