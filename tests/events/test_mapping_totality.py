"""The mapping is total: whatever a row holds, it returns events (never raises), and they serialise."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_omnisend.events.coercions import text
from airflow_omnisend.events.columns import LINE_COLUMNS, ORDER_COLUMNS, ORDER_TIME_COLUMN, REFUND_COLUMNS
from airflow_omnisend.events.mapping import map_order
from airflow_omnisend.events.names import PLACED, REFUNDED
from airflow_omnisend.events.validation import EventValidator, Issue
from airflow_omnisend.sources.extract import json_default, json_safe

_times = st.one_of(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=14))]),
    ),
    st.sampled_from(
        ["2024-03-10T04:59:59Z", "2024-03-09T23:59:59-05:00", "2024-03-09 23:59", "2024-02-30T00:00:00Z", ""]
    ),
)
_values = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.binary(max_size=8),
    _times,
)


def _row(columns: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(columns, _values))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    order=_row(ORDER_COLUMNS),
    lines=st.lists(_row(LINE_COLUMNS), max_size=3),
    refunds=st.lists(
        st.tuples(_row(REFUND_COLUMNS), st.lists(_row(("line_number", "quantity", "amount")), max_size=2)),
        max_size=2,
    ),
)
def test_any_row_content_maps_and_serialises(
    order: dict[str, Any], lines: list[dict[str, Any]], refunds: list[tuple[dict[str, Any], list[Any]]]
) -> None:
    refund_rows = [{**refund, "lines": refund_lines} for refund, refund_lines in refunds]
    events = map_order("store", order, lines, refund_rows)
    # one event per lifecycle step the row has: placed always, the others when their time is not null
    steps = [PLACED] + [n for n, c in ORDER_TIME_COLUMN.items() if n != PLACED and order.get(c) is not None]
    assert Counter(e["eventName"] for e in events) == Counter(steps + [REFUNDED] * len(refunds))
    validator = EventValidator(now=datetime(2030, 1, 1, tzinfo=UTC))
    for event in events:
        data = orjson.dumps(json_safe(event), default=json_default)
        decoded = orjson.loads(data)
        assert list(decoded)[:2] == ["eventName", "eventID"]
        assert uuid.UUID(decoded["eventID"]).version == 5
        if order.get("order_id") is not None:  # a rejected event still names its order
            assert decoded["properties"]["orderID"] == text(order["order_id"])
        verdict = validator.check(decoded)  # judged by the schemas, not crashed on
        assert all(isinstance(issue, Issue) for issue in verdict.errors + verdict.warnings)
        assert {i.code for i in verdict.errors}.isdisjoint({"not_an_object", "unknown_event_name"})


def test_decimal_in_a_text_field_serialises() -> None:
    event = map_order("s", {"order_id": "1", "note": Decimal("1.50"), "created_at": "2024-01-01T00:00:00Z"})[
        0
    ]
    assert orjson.loads(orjson.dumps(event, default=json_default))["properties"]["note"] == "1.50"
