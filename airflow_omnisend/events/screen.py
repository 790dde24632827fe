"""The compiled screen: the fast yes/no of the schema for one event, and where its errors are.

Almost every event of a backfill is valid, so each is first judged by a compiled ``jsonschema_rs``
validator of its eventName; only an event the screen refuses is explained by ``jsonschema``
(:mod:`~airflow_omnisend.events.explanations`). The screen is compiled from
:func:`~airflow_omnisend.events.schema.inlined_event_schema` (the schema the explanations use, every
``$ref`` replaced by its target) without the "no line break" checks that its own patterns already make,
and with the options of :func:`~airflow_omnisend.events.schema.screen_validator`. The differential tests
hold its verdicts to ``jsonschema`` on the shipped schema; docs/validation.md says why the two agree.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from airflow_omnisend.events.schema import inlined_event_schema

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "NO_LINE_BREAK",
    "error_locations",
    "inlined_screen",
    "passes",
    "pattern_refuses_line_breaks",
    "without_redundant_line_break_checks",
]

#: What the screen cannot take (e.g. a string with a lone surrogate): ``jsonschema`` judges such an event.
_NOT_REPRESENTABLE = (TypeError, ValueError, OverflowError)

#: The schemas' "no line break" check on a string (for jsonschema, whose ``$`` also matches before a
#: final newline); the messages name it, so the shipped schemas keep it.
NO_LINE_BREAK = {"type": "string", "pattern": "\\n"}
#: A character class without escapes, negation or ``]`` inside: it matches only the characters written.
_PLAIN_CLASS = re.compile(r"\[[^\]\\^][^\]\\]*\]")


@functools.cache
def inlined_screen(name: str) -> jsonschema_rs.Validator:
    """The compiled screen of the event ``name`` (built once per name)."""
    return jsonschema_rs.validator_for(
        without_redundant_line_break_checks(inlined_event_schema(name)),
        pattern_options=jsonschema_rs.RegexOptions(),
        validate_formats=False,
    )


def passes(is_valid: Callable[[Any], bool], instance: Any) -> bool:
    """``is_valid(instance)`` of a compiled validator; ``False`` when it cannot take the instance."""
    try:
        return is_valid(instance)
    except _NOT_REPRESENTABLE:
        return False


def error_locations(name: str, event: Any) -> frozenset[tuple[str | None, ...]] | None:
    """The instance paths where the screen of ``name`` finds errors in ``event``, with every prefix.

    Array indexes are ``None`` (a schema applies one ``items`` subschema to each). ``None`` when the
    screen finds no error or cannot take the event.
    """
    paths: set[tuple[str | None, ...]] = set()
    try:
        for error in inlined_screen(name).iter_errors(event):
            path = tuple(None if isinstance(step, int) else step for step in error.instance_path)
            paths.update(path[:end] for end in range(len(path) + 1))
    except _NOT_REPRESENTABLE:
        return None
    return frozenset(paths) if paths else None


def without_redundant_line_break_checks(schema: Any) -> Any:
    """A copy of ``schema`` without each ``not`` :data:`NO_LINE_BREAK` whose sibling ``pattern`` already
    refuses every line break in ``jsonschema_rs`` (:func:`pattern_refuses_line_breaks`): the verdicts and
    the error locations stay the same, with fewer regex searches per event."""
    if isinstance(schema, list):
        return [without_redundant_line_break_checks(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: without_redundant_line_break_checks(value) for key, value in schema.items()}
    pattern = out.get("pattern")
    if out.get("not") == NO_LINE_BREAK and isinstance(pattern, str) and pattern_refuses_line_breaks(pattern):
        del out["not"]
    return out


def pattern_refuses_line_breaks(pattern: str) -> bool:
    """Whether no string holding ``\\n`` can match ``pattern`` in ``jsonschema_rs`` (Rust ``regex``, where
    ``^`` and ``$`` are the ends of the text): anchored at both ends with no top-level alternative, and
    made of printable ASCII only (a range between two of them never reaches the line feed) with no
    escapes, no ``.`` and no negated or escaped class. Conservative: anything else keeps its check."""
    if not (
        pattern.startswith("^") and pattern.endswith("$") and pattern.isascii() and pattern.isprintable()
    ):
        return False
    rest = _PLAIN_CLASS.sub("", pattern)
    if any(c in rest for c in "[]\\."):
        return False
    depth = 0
    for c in rest:
        depth += (c == "(") - (c == ")")
        if c == "|" and depth == 0:
            return False
    return True
