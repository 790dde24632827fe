"""The column contract between the sources and the mapper: what each position of a row tuple holds.

Sources hand the mapper plain tuples (the cheapest thing to build from a DB-API row), one per ``orders``
row, ``order_lines`` row and ``refunds`` row of the reference shop schema
(``sources/reference_shop_schema.sql``). Each position has a name here: ``order[OrderColumn.PAID_AT]``,
never ``order[22]``. The column-name tuples (:data:`ORDER_COLUMNS`, ...) are derived from these classes,
so the names and their positions are defined once. :func:`order_tuple` and friends build the tuples from
rows keyed by column name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from airflow_omnisend.events.names import CANCELED, FULFILLED, PAID, PLACED

if TYPE_CHECKING:
    from collections.abc import Mapping


class OrderColumn:
    """Positions in an order tuple: the ``orders`` columns."""

    ORDER_ID: Final = 0
    ORDER_NUMBER: Final = 1
    CUSTOMER_ID: Final = 2
    EMAIL: Final = 3
    PHONE: Final = 4
    FIRST_NAME: Final = 5
    LAST_NAME: Final = 6
    CURRENCY: Final = 7
    SUBTOTAL_PRICE: Final = 8
    TOTAL_DISCOUNT: Final = 9
    TOTAL_TAX: Final = 10
    SHIPPING_PRICE: Final = 11
    TOTAL_PRICE: Final = 12
    DISCOUNT_CODE: Final = 13
    PAYMENT_METHOD: Final = 14
    SHIPPING_METHOD: Final = 15
    NOTE: Final = 16
    BILLING_ADDRESS1: Final = 17
    BILLING_CITY: Final = 18
    BILLING_ZIP: Final = 19
    BILLING_COUNTRY_CODE: Final = 20
    CREATED_AT: Final = 21
    PAID_AT: Final = 22
    FULFILLED_AT: Final = 23
    TRACKING_CODE: Final = 24
    COURIER_TITLE: Final = 25
    COURIER_URL: Final = 26
    CANCELED_AT: Final = 27
    CANCEL_REASON: Final = 28


class LineColumn:
    """Positions in a line tuple: the ``order_lines`` columns (without ``order_id``)."""

    LINE_NUMBER: Final = 0
    PRODUCT_ID: Final = 1
    VARIANT_ID: Final = 2
    SKU: Final = 3
    TITLE: Final = 4
    VARIANT_TITLE: Final = 5
    VENDOR: Final = 6
    CATEGORY_ID: Final = 7
    CATEGORY_TITLE: Final = 8
    QUANTITY: Final = 9
    UNIT_PRICE: Final = 10
    DISCOUNT: Final = 11
    PRODUCT_URL: Final = 12
    IMAGE_URL: Final = 13


class RefundColumn:
    """Positions in a refund tuple: the ``refunds`` columns."""

    REFUND_ID: Final = 0
    ORDER_ID: Final = 1
    CREATED_AT: Final = 2
    AMOUNT: Final = 3
    TAX_AMOUNT: Final = 4
    REASON: Final = 5


class RefundLineColumn:
    """Positions in a refund-line tuple: the ``refund_lines`` columns."""

    REFUND_ID: Final = 0
    LINE_NUMBER: Final = 1
    QUANTITY: Final = 2
    AMOUNT: Final = 3


def _column_names(positions: type) -> tuple[str, ...]:
    """The column names of a positions class, in position order (checked to be 0, 1, 2, ...)."""
    named = sorted((value, name.lower()) for name, value in vars(positions).items() if name.isupper())
    if [value for value, _name in named] != list(range(len(named))):
        raise AssertionError(f"{positions.__name__} positions are not 0..{len(named) - 1}")
    return tuple(name for _value, name in named)


#: ``orders`` columns, in the order of the tuples the mapper reads.
ORDER_COLUMNS: Final = _column_names(OrderColumn)
#: ``order_lines`` columns (without ``order_id``), in tuple order.
LINE_COLUMNS: Final = _column_names(LineColumn)
#: ``refunds`` columns, in tuple order.
REFUND_COLUMNS: Final = _column_names(RefundColumn)
#: ``refund_lines`` columns, in tuple order.
REFUND_LINE_COLUMNS: Final = _column_names(RefundLineColumn)

#: Column of ``orders`` that holds each order event's time.
ORDER_TIME_COLUMN: Final = {
    PLACED: "created_at",
    PAID: "paid_at",
    FULFILLED: "fulfilled_at",
    CANCELED: "canceled_at",
}
#: Position in an order tuple of each order event's time.
ORDER_TIME_INDEX: Final = {name: ORDER_COLUMNS.index(column) for name, column in ORDER_TIME_COLUMN.items()}


def order_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """An ``orders`` row as a dict -> the tuple the mapper reads (missing columns are null)."""
    return tuple(map(row.get, ORDER_COLUMNS))


def line_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """An ``order_lines`` row as a dict -> the tuple the mapper reads (missing columns are null)."""
    return tuple(map(row.get, LINE_COLUMNS))


def refund_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A ``refunds`` row as a dict -> the tuple the mapper reads (missing columns are null)."""
    return tuple(map(row.get, REFUND_COLUMNS))
