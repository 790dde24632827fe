"""The column contract: the tuples' columns are the reference schema's, each position named once."""

from __future__ import annotations

import sqlite3
from importlib import resources

import pytest

from airflow_omnisend.events.columns import (
    LINE_COLUMNS,
    ORDER_COLUMNS,
    ORDER_TIME_INDEX,
    REFUND_COLUMNS,
    REFUND_LINE_COLUMNS,
    LineColumn,
    OrderColumn,
    RefundColumn,
    line_tuple,
    order_tuple,
    refund_tuple,
)
from airflow_omnisend.events.names import CANCELED, FULFILLED, PAID, PLACED


def _schema_columns(table: str) -> tuple[str, ...]:
    ddl = resources.files("airflow_omnisend.sources").joinpath("reference_shop_schema.sql").read_text()
    conn = sqlite3.connect(":memory:")
    conn.executescript(ddl)
    return tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))


@pytest.mark.parametrize(
    ("columns", "table", "skip"),
    [
        (ORDER_COLUMNS, "orders", ()),
        (LINE_COLUMNS, "order_lines", ("order_id",)),
        (REFUND_COLUMNS, "refunds", ()),
        (REFUND_LINE_COLUMNS, "refund_lines", ()),
    ],
)
def test_tuples_hold_the_schema_columns_in_schema_order(
    columns: tuple[str, ...], table: str, skip: tuple[str, ...]
) -> None:
    assert columns == tuple(c for c in _schema_columns(table) if c not in skip)


def test_named_positions_point_at_their_columns() -> None:
    assert ORDER_COLUMNS[OrderColumn.CANCEL_REASON] == "cancel_reason"
    assert ORDER_COLUMNS[OrderColumn.TOTAL_PRICE] == "total_price"
    assert LINE_COLUMNS[LineColumn.LINE_NUMBER] == "line_number"
    assert REFUND_COLUMNS[RefundColumn.CREATED_AT] == "created_at"
    for positions, columns in ((OrderColumn, ORDER_COLUMNS), (LineColumn, LINE_COLUMNS)):
        for name, position in vars(positions).items():
            if name.isupper():
                assert columns[position] == name.lower()
    assert {name: ORDER_COLUMNS[i] for name, i in ORDER_TIME_INDEX.items()} == {
        PLACED: "created_at",
        PAID: "paid_at",
        FULFILLED: "fulfilled_at",
        CANCELED: "canceled_at",
    }


def test_dict_rows_become_tuples_with_nulls_for_missing_columns() -> None:
    order = order_tuple({"order_id": "A", "paid_at": "2024-03-10T00:00:00Z", "unknown": 1})
    assert len(order) == len(ORDER_COLUMNS)
    assert (order[OrderColumn.ORDER_ID], order[OrderColumn.PAID_AT]) == ("A", "2024-03-10T00:00:00Z")
    assert sum(v is not None for v in order) == 2
    assert line_tuple({"line_number": 3})[LineColumn.LINE_NUMBER] == 3
    assert refund_tuple({}) == (None,) * len(REFUND_COLUMNS)
