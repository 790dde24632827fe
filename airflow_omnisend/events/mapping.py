"""Order rows of the reference shop schema -> Omnisend order events.

Which row becomes which event (``sources/reference_shop_schema.sql``, header comment)::

    every order                      -> 'placed order'    [orders.created_at]
    orders.paid_at is not null       -> 'paid for order'  [orders.paid_at]
    orders.fulfilled_at is not null  -> 'order fulfilled' [orders.fulfilled_at]
    orders.canceled_at is not null   -> 'order canceled'  [orders.canceled_at]
    every refunds row                -> 'order refunded'  [refunds.created_at]

All five share the order shape (money, addresses, discounts, line items: :mod:`.properties`);
``paymentStatus`` and ``fulfillmentStatus`` are the order's statuses *as of the event's time*
(:mod:`.statuses`), so a replayed history reads like it happened. ``order fulfilled`` adds ``tracking``,
``order canceled`` ``cancelReason``, ``order refunded`` the refunded amounts and line items.

The mapping is total: it never raises on row content. A value it cannot convert is passed on as it is
(or left out when null), so the validator rejects the event with a JSON path and a message, and the
rejected event still carries ``properties.orderID``. Rows are plain tuples in the column order of
:mod:`.columns`; :func:`map_order` is the convenient entry point over dicts keyed by column name.

The event names, the column contract, the coercions and the refund history are defined in their own
modules (:mod:`.names`, :mod:`.columns`, :mod:`.coercions`, :mod:`.statuses`) and stay importable from
here for the code that imported them from this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_omnisend.events.coercions import money, text, to_decimal
from airflow_omnisend.events.columns import (
    ORDER_TIME_INDEX,
    LineColumn,
    OrderColumn,
    RefundColumn,
    line_tuple,
    order_tuple,
    refund_tuple,
)
from airflow_omnisend.events.ids import EventIdFactory, check_store_id
from airflow_omnisend.events.names import (
    CANCELED,
    EVENT_NAMES,
    FULFILLED,
    LIFECYCLE_RANK,
    PLACED,
    REFUNDED,
)
from airflow_omnisend.events.properties import (
    billing_address,
    contact,
    discounts,
    line_item,
    order_properties,
    refunded_item,
    tracking,
)
from airflow_omnisend.events.statuses import (
    RefundHistory,
    fulfillment_status,
    history_of,
    payment_status,
)
from airflow_omnisend.events.timefmt import InstantCache, canonical_or_raw, try_parse_instant

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

__all__ = [
    "OrderEventMapper",
    "PreparedOrder",
    "RefundedLine",
    "map_order",
    "refunded_lines",
]

#: One refunded line: (the order line it refunds or None, refunded quantity, refunded amount).
RefundedLine = tuple["Sequence[Any] | None", Any, Any]


class PreparedOrder:
    """The parts of an order's events that do not depend on the event: built once per order and reused
    by each of its events (an order's events of one day arrive together)."""

    __slots__ = ("base", "contact", "order")

    def __init__(self, order: Sequence[Any], base: dict[str, Any], contact: dict[str, Any]) -> None:
        self.order = order
        self.base = base
        self.contact = contact


class OrderEventMapper:
    """Maps one store's order rows to events. Cheap to build; reuse one per extraction.

    Rows are tuples in the column order of :data:`ORDER_COLUMNS` and :data:`LINE_COLUMNS` (see
    :func:`order_tuple` / :func:`line_tuple` for dicts). ``event_time`` is what goes into ``eventTime``:
    the canonical string when the caller already parsed it (sources do, to place the event in its
    partition), else the raw value, which the mapper makes canonical when it can.

    Events made from one :class:`PreparedOrder` share their ``contact`` and ``lineItems`` objects:
    treat events as read-only (serialise them), or copy before changing one.
    """

    __slots__ = ("_ids", "store_id", "times")

    def __init__(self, store_id: str) -> None:
        self.store_id = check_store_id(store_id)
        self._ids = {name: EventIdFactory(store_id, name) for name in EVENT_NAMES}
        #: parsed times, shared with the source that places the events (see InstantCache)
        self.times = InstantCache()

    # -- events -------------------------------------------------------------------------------------------

    def order_event(
        self,
        event_name: str,
        order: Sequence[Any] | PreparedOrder,
        lines: Sequence[Sequence[Any]] = (),
        *,
        event_time: Any = None,
        as_of: datetime | None = None,
        history: RefundHistory | None = None,
        time_is_canonical: bool = False,
    ) -> dict[str, Any]:
        """``placed order``, ``paid for order``, ``order fulfilled`` or ``order canceled`` of ``order``.

        :param order: the order tuple (with its ``lines``), or a :meth:`prepare` result.
        :param event_time: the eventTime value; by default the order's column for ``event_name``.
        :param as_of: the instant the statuses are computed at (default: the parsed event time).
        :param history: every refund of the order (``[(instant, amount)]``) for the payment status.
        :param time_is_canonical: ``event_time`` is already the canonical string and ``as_of`` its instant
            (what a source that placed the event has: nothing is parsed again).
        """
        prepared = order if isinstance(order, PreparedOrder) else self.prepare(order, lines)
        row = prepared.order
        if event_time is None and event_name in ORDER_TIME_INDEX:
            event_time = row[ORDER_TIME_INDEX[event_name]]
        if not time_is_canonical:
            event_time, as_of = self._event_time(event_time, as_of)
        props = self._with_statuses(prepared, as_of, history)
        _add_event_details(props, event_name, row)
        return self._envelope(event_name, row[OrderColumn.ORDER_ID], event_time, prepared.contact, props)

    def refund_event(
        self,
        order: Sequence[Any] | PreparedOrder,
        lines: Sequence[Sequence[Any]],
        refund: Sequence[Any],
        refunded: Sequence[RefundedLine],
        *,
        event_time: Any = None,
        as_of: datetime | None = None,
        history: RefundHistory | None = None,
        time_is_canonical: bool = False,
    ) -> dict[str, Any]:
        """``order refunded`` for one ``refunds`` row (a tuple in :data:`REFUND_COLUMNS` order).

        ``refunded`` are its refund lines, each with the order line it refunds (matched on line_number).
        ``totalRefundedAmount`` / ``totalRefundedTaxAmount`` are this refund's amounts; each refunded line
        item carries the refunded quantity and ``productPrice`` = refunded amount / quantity (to the cent).
        """
        prepared = order if isinstance(order, PreparedOrder) else self.prepare(order, lines)
        refund_id, refund_order_id, created_at, amount, tax_amount, _reason = refund
        if event_time is None:
            event_time = created_at
        if not time_is_canonical:
            event_time, as_of = self._event_time(event_time, as_of)
        if history is None:
            history = [(as_of, to_decimal(amount))]
        props = self._with_statuses(prepared, as_of, history)
        if "orderID" not in props and refund_order_id is not None:
            props["orderID"] = text(refund_order_id)  # a refund whose order row is missing
        if amount is not None:
            props["totalRefundedAmount"] = money(amount)
        if tax_amount is not None:
            props["totalRefundedTaxAmount"] = money(tax_amount)
        props["refundedLineItems"] = [refunded_item(line, qty, amt) for line, qty, amt in refunded]
        return self._envelope(REFUNDED, refund_id, event_time, prepared.contact, props)

    def prepare(self, order: Sequence[Any], lines: Sequence[Sequence[Any]]) -> PreparedOrder:
        """What every event of ``order`` shares: its properties without statuses, and its contact."""
        props = order_properties(order)
        created_at = order[OrderColumn.CREATED_AT]
        if created_at is not None:
            created = self.times.canonical(created_at)
            props["createdAt"] = created if created is not None else canonical_or_raw(created_at)
        found = discounts(order)
        if found is not None:
            props["discounts"] = found
        address = billing_address(order)
        if address is not None:
            props["billingAddress"] = address
        props["lineItems"] = [line_item(line) for line in lines]
        return PreparedOrder(order, props, contact(order))

    # -- parts --------------------------------------------------------------------------------------------

    def _event_time(self, value: Any, as_of: datetime | None) -> tuple[Any, datetime | None]:
        parsed = self.times.lookup(value)
        if parsed is None:
            return canonical_or_raw(value), as_of
        return parsed[1], as_of if as_of is not None else parsed[0]

    def _envelope(
        self,
        event_name: str,
        source_key: Any,
        event_time: Any,
        contact: dict[str, Any],
        props: dict[str, Any],
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "eventName": event_name,
            "eventID": self._ids[event_name](source_key),
            "eventTime": event_time,
            "eventVersion": "v2",
            "origin": "api",
            "contact": contact,
            "properties": props,
        }
        if event_time is None:
            del event["eventTime"]
        return event

    def _with_statuses(
        self, prepared: PreparedOrder, as_of: datetime | None, history: RefundHistory | None
    ) -> dict[str, Any]:
        """A copy of the order's base properties with its statuses as of ``as_of`` (:mod:`.statuses`)."""
        order = prepared.order
        instant = self.times.instant
        payment = payment_status(
            order[OrderColumn.TOTAL_PRICE],
            order[OrderColumn.PAID_AT],
            order[OrderColumn.CANCELED_AT],
            as_of=as_of,
            history=history,
            instant=instant,
        )
        fulfillment = fulfillment_status(order[OrderColumn.FULFILLED_AT], as_of=as_of, instant=instant)
        return {**prepared.base, "paymentStatus": payment, "fulfillmentStatus": fulfillment}


def _add_event_details(props: dict[str, Any], event_name: str, order: Sequence[Any]) -> None:
    """What one kind of event adds: ``tracking`` to ``order fulfilled``, ``cancelReason`` to ``order
    canceled``."""
    if event_name == FULFILLED:
        found = tracking(order)
        if found:
            props["tracking"] = found
    elif event_name == CANCELED:
        reason = order[OrderColumn.CANCEL_REASON]
        if reason is not None:
            props["cancelReason"] = reason


# -- dict rows ----------------------------------------------------------------------------------------------


def refunded_lines(
    refund_lines: Iterable[Mapping[str, Any]], lines: Sequence[Sequence[Any]]
) -> list[RefundedLine]:
    """Pair each ``refund_lines`` row with the order line it refunds (same ``line_number``)."""
    by_number = {str(line[LineColumn.LINE_NUMBER]): line for line in lines}
    return [
        (by_number.get(str(rl.get("line_number"))), rl.get("quantity"), rl.get("amount"))
        for rl in refund_lines
    ]


def map_order(
    store_id: str | OrderEventMapper,
    order: Mapping[str, Any],
    lines: Iterable[Mapping[str, Any]] = (),
    refunds: Iterable[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Every event of one order, in lifecycle order (by time; placed < paid < fulfilled < canceled <
    refunded at the same instant).

    :param order: an ``orders`` row (dict keyed by column name).
    :param lines: its ``order_lines`` rows.
    :param refunds: its ``refunds`` rows, each with its ``refund_lines`` rows under the key ``"lines"``.
    """
    mapper = store_id if isinstance(store_id, OrderEventMapper) else OrderEventMapper(store_id)
    order_t = order_tuple(order)
    line_ts = [line_tuple(line) for line in sorted(lines, key=_line_sort_key)]
    refund_rows = list(refunds)
    history = history_of(refund_rows)
    events: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for name, index in ORDER_TIME_INDEX.items():
        if name != PLACED and order_t[index] is None:
            continue
        event = mapper.order_event(name, order_t, line_ts, history=history)
        events.append((_lifecycle_key(order_t[index], name), event))
    for refund in refund_rows:
        refund_t = refund_tuple(refund)
        event = mapper.refund_event(
            order_t,
            line_ts,
            refund_t,
            refunded_lines(refund.get("lines") or (), line_ts),
            history=history,
        )
        key = _lifecycle_key(refund_t[RefundColumn.CREATED_AT], REFUNDED, refund_t[RefundColumn.REFUND_ID])
        events.append((key, event))
    events.sort(key=lambda pair: pair[0])
    return [event for _key, event in events]


def _lifecycle_key(time_value: Any, name: str, tie: Any = "") -> tuple[Any, ...]:
    instant = try_parse_instant(time_value)
    return (instant is None, instant.timestamp() if instant else 0.0, LIFECYCLE_RANK[name], str(tie))


def _line_sort_key(line: Mapping[str, Any]) -> tuple[int, Any]:
    number = line.get("line_number")
    return (0, number) if type(number) is int else (1, str(number))
