"""Which column becomes which event property, and how its value is converted.

Each table lists ``(property, position in the row tuple, coercion)`` in the order the properties are
written (the order is part of the event's bytes). A null column is left out, never sent as null; a
value the coercion cannot convert is passed on as it is, so the validator rejects the event and says
why (the mapping is total).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

from airflow_omnisend.events.coercions import currency, money, order_number, quantity, text, to_decimal
from airflow_omnisend.events.columns import LineColumn, OrderColumn

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: ``(property, position, coercion or None for "as it is")``
Fields = tuple[tuple[str, int, "Callable[[Any], Any] | None"], ...]

#: The order's own properties, before ``createdAt``, ``discounts``, ``billingAddress`` and ``lineItems``.
ORDER_FIELDS: Final[Fields] = (
    ("orderID", OrderColumn.ORDER_ID, text),
    ("orderNumber", OrderColumn.ORDER_NUMBER, order_number),
    ("currency", OrderColumn.CURRENCY, currency),
    ("totalPrice", OrderColumn.TOTAL_PRICE, money),
    ("subTotalPrice", OrderColumn.SUBTOTAL_PRICE, money),
    ("totalDiscount", OrderColumn.TOTAL_DISCOUNT, money),
    ("totalTax", OrderColumn.TOTAL_TAX, money),
    ("shippingPrice", OrderColumn.SHIPPING_PRICE, money),
    ("paymentMethod", OrderColumn.PAYMENT_METHOD, None),
    ("shippingMethod", OrderColumn.SHIPPING_METHOD, None),
    ("note", OrderColumn.NOTE, None),
)
BILLING_ADDRESS_FIELDS: Final[Fields] = (
    ("address1", OrderColumn.BILLING_ADDRESS1, None),
    ("city", OrderColumn.BILLING_CITY, None),
    ("zip", OrderColumn.BILLING_ZIP, text),
    ("countryCode", OrderColumn.BILLING_COUNTRY_CODE, None),
)
TRACKING_FIELDS: Final[Fields] = (
    ("code", OrderColumn.TRACKING_CODE, text),
    ("courierTitle", OrderColumn.COURIER_TITLE, None),
    ("courierURL", OrderColumn.COURIER_URL, None),
)
#: A line item's properties, before ``productCategories``.
LINE_ITEM_FIELDS: Final[Fields] = (
    ("productID", LineColumn.PRODUCT_ID, text),
    ("productVariantID", LineColumn.VARIANT_ID, text),
    ("productSKU", LineColumn.SKU, text),
    ("productTitle", LineColumn.TITLE, None),
    ("productVariantTitle", LineColumn.VARIANT_TITLE, None),
    ("productVendor", LineColumn.VENDOR, None),
    ("productPrice", LineColumn.UNIT_PRICE, money),
    ("productQuantity", LineColumn.QUANTITY, quantity),
    ("productDiscount", LineColumn.DISCOUNT, money),
    ("productURL", LineColumn.PRODUCT_URL, None),
    ("productImageURL", LineColumn.IMAGE_URL, None),
)
CATEGORY_FIELDS: Final[Fields] = (
    ("id", LineColumn.CATEGORY_ID, text),
    ("title", LineColumn.CATEGORY_TITLE, None),
)

_CENT = Decimal("0.01")


def present_fields(row: Sequence[Any], fields: Fields) -> dict[str, Any]:
    """The properties of ``fields`` whose column in ``row`` is not null, converted."""
    found: dict[str, Any] = {}
    for name, position, convert in fields:
        value = row[position]
        if value is not None:
            found[name] = value if convert is None else convert(value)
    return found


def order_properties(order: Sequence[Any]) -> dict[str, Any]:
    """The order's properties up to ``note`` (:data:`ORDER_FIELDS`)."""
    return present_fields(order, ORDER_FIELDS)


def discounts(order: Sequence[Any]) -> list[dict[str, Any]] | None:
    """``[{"code", "amount"}]`` of the order's discount code (its amount is the total discount)."""
    code = order[OrderColumn.DISCOUNT_CODE]
    if code is None:
        return None
    discount: dict[str, Any] = {"code": code}
    amount = order[OrderColumn.TOTAL_DISCOUNT]
    if amount is not None:
        discount["amount"] = money(amount)
    return [discount]


def billing_address(order: Sequence[Any]) -> dict[str, Any] | None:
    """The billing address, or None when all its columns are null."""
    return present_fields(order, BILLING_ADDRESS_FIELDS) or None


def tracking(order: Sequence[Any]) -> dict[str, Any]:
    """``tracking`` of the fulfilled event (empty when the order has none)."""
    return present_fields(order, TRACKING_FIELDS)


def contact(order: Sequence[Any]) -> dict[str, Any]:
    """Email (trimmed, lower-cased) and phone (trimmed) identify the contact; ``customer_id`` is the shop's
    own key, so it goes to ``customProperties.shopCustomerID`` and never to ``contact.id``."""
    found: dict[str, Any] = {}
    email = _identifier(order[OrderColumn.EMAIL], lower=True)
    if email is not None:
        found["email"] = email
    phone = _identifier(order[OrderColumn.PHONE], lower=False)
    if phone is not None:
        found["phone"] = phone
    first_name, last_name = order[OrderColumn.FIRST_NAME], order[OrderColumn.LAST_NAME]
    if _given(first_name):
        found["firstName"] = first_name
    if _given(last_name):
        found["lastName"] = last_name
    customer_id = order[OrderColumn.CUSTOMER_ID]
    if _given(customer_id):
        found["customProperties"] = {"shopCustomerID": text(customer_id)}
    return found


def _identifier(value: Any, *, lower: bool) -> Any:
    """A text identifier trimmed (and lower-cased), None when that leaves nothing; others as they are."""
    if type(value) is not str:
        return value
    value = value.strip().lower() if lower else value.strip()
    return value or None


def _given(value: Any) -> bool:
    return value is not None and value != ""


def line_item(line: Sequence[Any]) -> dict[str, Any]:
    """A line item of ``lineItems`` (:data:`LINE_ITEM_FIELDS`, then its category)."""
    item = present_fields(line, LINE_ITEM_FIELDS)
    category = present_fields(line, CATEGORY_FIELDS)
    if category:
        item["productCategories"] = [category]
    return item


def refunded_item(line: Sequence[Any] | None, qty: Any, amount: Any) -> dict[str, Any]:
    """A refunded line item: the order line's product fields, the refunded quantity, and the refunded
    amount per unit as ``productPrice`` (rounded half-up to the cent when it does not divide evenly)."""
    item = line_item(line) if line is not None else {}
    item.pop("productDiscount", None)
    count = quantity(qty) if qty is not None else None
    price = _per_unit(to_decimal(amount), count)
    if price is None and amount is not None:
        price = money(amount)
    if price is not None:
        item["productPrice"] = price
    else:
        item.pop("productPrice", None)
    if count is not None:
        item["productQuantity"] = count
    else:
        item.pop("productQuantity", None)
    return item


def _per_unit(total: Decimal | None, count: Any) -> Any:
    """``total / count`` to the cent, as money; None when there is no such price."""
    if type(count) is not int or count <= 0 or total is None:
        return None
    try:
        per_unit = (total / count).quantize(_CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # beyond Decimal's precision: no real amount
        return None
    return money(per_unit)
