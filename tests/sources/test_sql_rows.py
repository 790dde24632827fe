"""Query rows -> the mapper's tuples: where the columns are, the JSON line columns, prepared orders."""

from __future__ import annotations

import pytest

from airflow_omnisend.events.columns import LINE_COLUMNS, ORDER_COLUMNS, OrderColumn
from airflow_omnisend.events.mapping import OrderEventMapper
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.sources.sql_queries import REQUIRED_LINE_COLUMNS, REQUIRED_ORDER_COLUMNS
from airflow_omnisend.sources.sql_rows import PreparedOrders, RowLayout, json_rows


def _description(*names: str) -> list[tuple[str, None]]:
    return [(name, None) for name in names]


def test_layout_picks_the_mapper_tuples_by_column_name() -> None:
    names = ("extra", *reversed(ORDER_COLUMNS), "lines_json")
    layout = RowLayout.of("placed", _description(*(n.upper() for n in names)))
    row = tuple(f"v:{n}" for n in names)
    assert layout.order(row) == tuple(f"v:{c}" for c in ORDER_COLUMNS)
    assert layout.time == names.index("created_at")
    assert layout.raw_lines([row]) == "v:lines_json"
    assert (layout.refund, layout.history) == (None, -1)


def test_layout_fills_missing_optional_columns_with_null() -> None:
    layout = RowLayout.of("paid", _description(*REQUIRED_ORDER_COLUMNS, *REQUIRED_LINE_COLUMNS))
    row = tuple(range(len(REQUIRED_ORDER_COLUMNS) + len(REQUIRED_LINE_COLUMNS)))
    order = layout.order(row)
    assert order[OrderColumn.ORDER_ID] == 0
    assert order[OrderColumn.NOTE] is None
    line = layout.line(row)
    assert len(line) == len(LINE_COLUMNS)
    assert layout.raw_lines([row, row]) == (line, line)  # one row per line
    assert layout.lines((line,), "A") == [line]


def test_layout_names_what_is_missing() -> None:
    with pytest.raises(OmnisendConfigError, match="no result columns"):
        RowLayout.of("placed", None)
    with pytest.raises(OmnisendConfigError, match=r"'refunded' query .* refund_id, refund_created_at"):
        RowLayout.of("refunded", _description(*REQUIRED_ORDER_COLUMNS, "lines_json"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("[]", []),
        ("[[1, 2, 3]]", [[1, 2, 3]]),
        (b'[{"line_number": 1, "amount": 5}]', [(1, None, 5)]),
        ([(1, 2, 3)], [(1, 2, 3)]),
    ],
)
def test_json_rows(value: object, expected: list[object]) -> None:
    assert json_rows(value, ("line_number", "quantity", "amount"), "refunded_lines_json", "R") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[1,", "'R' is not JSON"),
        ('{"a": 1}', "is not a JSON array"),
        ("[[1, 2]]", r"'\[1, 2\]' is not an array of 3 values"),
        ('[[1, 2, 3], "x"]', "'x' is not an array of 3 values"),
    ],
)
def test_malformed_json_rows_are_query_errors(value: str, message: str) -> None:
    with pytest.raises(OmnisendInputError, match=message):
        json_rows(value, ("line_number", "quantity", "amount"), "refunded_lines_json", "R")


def test_prepared_orders_prepare_each_order_once_and_stay_bounded() -> None:
    layout = RowLayout.of("placed", _description(*ORDER_COLUMNS, "lines_json"))
    orders = PreparedOrders(OrderEventMapper("s"), size=2)
    first = ("A", *[None] * (len(ORDER_COLUMNS) - 1))
    lines, prepared = orders.get(first, "[]", layout)
    assert lines == []
    assert orders.get(first, "[]", layout)[1] is prepared
    changed = ("A", 7, *[None] * (len(ORDER_COLUMNS) - 2))
    assert orders.get(changed, "[]", layout)[1] is not prepared  # the row changed: prepared again
    for order_id in ("B", "C"):
        orders.get((order_id, *[None] * (len(ORDER_COLUMNS) - 1)), None, layout)
    assert len(orders._orders) == 2
