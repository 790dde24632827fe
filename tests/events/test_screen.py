"""The compiled screen: the line-break checks it drops are the ones its own patterns already make."""

from __future__ import annotations

import json

import pytest
from validation_helpers import NOW, minimal

from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.schema import inlined_event_schema
from airflow_omnisend.events.screen import (
    NO_LINE_BREAK,
    pattern_refuses_line_breaks,
    without_redundant_line_break_checks,
)
from airflow_omnisend.events.validation import EventValidator


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator(now=NOW)


def test_the_screen_drops_only_line_break_checks_its_patterns_already_make() -> None:
    for name in EVENT_NAMES:
        shipped = json.dumps(inlined_event_schema(name))
        assert json.dumps(NO_LINE_BREAK) in shipped
        assert json.dumps(NO_LINE_BREAK) not in json.dumps(
            without_redundant_line_break_checks(inlined_event_schema(name))
        )
        assert json.dumps(inlined_event_schema(name)) == shipped  # the shared schema is left as it was
    for pattern in ("^[0-9a-f]{8}$", "^[+][1-9][0-9]{1,14}$", "^[0-9]{2}([.][0-9]{1,6})?(Z|[+-][0-9]{2})$"):
        assert pattern_refuses_line_breaks(pattern)
    for pattern in ("^a$|b", "^[^a]$", "^.$", "^a\\s$", "^[\\n]$", "a$", "^a", "^[\t-~]$"):
        assert not pattern_refuses_line_breaks(pattern)


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
