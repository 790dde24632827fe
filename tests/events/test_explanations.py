"""Explanations: every schema error as an Issue with a JSON path, a readable message and a reason code."""

from __future__ import annotations

import pytest
from validation_helpers import NOW, minimal

from airflow_omnisend.events.validation import EventValidator


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator(now=NOW)


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
