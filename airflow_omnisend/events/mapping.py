"""Order rows of the reference shop schema -> Omnisend order events.

Which row becomes which event (``sources/reference_shop_schema.sql``, header comment)::

    every order                      -> 'placed order'    [orders.created_at]
    orders.paid_at is not null       -> 'paid for order'  [orders.paid_at]
    orders.fulfilled_at is not null  -> 'order fulfilled' [orders.fulfilled_at]
    orders.canceled_at is not null   -> 'order canceled'  [orders.canceled_at]
    every refunds row                -> 'order refunded'  [refunds.created_at]

All five share the order shape (money, addresses, discounts, line items); ``paymentStatus`` and
``fulfillmentStatus`` are the order's statuses *as of the event's time*, so a replayed history reads like
it happened. ``order fulfilled`` adds ``tracking``, ``order canceled`` ``cancelReason``, ``order refunded``
the refunded amounts and line items.

The mapping is total: it never raises on row content. A value it cannot convert is passed on as it is
(or left out when null), so the validator rejects the event with a JSON path and a message, and the
rejected event still carries ``properties.orderID``. It is also the hot path of the prep step, so rows
are plain tuples in the column order of :data:`ORDER_COLUMNS` / :data:`LINE_COLUMNS` (unpacked in one
step), and nothing is allocated per field beyond the event's own dicts. :func:`map_order` is the
convenient entry point over dicts keyed by the schema's column names.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

import orjson

from airflow_omnisend.events.ids import EventIdFactory, check_store_id
from airflow_omnisend.events.timefmt import InstantCache, canonical_or_raw, try_parse_instant

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

PLACED: Final = "placed order"
PAID: Final = "paid for order"
FULFILLED: Final = "order fulfilled"
CANCELED: Final = "order canceled"
REFUNDED: Final = "order refunded"

#: The five event names in lifecycle order (the tie-break for events of one order at the same instant).
EVENT_NAMES: Final = (PLACED, PAID, FULFILLED, CANCELED, REFUNDED)
LIFECYCLE_RANK: Final = {name: rank for rank, name in enumerate(EVENT_NAMES)}

#: Column of ``orders`` that holds each order event's time.
ORDER_TIME_COLUMN: Final = {
    PLACED: "created_at",
    PAID: "paid_at",
    FULFILLED: "fulfilled_at",
    CANCELED: "canceled_at",
}

#: ``orders`` columns, in the order of the tuples the mapper reads.
ORDER_COLUMNS: Final = (
    "order_id",
    "order_number",
    "customer_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "currency",
    "subtotal_price",
    "total_discount",
    "total_tax",
    "shipping_price",
    "total_price",
    "discount_code",
    "payment_method",
    "shipping_method",
    "note",
    "billing_address1",
    "billing_city",
    "billing_zip",
    "billing_country_code",
    "created_at",
    "paid_at",
    "fulfilled_at",
    "tracking_code",
    "courier_title",
    "courier_url",
    "canceled_at",
    "cancel_reason",
)
#: ``order_lines`` columns (without ``order_id``), in tuple order.
LINE_COLUMNS: Final = (
    "line_number",
    "product_id",
    "variant_id",
    "sku",
    "title",
    "variant_title",
    "vendor",
    "category_id",
    "category_title",
    "quantity",
    "unit_price",
    "discount",
    "product_url",
    "image_url",
)
#: ``refunds`` columns, in tuple order.
REFUND_COLUMNS: Final = ("refund_id", "order_id", "created_at", "amount", "tax_amount", "reason")
#: ``refund_lines`` columns, in tuple order.
REFUND_LINE_COLUMNS: Final = ("refund_id", "line_number", "quantity", "amount")

ORDER_TIME_INDEX: Final = {name: ORDER_COLUMNS.index(col) for name, col in ORDER_TIME_COLUMN.items()}

#: One earlier-or-later refund of the order: (instant, amount); either is None when unreadable.
RefundHistory = list[tuple["datetime | None", "Decimal | None"]]
#: One refunded line: (the order line it refunds or None, refunded quantity, refunded amount).
RefundedLine = tuple["Sequence[Any] | None", Any, Any]

_CENT = Decimal("0.01")
_ZERO = Decimal(0)


def money(value: Any) -> Any:
    """A money value as a JSON-ready number with its cents exact, or the value itself when it is not one.

    Floats come from SQLite ``NUMERIC`` and JSON (19.99 is stored and read back as the double nearest
    19.99, whose shortest repr is ``19.99``); ``Decimal`` (PostgreSQL) and text (CSV) go through ``Decimal``
    to the nearest double, which prints back as the same digits for any amount below 10^13. Whole amounts
    become ints, so the same amount is the same JSON whichever database it came from (SQLite stores 5.00
    as the integer 5; PostgreSQL returns ``Decimal('5.00')``).
    """
    kind = type(value)
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if kind is float:
        return _whole(value) if value.is_integer() else value
    if kind is Decimal:
        if not value.is_finite():
            return str(value)
        return _whole(value) if value == value.to_integral_value() else float(value)
    if kind is str:
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return value
        if not parsed.is_finite():
            return value
        return _whole(parsed) if parsed == parsed.to_integral_value() else float(parsed)
    return value


#: JSON integers this provider writes stay within 64 bits (orjson's range, and far beyond any real amount)
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def _whole(value: float | Decimal) -> int | str:
    number = int(value)
    return number if _INT_MIN <= number <= _INT_MAX else str(value)


def to_decimal(value: Any) -> Decimal | None:
    """``Decimal`` of a money value (for sums and comparisons), ``None`` when it is not a number."""
    kind = type(value)
    if kind is Decimal:
        return value if value.is_finite() else None
    if kind is int:
        return Decimal(value)
    if kind is float:
        return Decimal(repr(value)) if value == value and value not in (_INF, -_INF) else None
    if kind is str:
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


_INF = float("inf")


def quantity(value: Any) -> Any:
    """A line quantity as an int when it is a whole number, else the value itself (the validator says why)."""
    kind = type(value)
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if kind is float:
        return _whole(value) if value.is_integer() else value
    if kind is str:
        text = value.strip()
        if text.isascii() and text.lstrip("-").isdigit():
            return _whole(Decimal(text))
        return value
    if kind is Decimal:
        return _whole(value) if value.is_finite() and value == value.to_integral_value() else str(value)
    return value


def text(value: Any) -> Any:
    """An id or name as a string (``productID`` 7 -> ``"7"``); ``None`` stays ``None``."""
    if value is None or type(value) is str:
        return value
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


def order_number(value: Any) -> Any:
    """``orderNumber`` as an int when it is a whole number (the schemas also accept text)."""
    kind = type(value)
    if value is None:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if kind is str:
        stripped = value.strip()
        return _whole(Decimal(stripped)) if stripped.isascii() and stripped.isdigit() else value
    if kind is float and value.is_integer():
        return _whole(value)
    if kind is Decimal and value.is_finite() and value == value.to_integral_value():
        return _whole(value)
    return value


def parse_refund_history(value: Any) -> RefundHistory | None:
    """The ``refund_history`` column: a JSON array of ``[created_at, amount]`` pairs (text, or already
    decoded by the driver), one per refund of the order. ``None`` when the column is null or unreadable.
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(value, list):
        return None
    history: RefundHistory = []
    for entry in value:
        if isinstance(entry, (list, tuple)) and len(entry) == 2:
            history.append((try_parse_instant(entry[0]), to_decimal(entry[1])))
    return history


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
        :param time_is_canonical: ``event_time`` is already the canonical string (skip re-formatting).
        """
        prepared = order if isinstance(order, PreparedOrder) else self.prepare(order, lines)
        row = prepared.order
        if event_time is None:
            event_time = row[ORDER_TIME_INDEX[event_name]] if event_name in ORDER_TIME_INDEX else None
        if not time_is_canonical:
            event_time, as_of = self._event_time(event_time, as_of)
        return self.order_event_at(event_name, prepared, event_time, as_of, history)

    def order_event_at(
        self,
        event_name: str,
        prepared: PreparedOrder,
        event_time: Any,
        as_of: datetime | None,
        history: RefundHistory | None,
    ) -> dict[str, Any]:
        """:meth:`order_event` for a prepared order whose event time is already canonical (the hot path)."""
        row = prepared.order
        props = self._with_statuses(prepared, as_of, history)
        if event_name == FULFILLED:
            tracking = _tracking(row)
            if tracking:
                props["tracking"] = tracking
        elif event_name == CANCELED:
            reason = row[28]
            if reason is not None:
                props["cancelReason"] = reason
        return self._envelope(event_name, row[0], event_time, prepared.contact, props)

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
        props["refundedLineItems"] = [_refunded_item(line, qty, amt) for line, qty, amt in refunded]
        return self._envelope(REFUNDED, refund_id, event_time, prepared.contact, props)

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
        """A copy of the order's base properties with its statuses as of ``as_of`` (None: the end of time;
        a time that cannot be read counts as "has not happened")."""
        order = prepared.order
        payment = None
        if history:
            refunded_sum = _refunded_by(history, as_of)
            if refunded_sum > 0:
                total = to_decimal(order[12])
                payment = "refunded" if total is not None and refunded_sum >= total else "partiallyRefunded"
        instant = self.times.instant
        if payment is None:
            paid_at, canceled_at = order[22], order[27]
            if paid_at is not None and (at := instant(paid_at)) and (as_of is None or at <= as_of):
                payment = "paid"
            elif canceled_at is not None and (at := instant(canceled_at)) and (as_of is None or at <= as_of):
                payment = "voided"
            else:
                payment = "awaitingPayment"
        fulfilled_at = order[23]
        if fulfilled_at is not None and (at := instant(fulfilled_at)) and (as_of is None or at <= as_of):
            fulfillment = "fulfilled"
        else:
            fulfillment = "unfulfilled"
        return {**prepared.base, "paymentStatus": payment, "fulfillmentStatus": fulfillment}

    def prepare(self, order: Sequence[Any], lines: Sequence[Sequence[Any]]) -> PreparedOrder:
        """What every event of ``order`` shares: its properties without statuses, and its contact."""
        (
            order_id,
            number,
            _customer_id,
            _email,
            _phone,
            _first_name,
            _last_name,
            currency,
            subtotal_price,
            total_discount,
            total_tax,
            shipping_price,
            total_price,
            discount_code,
            payment_method,
            shipping_method,
            note,
            billing_address1,
            billing_city,
            billing_zip,
            billing_country_code,
            created_at,
            _paid_at,
            _fulfilled_at,
            _tracking_code,
            _courier_title,
            _courier_url,
            _canceled_at,
            _cancel_reason,
        ) = order
        props: dict[str, Any] = {}
        if order_id is not None:
            props["orderID"] = order_id if type(order_id) is str else text(order_id)
        if number is not None:
            props["orderNumber"] = order_number(number)
        if currency is not None:
            props["currency"] = currency.strip().upper() if type(currency) is str else currency
        if total_price is not None:
            props["totalPrice"] = money(total_price)
        if subtotal_price is not None:
            props["subTotalPrice"] = money(subtotal_price)
        if total_discount is not None:
            props["totalDiscount"] = money(total_discount)
        if total_tax is not None:
            props["totalTax"] = money(total_tax)
        if shipping_price is not None:
            props["shippingPrice"] = money(shipping_price)
        if payment_method is not None:
            props["paymentMethod"] = payment_method
        if shipping_method is not None:
            props["shippingMethod"] = shipping_method
        if note is not None:
            props["note"] = note
        if created_at is not None:
            created = self.times.canonical(created_at)
            props["createdAt"] = created if created is not None else canonical_or_raw(created_at)
        if discount_code is not None:
            discount: dict[str, Any] = {"code": discount_code}
            if total_discount is not None:
                discount["amount"] = money(total_discount)
            props["discounts"] = [discount]
        if (
            billing_address1 is not None
            or billing_city is not None
            or billing_zip is not None
            or billing_country_code is not None
        ):
            address: dict[str, Any] = {}
            if billing_address1 is not None:
                address["address1"] = billing_address1
            if billing_city is not None:
                address["city"] = billing_city
            if billing_zip is not None:
                address["zip"] = billing_zip if type(billing_zip) is str else text(billing_zip)
            if billing_country_code is not None:
                address["countryCode"] = billing_country_code
            props["billingAddress"] = address
        props["lineItems"] = [_line_item(line) for line in lines]
        return PreparedOrder(order, props, _contact(order))


def _refunded_by(history: RefundHistory, as_of: datetime | None) -> Decimal:
    """What the refunds had paid back by ``as_of`` (unreadable refunds and absurd amounts count as 0)."""
    total = _ZERO
    try:
        for instant, amount in history:
            if amount is not None and instant is not None and (as_of is None or instant <= as_of):
                total += amount
    except ArithmeticError:
        return _ZERO
    return total


def _contact(order: Sequence[Any]) -> dict[str, Any]:
    """Email (trimmed, lower-cased) and phone (trimmed) identify the contact; ``customer_id`` is the shop's
    own key, so it goes to ``customProperties.shopCustomerID`` and never to ``contact.id``."""
    customer_id, email, phone, first_name, last_name = order[2], order[3], order[4], order[5], order[6]
    contact: dict[str, Any] = {}
    if email is not None:
        if type(email) is str:
            email = email.strip().lower()
            if email:
                contact["email"] = email
        else:
            contact["email"] = email
    if phone is not None:
        if type(phone) is str:
            phone = phone.strip()
            if phone:
                contact["phone"] = phone
        else:
            contact["phone"] = phone
    if first_name is not None and first_name != "":
        contact["firstName"] = first_name
    if last_name is not None and last_name != "":
        contact["lastName"] = last_name
    if customer_id is not None and customer_id != "":
        contact["customProperties"] = {"shopCustomerID": text(customer_id)}
    return contact


def _tracking(order: Sequence[Any]) -> dict[str, Any]:
    code, courier_title, courier_url = order[24], order[25], order[26]
    tracking: dict[str, Any] = {}
    if code is not None:
        tracking["code"] = text(code)
    if courier_title is not None:
        tracking["courierTitle"] = courier_title
    if courier_url is not None:
        tracking["courierURL"] = courier_url
    return tracking


def _line_item(line: Sequence[Any]) -> dict[str, Any]:
    (
        _line_number,
        product_id,
        variant_id,
        sku,
        title,
        variant_title,
        vendor,
        category_id,
        category_title,
        qty,
        unit_price,
        discount,
        product_url,
        image_url,
    ) = line
    if (
        type(product_id) is str
        and type(variant_id) is str
        and type(sku) is str
        and type(category_id) is str
        and title is not None
        and variant_title is not None
        and vendor is not None
        and category_title is not None
        and qty is not None
        and unit_price is not None
        and discount is not None
        and product_url is not None
        and image_url is not None
    ):
        # every column there and the ids already text (most lines): one dict display, same keys in the
        # same order as below
        return {
            "productID": product_id,
            "productVariantID": variant_id,
            "productSKU": sku,
            "productTitle": title,
            "productVariantTitle": variant_title,
            "productVendor": vendor,
            "productPrice": money(unit_price),
            "productQuantity": quantity(qty),
            "productDiscount": money(discount),
            "productURL": product_url,
            "productImageURL": image_url,
            "productCategories": [{"id": category_id, "title": category_title}],
        }
    item: dict[str, Any] = {}
    if product_id is not None:
        item["productID"] = product_id if type(product_id) is str else text(product_id)
    if variant_id is not None:
        item["productVariantID"] = variant_id if type(variant_id) is str else text(variant_id)
    if sku is not None:
        item["productSKU"] = sku if type(sku) is str else text(sku)
    if title is not None:
        item["productTitle"] = title
    if variant_title is not None:
        item["productVariantTitle"] = variant_title
    if vendor is not None:
        item["productVendor"] = vendor
    if unit_price is not None:
        item["productPrice"] = money(unit_price)
    if qty is not None:
        item["productQuantity"] = quantity(qty)
    if discount is not None:
        item["productDiscount"] = money(discount)
    if product_url is not None:
        item["productURL"] = product_url
    if image_url is not None:
        item["productImageURL"] = image_url
    if category_id is not None or category_title is not None:
        category: dict[str, Any] = {}
        if category_id is not None:
            category["id"] = text(category_id)
        if category_title is not None:
            category["title"] = category_title
        item["productCategories"] = [category]
    return item


def _refunded_item(line: Sequence[Any] | None, qty: Any, amount: Any) -> dict[str, Any]:
    """A refunded line item: the order line's product fields, the refunded quantity, and the refunded
    amount per unit as ``productPrice`` (rounded half-up to the cent when it does not divide evenly)."""
    item = _line_item(line) if line is not None else {}
    item.pop("productDiscount", None)
    count = quantity(qty) if qty is not None else None
    total = to_decimal(amount)
    per_unit = None
    if type(count) is int and count > 0 and total is not None:
        try:
            per_unit = (total / count).quantize(_CENT, rounding=ROUND_HALF_UP)
        except InvalidOperation:  # beyond Decimal's precision: no real amount
            per_unit = None
    if per_unit is not None:
        item["productPrice"] = money(per_unit)
    elif amount is not None:
        item["productPrice"] = money(amount)
    else:
        item.pop("productPrice", None)
    if count is not None:
        item["productQuantity"] = count
    else:
        item.pop("productQuantity", None)
    return item


# -- dict rows ----------------------------------------------------------------------------------------------


def order_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """An ``orders`` row as a dict -> the tuple the mapper reads (missing columns are null)."""
    return tuple(map(row.get, ORDER_COLUMNS))


def line_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """An ``order_lines`` row as a dict -> the tuple the mapper reads (missing columns are null)."""
    return tuple(map(row.get, LINE_COLUMNS))


def refund_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(map(row.get, REFUND_COLUMNS))


def refunded_lines(
    refund_lines: Iterable[Mapping[str, Any]], lines: Sequence[Sequence[Any]]
) -> list[RefundedLine]:
    """Pair each ``refund_lines`` row with the order line it refunds (same ``line_number``)."""
    by_number = {str(line[0]): line for line in lines}
    return [
        (by_number.get(str(rl.get("line_number"))), rl.get("quantity"), rl.get("amount"))
        for rl in refund_lines
    ]


def history_of(refunds: Iterable[Mapping[str, Any]]) -> RefundHistory:
    """The refund history of an order from its ``refunds`` rows."""
    return [(try_parse_instant(r.get("created_at")), to_decimal(r.get("amount"))) for r in refunds]


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
        events.append((_lifecycle_key(refund_t[2], REFUNDED, refund_t[0]), event))
    events.sort(key=lambda pair: pair[0])
    return [event for _key, event in events]


def _lifecycle_key(time_value: Any, name: str, tie: Any = "") -> tuple[Any, ...]:
    instant = try_parse_instant(time_value)
    return (instant is None, instant.timestamp() if instant else 0.0, LIFECYCLE_RANK[name], str(tie))


def _line_sort_key(line: Mapping[str, Any]) -> tuple[int, Any]:
    number = line.get("line_number")
    return (0, number) if type(number) is int else (1, str(number))
