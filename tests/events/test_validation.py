"""EventValidator: the seed fixture, warnings, the eventTime post-check, explanations, odd inputs."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_omnisend.events.schema import EVENT_NAMES
from airflow_omnisend.events.validation import EventValidator, EventVerdict, Issue

SHARED_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def seed_items() -> list[dict[str, Any]]:
    batch = json.loads((SHARED_FIXTURES / "seed-batch-placed-order.json").read_text(encoding="utf-8"))
    return list(batch["items"])


def minimal(name: str = "placed order", **props: Any) -> dict[str, Any]:
    return {
        "eventName": name,
        "eventID": "f1eeb5bd-736c-42c7-9cfe-6990f7f59b35",
        "eventTime": "2024-01-01T00:00:00Z",
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"email": "customer@example.com"},
        "properties": {"orderID": "1", "currency": "EUR", **props},
    }


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


def test_explanations_carry_path_message_and_code(validator: EventValidator) -> None:
    event = minimal(lineItems=[{"productQuantity": 1}, {"productQuantity": 0, "productPrice": -2}])
    issues = validator.explain(event)
    assert [(i.path, i.code) for i in issues] == [
        ("properties.lineItems[1].productPrice", "negative_money"),
        ("properties.lineItems[1].productQuantity", "quantity"),
    ]
    assert issues[0].message == "-2 is less than the minimum of 0"
    assert issues[1].message == "0 is less than the minimum of 1"
    assert issues[0].to_dict() == {
        "path": "properties.lineItems[1].productPrice",
        "message": "-2 is less than the minimum of 0",
        "code": "negative_money",
    }


def test_long_values_are_cut_in_messages(validator: EventValidator) -> None:
    event = minimal()
    event["contact"]["email"] = "x" * 10_000
    event["properties"]["currency"] = "Q" * 10_000
    for issue in validator.check(event).errors:
        assert len(issue.message) <= 300


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


def test_valid_line_items_are_blanked_for_jsonschema_but_the_event_is_untouched() -> None:
    from airflow_omnisend.events.schema import line_item_screen
    from airflow_omnisend.events.validation import _without_valid_line_items

    good = {"productID": "1", "productPrice": 2.5, "productQuantity": 1}
    bad = {"productID": "2", "productPrice": -1, "productQuantity": 1}
    event = minimal("order refunded", lineItems=[good, bad, good], refundedLineItems=[bad], note="x")
    original = copy.deepcopy(event)
    pruned = _without_valid_line_items(event, ("lineItems", "refundedLineItems"), line_item_screen().is_valid)
    assert pruned["properties"]["lineItems"] == [{}, bad, {}]
    assert pruned["properties"]["refundedLineItems"] == [bad]
    assert pruned["properties"]["note"] == "x"
    assert event == original
    issues = EventValidator(now=NOW).check(event).errors
    assert [i.path for i in issues] == [
        "properties.lineItems[1].productPrice",
        "properties.refundedLineItems[0].productPrice",
    ]
    not_a_list = minimal(lineItems="nope")
    assert _without_valid_line_items(not_a_list, ("lineItems",), line_item_screen().is_valid) is not_a_list


def test_the_screen_drops_only_line_break_checks_its_patterns_already_make() -> None:
    from airflow_omnisend.events.schema import inlined_event_schema
    from airflow_omnisend.events.validation import (
        _NO_LINE_BREAK,
        _pattern_refuses_line_breaks,
        _without_redundant_line_break_checks,
    )

    for name in EVENT_NAMES:
        shipped = json.dumps(inlined_event_schema(name))
        assert json.dumps(_NO_LINE_BREAK) in shipped
        assert json.dumps(_NO_LINE_BREAK) not in json.dumps(
            _without_redundant_line_break_checks(inlined_event_schema(name))
        )
        assert json.dumps(inlined_event_schema(name)) == shipped  # the shared schema is left as it was
    for pattern in ("^[0-9a-f]{8}$", "^[+][1-9][0-9]{1,14}$", "^[0-9]{2}([.][0-9]{1,6})?(Z|[+-][0-9]{2})$"):
        assert _pattern_refuses_line_breaks(pattern)
    for pattern in ("^a$|b", "^[^a]$", "^.$", "^a\\s$", "^[\\n]$", "a$", "^a", "^[\t-~]$"):
        assert not _pattern_refuses_line_breaks(pattern)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("eventID",), "f1eeb5bd-736c-42c7-9cfe-6990f7f59b35"),
        (("eventTime",), "2024-01-01T00:00:00Z"),
        (("contact", "email"), "customer@example.com"),
        (("contact", "phone"), "+37060000000"),
        (("contact", "id"), "0123456789abcdef01234567"),
    ],
)
@pytest.mark.parametrize("where", ["end", "start", "middle"])
def test_line_breaks_are_refused_by_the_screen_and_jsonschema_alike(
    validator: EventValidator, path: tuple[str, ...], value: str, where: str
) -> None:
    broken = {"end": value + "\n", "start": "\n" + value, "middle": value[:5] + "\n" + value[5:]}[where]
    for name in EVENT_NAMES:
        event = minimal(name)
        event[path[0]] = broken if len(path) == 1 else {**event[path[0]], path[1]: broken}
        assert not validator.screen_is_valid(event)
        assert validator.explain(event)
        assert any(e.path == ".".join(path) for e in validator.check(event).errors)
