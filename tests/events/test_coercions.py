"""Value coercions: money with exact cents, whole quantities (more through the mapping in test_mapping)."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from airflow_omnisend.events.coercions import currency, money, order_number, quantity, text, to_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (19.99, 19.99),
        (Decimal("19.99"), 19.99),
        ("19.99", 19.99),
        (" 0.10 ", 0.1),
        (Decimal("5.00"), 5),
        (5.0, 5),
        ("1234567890.01", 1234567890.01),
        (Decimal("0.30"), 0.3),
        (-4.99, -4.99),  # passed on: the validator rejects negative money
        ("abc", "abc"),  # passed on: not a number
        (None, None),
    ],
)
def test_money_keeps_cents_exactly(value: object, expected: object) -> None:
    out = money(value)
    assert out == expected
    assert type(out) is type(expected)
    if isinstance(expected, float):
        assert orjson.dumps(out).decode() == repr(expected)


def test_money_json_is_the_same_whichever_database() -> None:
    # SQLite NUMERIC gives floats/ints, PostgreSQL Decimal, CSV text: one JSON spelling each amount
    for forms in [
        (19.99, Decimal("19.99"), "19.99"),
        (5, 5.0, Decimal("5.00"), "5.00"),
        (0, Decimal("0.00"), "0"),
    ]:
        assert len({orjson.dumps(money(v)) for v in forms}) == 1


@pytest.mark.parametrize(
    ("value", "expected"), [(2, 2), (2.0, 2), ("3", 3), (Decimal(4), 4), (2.5, 2.5), ("x", "x")]
)
def test_quantity(value: object, expected: object) -> None:
    assert quantity(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, "7"), (7.0, "7"), (7.5, "7.5"), ("P-7", "P-7"), (None, None), (Decimal("7.00"), "7.00")],
)
def test_text(value: object, expected: object) -> None:
    assert text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1001, 1001), ("1001", 1001), (" 1001 ", 1001), (1001.0, 1001), (Decimal(1001), 1001), ("A-1", "A-1")],
)
def test_order_number(value: object, expected: object) -> None:
    assert order_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (19.99, Decimal("19.99")),
        ("19.99", Decimal("19.99")),
        (5, Decimal(5)),
        (float("nan"), None),
        (float("inf"), None),
        ("n/a", None),
        (Decimal("Infinity"), None),
        (None, None),
    ],
)
def test_to_decimal(value: object, expected: object) -> None:
    assert to_decimal(value) == expected


def test_currency_is_trimmed_and_upper_cased() -> None:
    assert currency(" eur ") == "EUR"
    assert currency(978) == 978
