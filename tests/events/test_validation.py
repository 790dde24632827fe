"""EventValidator: the seed fixture, warnings, the eventTime post-check, odd inputs."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from validation_helpers import NOW, minimal

from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.schema import schema_documents
from airflow_omnisend.events.timefmt import EARLIEST_EVENT_TIME, InstantError, read_event_time
from airflow_omnisend.events.validation import EventValidator, EventVerdict, Issue

SHARED_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EVENT_TIME_PATTERN = schema_documents()["defs.json"]["$defs"]["eventTime"]["pattern"]


def seed_items() -> list[dict[str, Any]]:
    batch = json.loads((SHARED_FIXTURES / "seed-batch-placed-order.json").read_text(encoding="utf-8"))
    return list(batch["items"])


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator(now=NOW)


def test_seed_fixture_items_have_no_error_and_exactly_one_warning(validator: EventValidator) -> None:
    items = seed_items()
    assert items
    for item in items:
        verdict = validator.check(item)
        assert verdict.errors == []
        assert verdict.ok
        assert verdict.warnings == [
            Issue(
                "properties.totalPrice",
                "recommended property totalPrice is missing: Omnisend needs it for revenue reporting",
                "missing_total_price",
            )
        ]


def test_seed_fixture_with_total_price_has_no_warning(validator: EventValidator) -> None:
    item = seed_items()[0]
    item["properties"]["totalPrice"] = 39.98
    assert validator.check(item) == EventVerdict([], [])


@pytest.mark.parametrize(
    ("name", "props", "codes"),
    [
        ("placed order", {}, ["missing_total_price", "missing_line_items"]),
        ("placed order", {"totalPrice": 1, "lineItems": []}, []),
        ("paid for order", {}, ["missing_total_price"]),
        ("order fulfilled", {}, ["missing_total_price"]),
        ("order canceled", {}, ["missing_total_price", "missing_cancel_reason"]),
        ("order canceled", {"totalPrice": 1, "cancelReason": "x"}, []),
        ("order refunded", {}, ["missing_total_price", "missing_total_refunded_amount"]),
        ("order refunded", {"totalPrice": 1, "totalRefundedAmount": 1}, []),
    ],
)
def test_warnings_name_missing_recommended_properties(
    validator: EventValidator, name: str, props: dict[str, Any], codes: list[str]
) -> None:
    verdict = validator.check(minimal(name, **props))
    assert verdict.errors == []
    assert [w.code for w in verdict.warnings] == codes
    for warning in verdict.warnings:
        assert warning.path.startswith("properties.")
        assert "missing" in warning.message


def test_rejected_event_still_gets_its_warnings(validator: EventValidator) -> None:
    event = minimal(currency="EURO")
    event["properties"]["currency"] = "EURO"
    verdict = validator.check(event)
    assert [e.code for e in verdict.errors] == ["currency_not_iso4217"]
    assert {w.code for w in verdict.warnings} == {"missing_total_price", "missing_line_items"}


# -- the eventTime post-check ------------------------------------------------------------------------


def test_post_check_is_the_same_on_both_paths(validator: EventValidator) -> None:
    """A calendar error is found whether the rest of the event passes the screen or not."""
    good = minimal()
    good["eventTime"] = "2023-02-29T00:00:00Z"
    bad = copy.deepcopy(good)
    bad["properties"]["currency"] = "eur"
    assert validator.screen_is_valid(good)
    assert not validator.screen_is_valid(bad)
    assert [e.code for e in validator.check(good).errors] == ["event_time_invalid"]
    assert sorted(e.code for e in validator.check(bad).errors) == [
        "currency_not_iso4217",
        "event_time_invalid",
    ]
    assert validator.post_check(good) == validator.post_check(bad) == validator.check(good).errors


def test_post_check_leaves_malformed_times_to_the_schema(validator: EventValidator) -> None:
    for value in ("2024-01-01", "2024-01-01T00:00:00Z\n", 5, None):
        event = minimal()
        event["eventTime"] = value
        assert validator.post_check(event) == []
        assert [e.code for e in validator.check(event).errors] == ["event_time_format"]
    assert validator.post_check("not an event") == []


def test_future_is_judged_as_an_instant_not_as_text() -> None:
    validator = EventValidator(now=datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))
    event = minimal()
    event["eventTime"] = "2026-01-01T10:00:00Z"  # == now
    assert validator.check(event).errors == []
    event["eventTime"] = "2026-01-01T10:00:00.001Z"
    assert [e.code for e in validator.check(event).errors] == ["event_time_future"]
    event["eventTime"] = "2026-01-01T05:00:01-05:00"
    assert [e.code for e in validator.check(event).errors] == ["event_time_future"]


def test_min_age_keeps_recent_events_back() -> None:
    validator = EventValidator(now=NOW, min_age=timedelta(hours=1))
    event = minimal()
    event["eventTime"] = "2025-12-31T23:00:00Z"  # exactly an hour old
    assert validator.check(event).errors == []
    event["eventTime"] = "2025-12-31T23:00:01Z"
    (error,) = validator.check(event).errors
    assert error.code == "event_time_too_recent"
    assert "1:00:00" in error.message
    event["eventTime"] = "2026-01-01T00:00:01Z"
    assert [e.code for e in validator.check(event).errors] == ["event_time_future"]


def test_default_now_is_fixed_when_the_validator_is_made() -> None:
    before = datetime.now(UTC)
    validator = EventValidator()
    assert before <= validator.now <= datetime.now(UTC)
    event = minimal()
    event["eventTime"] = (validator.now + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [e.code for e in validator.check(event).errors] == ["event_time_future"]


def test_naive_now_and_negative_min_age_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        EventValidator(now=datetime(2026, 1, 1))  # a naive time: the point of the test
    with pytest.raises(ValueError, match="min_age must not be negative"):
        EventValidator(now=NOW, min_age=timedelta(seconds=-1))


@settings(max_examples=300, deadline=None)
@given(st.from_regex(EVENT_TIME_PATTERN, fullmatch=True).filter(lambda v: "\n" not in v))
def test_every_time_the_schema_lets_through_is_judged_by_the_one_time_rule(value: str) -> None:
    validator = EventValidator(now=datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
    event = minimal()
    event["eventTime"] = value
    verdict = validator.check(event)
    try:
        expected, canonical = read_event_time(value)
    except InstantError:
        assert [e.code for e in verdict.errors] == ["event_time_invalid"]
        assert verdict.event_instant is verdict.event_time is None
        return
    if expected < EARLIEST_EVENT_TIME:
        assert [e.code for e in verdict.errors] == ["event_time_too_old"]
        assert verdict.event_instant is verdict.event_time is None
    else:
        assert verdict.errors == []
        assert verdict.event_instant == expected
        assert verdict.event_instant.utcoffset() == expected.utcoffset()
        assert verdict.event_time == canonical


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-01-01T00:00:00+15:00", "offset outside ±14:59"),
        ("2024-01-01T00:00:00-23:59", "offset outside ±14:59"),
        ("2024-01-01T00:00:00+01:60", "offset outside ±14:59"),
        ("2024-01-01T00:00:00+24:00", "offset outside ±14:59"),
        ("2024-01-01 00:00:00+1500", "offset outside ±14:59"),
        ("2024-01-01t00:00:00-15", "offset outside ±14:59"),
        ("2024-02-30 00:00:00.1234567+02", "is not a real time (day is out of range for month)"),
        ("0001-01-01T00:00:00Z", "out of range (years 0002-9998)"),
        ("9999-01-01T00:00:00Z", "out of range (years 0002-9998)"),
        ("2024-02-30T00:00:00Z", "is not a real time (day is out of range for month)"),
        ("0000-01-01T00:00:00Z", "is not a real time"),
    ],
)
def test_times_the_schema_lets_through_but_no_real_time_are_invalid(
    validator: EventValidator, value: str, message: str
) -> None:
    event = minimal()
    event["eventTime"] = value
    (error,) = validator.check(event).errors
    assert (error.path, error.code) == ("eventTime", "event_time_invalid")
    assert repr(value) in error.message
    assert message in error.message


def test_the_verdict_carries_the_instant_of_a_valid_event_only(validator: EventValidator) -> None:
    event = minimal()
    event["eventTime"] = "2024-03-10T12:00:00.5+02:00"
    verdict = validator.check(event)
    assert verdict.event_instant == datetime(2024, 3, 10, 10, 0, 0, 500_000, tzinfo=UTC)
    assert verdict.event_time == "2024-03-10T10:00:00.500Z"
    assert verdict == EventVerdict([], verdict.warnings)  # derived from the event: not compared
    event["properties"]["currency"] = "eur"
    assert validator.check(event).event_instant is None
    event["properties"]["currency"] = "EUR"
    event["eventTime"] = "2026-01-01T00:00:01Z"
    assert validator.check(event).event_instant is None


# -- odd inputs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 5, "placed order", [minimal()], True])
def test_non_object_is_one_error(validator: EventValidator, value: Any) -> None:
    verdict = validator.check(value)
    assert [(e.path, e.code) for e in verdict.errors] == [("$", "not_an_object")]
    assert validator.explain(value) == verdict.errors
    assert not validator.screen_is_valid(value)


def test_unknown_event_name_needs_no_schema(validator: EventValidator) -> None:
    event = {"eventName": "viewed product", "anything": object()}
    (error,) = validator.check(event).errors
    assert error.code == "unknown_event_name"
    assert "'viewed product'" in error.message
    assert all(name in error.message for name in EVENT_NAMES)
    assert validator.check({}).errors[0].message.startswith("eventName is missing")


def test_values_the_screen_cannot_take_fall_back_to_jsonschema(validator: EventValidator) -> None:
    # Not reachable from JSON (orjson refuses lone surrogates) but check() takes any Python object.
    event = minimal()
    event["properties"]["note"] = "\ud800"
    assert validator.check(event).errors == []
    event["properties"]["note"] = 5
    event["properties"]["paymentMethod"] = "\udfff"
    assert [e.code for e in validator.check(event).errors] == ["order_field_invalid"]


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_each_event_name_uses_its_own_schema(validator: EventValidator, name: str) -> None:
    event = minimal(name)
    event["properties"]["totalRefundedAmount"] = -1  # only the refunded schema knows this one
    errors = validator.check(event).errors
    if name == "order refunded":
        assert [e.code for e in errors] == ["negative_money"]
    else:
        assert errors == []


@pytest.mark.parametrize(
    "value", ["0002-01-01T00:00:00Z", "1900-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1999-12-31T23:59:59Z"]
)
def test_placeholder_dates_before_2000_are_rejected(value: str) -> None:
    event = minimal()
    event["eventTime"] = value
    (error,) = EventValidator(now=NOW).check(event).errors
    assert (error.path, error.code) == ("eventTime", "event_time_too_old")
    assert "2000-01-01" in error.message


def test_the_first_instant_of_2000_is_sent() -> None:
    event = minimal()
    event["eventTime"] = "2000-01-01T00:00:00Z"
    assert EventValidator(now=NOW).check(event).errors == []
    event["eventTime"] = "2000-01-01T01:00:00+02:00"  # 1999-12-31T23:00Z
    assert [e.code for e in EventValidator(now=NOW).check(event).errors] == ["event_time_too_old"]


@pytest.mark.parametrize("code", ["XXX", "XTS"])
def test_no_currency_and_test_currency_are_rejected(code: str) -> None:
    event = minimal()
    event["properties"]["currency"] = code
    errors = EventValidator(now=NOW).check(event).errors
    assert [(e.path, e.code) for e in errors] == [("properties.currency", "currency_not_iso4217")]
    assert f"'{code}' is not an ISO 4217 currency code" in errors[0].message


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-10 12:00:00+02:00",
        "2024-03-10t12:00:00+0200",
        "2024-03-10T12:00:00+02",
        "2024-03-10T10:00:00.000000000Z",
        "2024-03-10T10:00:00.0000001z",
        "2024-03-10T05:00:00-05:00",
    ],
)
def test_every_form_of_the_events_contract_is_valid_with_one_canonical_time(
    validator: EventValidator, value: str
) -> None:
    event = minimal()
    event["eventTime"] = value
    verdict = validator.check(event)
    assert verdict.errors == []
    assert verdict.event_time == "2024-03-10T10:00:00Z"
    assert verdict.event_instant == datetime(2024, 3, 10, 10, tzinfo=UTC)
