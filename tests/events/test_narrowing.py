"""Narrowing: jsonschema explains a rejected event on less of it, with the same errors."""

from __future__ import annotations

import copy

from validation_helpers import NOW, minimal

from airflow_omnisend.events.narrowing import without_valid_line_items
from airflow_omnisend.events.schema import line_item_screen
from airflow_omnisend.events.validation import EventValidator


def test_valid_line_items_are_blanked_for_jsonschema_but_the_event_is_untouched() -> None:
    good = {"productID": "1", "productPrice": 2.5, "productQuantity": 1}
    bad = {"productID": "2", "productPrice": -1, "productQuantity": 1}
    event = minimal("order refunded", lineItems=[good, bad, good], refundedLineItems=[bad], note="x")
    original = copy.deepcopy(event)
    pruned = without_valid_line_items(event, ("lineItems", "refundedLineItems"), line_item_screen().is_valid)
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
    assert without_valid_line_items(not_a_list, ("lineItems",), line_item_screen().is_valid) is not_a_list
