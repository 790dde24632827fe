"""extract_partition: NDJSON out, counts, rejected rows, summary for XCom."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.sources.base import OrderSource, RowRejection
from airflow_omnisend.sources.extract import extract_partition, sweep_unplaceable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

WINDOW = PartitionWindow.for_day("2024-03-10", "America/New_York")


class ListSource:
    """A source that yields given events and rejects given rows."""

    def __init__(self, events: list[dict[str, Any]], rejections: list[RowRejection] | None = None) -> None:
        self.events = events
        self.rejections = rejections or []

    def iter_events(
        self, store_id: str, window: PartitionWindow, reject: Callable[[RowRejection], None]
    ) -> Iterator[dict[str, Any]]:
        for rejection in self.rejections:
            reject(rejection)
        yield from self.events

    def find_unplaceable(self, reject: Callable[[RowRejection], None]) -> int:
        for rejection in self.rejections:
            reject(rejection)
        return len(self.rejections)


def _event(name: str, order_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "eventName": name,
        "eventTime": "2024-03-10T12:00:00Z",
        "properties": {"orderID": order_id, **extra},
    }


def test_writes_one_compact_object_per_line_and_counts() -> None:
    events = [_event("placed order", str(i), note="Žalgiris\n") for i in range(1000)] + [
        _event("order refunded", "x")
    ]
    source = ListSource(events)
    assert isinstance(source, OrderSource)
    out = io.BytesIO()
    summary = extract_partition(source, "shop", WINDOW, out)
    data = out.getvalue()
    lines = data.split(b"\n")
    assert lines[-1] == b""
    assert [orjson.loads(line) for line in lines[:-1]] == events
    assert b" " not in lines[0].replace(b"placed order", b"")
    assert summary.events == 1001
    assert summary.by_event_name == {"placed order": 1000, "order refunded": 1}
    assert summary.bytes_written == len(data)
    assert summary.rows_rejected == 0
    as_dict = summary.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["day"] == "2024-03-10"
    assert as_dict["start_utc"] == "2024-03-10T05:00:00+00:00"
    assert as_dict["end_utc"] == "2024-03-11T04:00:00+00:00"


def test_rejected_rows_are_written_counted_and_sampled() -> None:
    rejections = [
        RowRejection("paid for order", f"O{i}", "paid_at", f"2024-03-10 0{i % 10}:00", "has no UTC offset")
        for i in range(30)
    ] + [RowRejection("order refunded", "O1", "refund_created_at", None, "x", code="other", refund_id="R1")]
    rejected_out = io.BytesIO()
    summary = extract_partition(
        ListSource([], rejections), "shop", WINDOW, io.BytesIO(), rows_rejected_out=rejected_out
    )
    rows = [orjson.loads(line) for line in rejected_out.getvalue().splitlines()]
    assert len(rows) == summary.rows_rejected == 31
    assert summary.rows_rejected_by_code == {"unplaceable_time": 30, "other": 1}
    assert len(summary.rows_rejected_samples) == 20
    assert rows[0] == {
        "eventName": "paid for order",
        "orderID": "O0",
        "column": "paid_at",
        "value": "2024-03-10 00:00",
        "code": "unplaceable_time",
        "reason": "has no UTC offset",
    }
    assert rows[-1]["refundID"] == "R1"
    # without an output the rows are still counted and sampled
    again = extract_partition(ListSource([], rejections), "shop", WINDOW, io.BytesIO())
    assert again.rows_rejected == 31
    assert again.rows_rejected_samples == summary.rows_rejected_samples


def test_values_orjson_cannot_write_do_not_stop_the_extraction() -> None:
    from decimal import Decimal

    event = _event("placed order", "A", note=Decimal("1.5"), big=10**30, blob=b"\xffok")
    out = io.BytesIO()
    extract_partition(ListSource([event]), "shop", WINDOW, out)
    props = orjson.loads(out.getvalue())["properties"]
    assert props["note"] == "1.5"
    assert props["big"] == str(10**30)
    assert props["blob"] == "\ufffdok"
    rejected = io.BytesIO()
    odd = RowRejection("placed order", 7, "created_at", Decimal("2"), "odd")
    extract_partition(ListSource([], [odd]), "shop", WINDOW, io.BytesIO(), rows_rejected_out=rejected)
    assert orjson.loads(rejected.getvalue())["value"] == "Decimal('2')"
    assert orjson.loads(rejected.getvalue())["orderID"] == "7"


def test_store_id_is_checked() -> None:
    with pytest.raises(OmnisendConfigError, match="store_id"):
        extract_partition(ListSource([]), "a:b", WINDOW, io.BytesIO())


def test_sweep() -> None:
    rejections = [RowRejection("placed order", "A", "created_at", "soon", "no date", code="no_date")]
    out = io.BytesIO()
    writer = sweep_unplaceable(ListSource([], rejections), out)
    assert writer.count == 1
    assert writer.by_code == {"no_date": 1}
    assert orjson.loads(out.getvalue())["value"] == "soon"
