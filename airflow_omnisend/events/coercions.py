"""Value coercions of the mapping: a source's value -> the JSON value Omnisend expects, or the value itself.

Each is total: a value it cannot convert is returned unchanged (so the validator rejects the event and says
why), never an exception. The same amount or id is the same JSON whichever database it came from:
SQLite gives ints and floats, PostgreSQL ``Decimal``, CSV text.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["currency", "money", "order_number", "quantity", "text", "to_decimal"]


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


def currency(value: Any) -> Any:
    """A currency code trimmed and upper-cased (``" eur "`` -> ``"EUR"``); other values as they are."""
    return value.strip().upper() if type(value) is str else value
