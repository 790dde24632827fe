"""validate_ndjson: NDJSON in, valid and rejected NDJSON out, a summary, and memory that stays flat."""

from __future__ import annotations

import io
import re
import tracemalloc
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.ndjson_validation import ValidationSummary, validate_ndjson
from airflow_omnisend.events.validation import EventValidator
from airflow_omnisend.exceptions import OmnisendInputError

if TYPE_CHECKING:
    from collections.abc import Iterator

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(i: int, *, name: str | None = None, **props: Any) -> dict[str, Any]:
    name = name or EVENT_NAMES[i % len(EVENT_NAMES)]
    properties: dict[str, Any] = {
        "orderID": str(1000 + i),
        "orderNumber": 1000 + i,
        "currency": "EUR",
        "totalPrice": 19.99,
        "lineItems": [{"productID": "1", "productPrice": 19.99, "productQuantity": 1}],
        "cancelReason": "changed mind",
        "totalRefundedAmount": 19.99,
    }
    properties.update(props)
    return {
        "eventName": name,
        "eventID": f"00000000-0000-5000-8000-{i:012d}",
        "eventTime": f"2025-06-01T12:{i % 60:02d}:00Z",
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"email": f"c{i}@example.com"},
        "properties": properties,
    }


def ndjson(*events: Any) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def run(data: bytes) -> tuple[ValidationSummary, list[bytes], list[dict[str, Any]]]:
    valid, rejected = io.BytesIO(), io.BytesIO()
    summary = validate_ndjson(io.BytesIO(data), valid, rejected, EventValidator(now=NOW))
    rejected_records = [orjson.loads(line) for line in rejected.getvalue().splitlines()]
    return summary, valid.getvalue().splitlines(), rejected_records


def test_valid_and_rejected_events_go_to_their_files() -> None:
    bad_price = event(1, name="placed order")
    bad_price["properties"]["lineItems"][0]["productPrice"] = -1
    no_total = event(2, name="paid for order")
    del no_total["properties"]["totalPrice"]
    unknown = {"eventName": "viewed product", "properties": {"orderID": "77"}}
    summary, valid, rejected = run(ndjson(event(0), bad_price, no_total, unknown))

    assert [orjson.loads(line)["properties"]["orderID"] for line in valid] == ["1000", "1002"]
    assert [r["line"] for r in rejected] == [2, 4]
    assert rejected[0]["event"] == bad_price
    assert rejected[0]["errors"] == [
        {
            "path": "properties.lineItems[0].productPrice",
            "message": "-1 is less than the minimum of 0",
            "code": "negative_money",
        }
    ]
    assert rejected[1]["event"]["properties"]["orderID"] == "77"  # a rejected line still names its order
    assert rejected[1]["errors"][0]["code"] == "unknown_event_name"

    assert summary.to_dict() == {
        "lines_read": 4,
        "events": 4,
        "valid": 2,
        "rejected": 2,
        "warnings": 1,
        "by_event_name": {
            "placed order": {"total": 2, "valid": 1, "rejected": 1},
            "paid for order": {"total": 1, "valid": 1, "rejected": 0},
            "(unknown)": {"total": 1, "valid": 0, "rejected": 1},
        },
        "rejects_by_reason": {"negative_money": 1, "unknown_event_name": 1},
        "warnings_by_code": {"missing_total_price": 1},
    }
    assert orjson.loads(orjson.dumps(summary.to_dict())) == summary.to_dict()
    assert summary.one_line() == (
        "4 events: 2 valid, 2 rejected (top reasons: negative_money 1, unknown_event_name 1), 1 warning"
    )


def test_valid_lines_are_written_exactly_as_read_one_object_per_line() -> None:
    compact = orjson.dumps(event(1, name="placed order"))
    spaced = b'{"eventName": "placed order", ' + compact[len(b'{"eventName":"placed order",') :]
    lines = [orjson.dumps(event(0)), b"  " + spaced + b"  ", orjson.dumps(event(2)) + b"\r"]
    data = b"\n".join(lines)  # no newline after the last line
    summary, valid, _ = run(data)
    assert summary.valid == 3
    assert valid == [lines[0], spaced, orjson.dumps(event(2))]
    for line in valid:
        assert orjson.loads(line)["eventVersion"] == "v2"


def test_blank_lines_and_a_bom_are_skipped_but_lines_are_counted() -> None:
    data = b"\xef\xbb\xbf" + ndjson(event(0)) + b"\n   \n" + ndjson(event(1)) + b"\n"
    summary, valid, _ = run(data)
    assert (summary.lines_read, summary.events, summary.valid) == (5, 2, 2)
    assert len(valid) == 2


def test_rejects_by_reason_count_events_not_errors() -> None:
    broken = event(0, name="placed order")
    broken["properties"]["lineItems"] = [
        {"productQuantity": 0},
        {"productQuantity": -1},
        {"productPrice": -1, "productQuantity": 1},
    ]
    summary, _, rejected = run(ndjson(broken))
    assert len(rejected[0]["errors"]) == 3
    assert summary.rejects_by_reason == {"quantity": 1, "negative_money": 1}


def test_empty_input() -> None:
    summary, valid, rejected = run(b"")
    assert summary.to_dict()["events"] == 0
    assert (valid, rejected) == ([], [])
    assert summary.one_line() == "0 events: 0 valid, 0 rejected, 0 warnings"


def test_outputs_can_be_discarded() -> None:
    data = ndjson(event(0), {"eventName": "nope"})
    summary = validate_ndjson(io.BytesIO(data), None, None, EventValidator(now=NOW))
    assert (summary.valid, summary.rejected) == (1, 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json}", "line 3: not JSON"),
        (b'{"eventName": "placed order"', "line 3: not JSON"),
        (b"[1, 2]", "line 3: an array where an event (a JSON object) was expected"),
        (b'"placed order"', "line 3: a string where an event"),
        (b"null", "line 3: null where an event"),
        (b"NaN", "line 3: not JSON"),
        (b'{"a": "\xff"}', "line 3: not JSON"),
    ],
)
def test_a_line_that_is_not_an_object_stops_the_run_naming_the_line(line: bytes, message: str) -> None:
    data = ndjson(event(0)) + b"\n" + line + b"\n" + ndjson(event(1))
    with pytest.raises(OmnisendInputError, match=re.escape(message)) as raised:
        run(data)
    assert str(raised.value).startswith("line 3: ")


def test_one_sink_for_both_outputs_keeps_the_input_order() -> None:
    bad = event(1, currency="eur")
    data = ndjson(event(0), bad, event(2), event(3), {"eventName": "nope"}, event(5))
    sink = io.BytesIO()
    summary = validate_ndjson(io.BytesIO(data), sink, sink, EventValidator(now=NOW))
    records = [orjson.loads(line) for line in sink.getvalue().splitlines()]
    assert [r.get("line") or r["properties"]["orderID"] for r in records] == [
        "1000",
        2,
        "1002",
        "1003",
        5,
        "1005",
    ]
    assert (summary.valid, summary.rejected) == (4, 2)


def test_valid_lines_beyond_one_chunk_are_all_written_also_when_a_bad_line_stops_the_run() -> None:
    lines = [orjson.dumps(event(i)) for i in range(400)]  # well over 64 KiB
    assert sum(len(line) for line in lines) > 2 * 64 * 1024
    valid = io.BytesIO()
    summary = validate_ndjson(io.BytesIO(b"\n".join(lines)), valid, None, EventValidator(now=NOW))
    assert summary.valid == 400
    assert valid.getvalue() == b"".join(line + b"\n" for line in lines)
    valid = io.BytesIO()
    with pytest.raises(OmnisendInputError, match="line 401: not JSON"):
        validate_ndjson(io.BytesIO(b"\n".join([*lines, b"{"])), valid, None, EventValidator(now=NOW))
    assert valid.getvalue() == b"".join(line + b"\n" for line in lines)


def test_first_and_last_event_times_are_compared_as_instants_and_kept_canonical() -> None:
    times = ["2025-06-01T12:00:00+03:00", "2025-06-01T10:00:00Z", "2025-06-01T08:30:00-01:00"]
    events = [dict(event(i), eventTime=when) for i, when in enumerate(times)]
    too_new = dict(event(3), eventTime="2026-06-01T00:00:00Z")  # rejected: not counted
    summary, _, _ = run(ndjson(*events, too_new))
    assert summary.valid_event_stats() == {
        "warned": 0,
        "first_event_time": "2025-06-01T09:00:00Z",  # written 12:00:00+03:00
        "last_event_time": "2025-06-01T10:00:00Z",
    }


# -- memory stays flat -----------------------------------------------------------------------------


class LazyLines(io.RawIOBase):
    """A readable binary stream that makes its NDJSON lines as they are read (none kept in memory)."""

    def __init__(self, count: int) -> None:
        self._lines = self._make(count)
        self._pending = b""

    @staticmethod
    def _make(count: int) -> Iterator[bytes]:
        for i in range(count):
            if i % 10 == 3:  # one in ten rejected, for one of three reasons
                broken = event(i, **[{"currency": "eur"}, {"totalPrice": -i}, {"orderID": i}][i % 3])
                yield orjson.dumps(broken) + b"\n"
            else:
                yield orjson.dumps(event(i)) + b"\n"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while len(self._pending) < len(buffer):
            chunk = next(self._lines, None)
            if chunk is None:
                break
            self._pending += chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.bytes += len(data)
        self.lines += bytes(data).count(b"\n")
        return len(data)


def _peak_bytes(count: int, validator: EventValidator) -> tuple[int, ValidationSummary, CountingSink]:
    src = io.BufferedReader(LazyLines(count), buffer_size=1 << 16)
    valid, rejected = CountingSink(), CountingSink()
    tracemalloc.start()
    try:
        summary = validate_ndjson(src, valid, rejected, validator)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, summary, valid


def test_memory_does_not_grow_with_the_input() -> None:
    validator = EventValidator(now=NOW)
    _peak_bytes(200, validator)  # warm up: compile validators, fill caches
    small_peak, _, _ = _peak_bytes(1_000, validator)
    large_peak, large, valid_sink = _peak_bytes(10_000, validator)
    assert (large.events, large.valid, large.rejected) == (10_000, 9_000, 1_000)
    assert valid_sink.lines == 9_000
    assert len(large.rejects_by_reason) == 3
    # ten times the events, (nearly) the same peak: nothing is kept per event but the collision index's
    # slot (events/collisions.py: 20 bytes a slot, 2-4 slots an event, old + new table while it doubles)
    assert large_peak < small_peak * 1.5 + 64 * 1024 + 120 * 10_000, (small_peak, large_peak)
    assert large_peak < 2 * 1024 * 1024


def _validated(*lines: bytes, **kwargs: Any) -> tuple[ValidationSummary, list[bytes], list[dict[str, Any]]]:
    valid, rejected = io.BytesIO(), io.BytesIO()
    summary = validate_ndjson(
        io.BytesIO(b"".join(line + b"\n" for line in lines)),
        valid,
        rejected,
        EventValidator(now=NOW),
        **kwargs,
    )
    return summary, valid.getvalue().splitlines(), [orjson.loads(r) for r in rejected.getvalue().splitlines()]


def _collision_pair() -> tuple[bytes, bytes]:
    first = orjson.dumps(_issue14_event("1"))
    other = orjson.dumps(
        {**_issue14_event("1"), "properties": {**_issue14_event("1")["properties"], "totalPrice": 5}}
    )
    return first, other


def _issue14_event(order_id: str) -> dict[str, Any]:
    return {
        "eventName": "placed order",
        "eventID": "f1eeb5bd-736c-42c7-9cfe-6990f7f59b35",
        "eventTime": "2024-01-01T00:00:00Z",
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"email": "customer@example.com"},
        "properties": {"orderID": order_id, "currency": "EUR", "totalPrice": 39.98, "lineItems": []},
    }


def test_an_event_id_collision_keeps_the_first_and_rejects_the_other_with_a_code() -> None:
    first, other = _collision_pair()
    summary, valid, rejected = _validated(first, other, first)
    assert valid == [first, first]  # the exact repeat is no collision
    assert summary.rejects_by_reason == {"event_id_collision": 1}
    assert rejected[0]["line"] == 2
    assert rejected[0]["errors"][0]["code"] == "event_id_collision"
    assert "line 1" in rejected[0]["errors"][0]["message"]


def test_a_key_repeated_inside_an_object_rejects_the_line() -> None:
    good = orjson.dumps(_issue14_event("1"))
    twice = good.replace(b'"currency":"EUR"', b'"currency":"EUR","currency":"USD"')
    nested = good[:-1] + b', "origin": "api"}'  # also non-canonical spacing: the slow path
    spaced = orjson.dumps(_issue14_event("2"), option=orjson.OPT_INDENT_2).replace(b"\n", b"")
    summary, valid, rejected = _validated(twice, nested, spaced)
    assert [r["line"] for r in rejected] == [1, 2]
    assert [r["errors"][-1]["code"] for r in rejected] == ["duplicate_key", "duplicate_key"]
    assert "'currency' appears twice" in rejected[0]["errors"][-1]["message"]
    assert summary.valid == 1
    assert valid == [spaced]


def test_an_event_over_the_body_limit_is_rejected_when_a_limit_is_given() -> None:
    event = _issue14_event("1")
    event["properties"]["note"] = "x" * 3000
    line = orjson.dumps(event)
    assert _validated(line)[0].valid == 1
    summary, _, rejected = _validated(line, max_event_bytes=2000)
    assert summary.rejects_by_reason == {"over_body_limit": 1}
    assert f"{len(line)} bytes, over the 2000-byte limit" in rejected[0]["errors"][0]["message"]


# -- eventTime in the events contract's other forms ----------------------------------------------------------

#: written form -> the canonical UTC string the valid output must hold
CONTRACT_FORMS = {
    "2025-06-01 14:00:00+02:00": "2025-06-01T12:00:00Z",  # the contract's own example shape
    "2025-06-01T12:00:00.1234567Z": "2025-06-01T12:00:00.123456Z",  # digits beyond 6: truncated
    "2025-06-01T12:00:00.120000000z": "2025-06-01T12:00:00.120Z",
    "2025-06-01t07:00:00-0500": "2025-06-01T12:00:00Z",
    "2025-06-01 15:00:00.5+03": "2025-06-01T12:00:00.500Z",
    "2025-06-01T12:00:00-00:00": "2025-06-01T12:00:00Z",
}


def test_contract_forms_are_valid_and_written_with_the_canonical_event_time() -> None:
    events = [dict(event(i), eventTime=written) for i, written in enumerate(CONTRACT_FORMS)]
    summary, valid, rejected = run(ndjson(*events))
    assert (summary.valid, rejected) == (len(events), [])
    for line, source, canonical in zip(valid, events, CONTRACT_FORMS.values(), strict=True):
        assert orjson.loads(line) == {**source, "eventTime": canonical}
        # only the eventTime's bytes change: the rest of the line is as read
        assert line == orjson.dumps(source).replace(
            orjson.dumps(source["eventTime"]), orjson.dumps(canonical)
        )
    assert summary.valid_event_stats()["first_event_time"] == "2025-06-01T12:00:00Z"


def test_a_canonical_line_is_written_as_read() -> None:
    raw = b'{"eventName": "placed order",' + orjson.dumps(event(0))[len(b'{"eventName":"placed order",') :]
    _, valid, _ = run(raw + b"\n")
    assert valid == [raw]


def test_an_unusual_spelling_is_rewritten_whole_and_still_reads_back() -> None:
    source = dict(event(0), eventTime="2025-06-01 14:00:00+02:00")
    escaped = orjson.dumps(source).replace(b"14:00:00+02:00", b"14:00:00\\u002b02:00")
    nested = dict(event(1), eventTime="2025-06-01 14:00:00+02:00")
    nested["properties"]["extra"] = {"eventTime": "2025-06-01 14:00:00+02:00"}
    summary, valid, _ = run(escaped + b"\n" + ndjson(nested))
    assert summary.valid == 2
    assert orjson.loads(valid[0]) == {**source, "eventTime": "2025-06-01T12:00:00Z"}
    assert orjson.loads(valid[1]) == {**nested, "eventTime": "2025-06-01T12:00:00Z"}
    assert orjson.loads(valid[1])["properties"]["extra"]["eventTime"] == "2025-06-01 14:00:00+02:00"


def test_one_event_in_two_time_forms_is_a_repeat_not_a_collision() -> None:
    first = event(0)
    again = dict(event(0), eventTime="2025-06-01 14:00:00+02:00")  # the same instant as 12:00:00Z
    other = dict(event(0, orderNumber=5), eventTime="2025-06-01T12:00:00.000000+00:00")
    _, valid, rejected = run(ndjson(first, again, other))
    assert valid[0] == valid[1] == orjson.dumps(first)
    assert [r["line"] for r in rejected] == [3]
    assert rejected[0]["errors"][0]["code"] == "event_id_collision"


def test_the_body_limit_is_applied_to_the_line_as_written() -> None:
    short = dict(event(0), eventTime="2025-06-01T12:00:00.5Z")  # written as ...00.500Z: 2 bytes more
    line = orjson.dumps(short)
    for limit, valid_count in ((len(line), 0), (len(line) + 2, 1)):
        out = io.BytesIO()
        summary = validate_ndjson(
            io.BytesIO(line + b"\n"), out, None, EventValidator(now=NOW), max_event_bytes=limit
        )
        assert summary.valid == valid_count


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("2025-06-01 12:00:00", "is not an ISO 8601 time"),
        ("2025-06-01T12:00Z", "is not an ISO 8601 time"),
        ("2025-06-01T12:00:00+15:00", "offset outside ±14:59"),
        ("2025-06-01T12:00:00+0160", "offset outside ±14:59"),
        ("2025-06-01T12:00:60Z", "not a real time"),
    ],
)
def test_other_forms_are_still_rejected_with_a_reason(written: str, message: str) -> None:
    summary, valid, rejected = run(ndjson(dict(event(0), eventTime=written)))
    assert (summary.valid, valid) == (0, [])
    (error,) = rejected[0]["errors"]
    assert error["path"] == "eventTime"
    assert message in error["message"]
