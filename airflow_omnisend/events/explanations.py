"""What is wrong with a rejected event, in words: :class:`Issue` and how a schema error becomes one.

An event that fails the compiled screen (:mod:`~airflow_omnisend.events.screen`) is explained by
``jsonschema``, the reference validator, which names every error. Each error becomes an :class:`Issue`:
a JSON path (:func:`render_path`), a message for a person (the schema's ``x-messages`` where it has
one, cut to a readable length) and a stable reason ``code`` (the schema's ``x-code``/``x-codes``
annotations, else a code by where the error is or by the failing keyword), so rejections can be counted.
:func:`explain_schema` is the whole explanation of one event; it uses
:mod:`~airflow_omnisend.events.narrowing` so ``jsonschema`` looks only where the screen found errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.narrowing import narrowed_reference_validator, without_valid_line_items
from airflow_omnisend.events.schema import LINE_ITEM_ARRAYS, reference_validator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from jsonschema.exceptions import ValidationError

__all__ = [
    "Issue",
    "explain_schema",
    "issue_from",
    "json_type",
    "not_an_object",
    "render_path",
    "short_repr",
    "unknown_event_name",
]

_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_MESSAGE = 300
_MAX_VALUE_REPR = 80

#: Reason code when the failing subschema names none: by where the error is (first path segments) ...
_AREA_CODES = {
    "lineItems": "line_item_invalid",
    "refundedLineItems": "line_item_invalid",
    "billingAddress": "address_invalid",
    "shippingAddress": "address_invalid",
    "discounts": "discount_invalid",
    "tracking": "tracking_invalid",
}
#: ... or by the failing keyword.
_KEYWORD_CODES = {
    "required": "missing_field",
    "additionalProperties": "unknown_field",
    "type": "invalid_type",
    "maxLength": "too_long",
    "maxItems": "too_long",
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One error or warning about an event.

    :param path: where, e.g. ``properties.lineItems[0].productQuantity``; ``$`` is the event itself.
    :param message: what is wrong, for a person.
    :param code: a short stable reason key (``negative_money``, ``missing_total_price``...), for counts.
    """

    path: str
    message: str
    code: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "code": self.code}


def explain_schema(name: str, event: dict[str, Any], line_item_ok: Callable[[Any], bool]) -> list[Issue]:
    """The reference validator's schema errors for an event of a known ``name``, in its order.

    ``jsonschema`` judges the event with its valid line items blanked (``line_item_ok`` says which are
    valid) on the schema narrowed to where the screen finds errors; when the narrowed schema finds
    nothing, or cannot be made, the full schema decides. Either way the errors are those of plain
    ``jsonschema`` on the untouched event and the shipped schema (the tests hold them to it).
    """
    explained = without_valid_line_items(event, LINE_ITEM_ARRAYS[name], line_item_ok)
    narrowed = narrowed_reference_validator(name, explained)
    if narrowed is not None:
        errors = [issue_from(error) for error in narrowed.iter_errors(explained)]
        if errors:
            return errors
    return [issue_from(error) for error in reference_validator(name).iter_errors(explained)]


def issue_from(error: ValidationError) -> Issue:
    """A ``jsonschema`` error as an Issue: JSON path, readable message, reason code from the schema."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword = str(error.validator)
    segments: list[str | int] = list(error.absolute_path)
    message = error.message
    per_keyword = schema.get("x-codes", {}).get(keyword)
    if keyword == "required":
        missing = _missing_property(error)
        if missing is not None:
            segments.append(missing)
            message = f"{missing} is required"
        code = per_keyword.get(missing) if isinstance(per_keyword, dict) else per_keyword
    else:
        code = per_keyword
    if not isinstance(code, str):
        code = schema.get("x-code")
    if not isinstance(code, str):
        code = _code_by_place(segments, keyword)
    template = schema.get("x-messages", {}).get(keyword)
    if isinstance(template, str):
        message = template.replace("{value}", short_repr(error.instance))
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return Issue(render_path(segments), message, code)


def _missing_property(error: ValidationError) -> str | None:
    """The property a ``required`` error is about (its message starts with the name's repr)."""
    required = error.validator_value if isinstance(error.validator_value, list) else []
    return next((p for p in required if isinstance(p, str) and error.message.startswith(repr(p))), None)


def _code_by_place(segments: list[str | int], keyword: str) -> str:
    if segments and segments[0] == "contact":
        return "contact_field_invalid"
    if segments and segments[0] == "properties":
        area = segments[1] if len(segments) > 1 else None
        return (
            _AREA_CODES.get(area, "order_field_invalid") if isinstance(area, str) else "order_field_invalid"
        )
    return _KEYWORD_CODES.get(keyword, "invalid_value")


def render_path(segments: Iterable[str | int]) -> str:
    """``["properties", "lineItems", 0, "productQuantity"]`` -> ``properties.lineItems[0].productQuantity``.

    ``$`` is the event itself; keys that are not plain identifiers are quoted: ``properties["a.b"]``.
    """
    out: list[str] = []
    for segment in segments:
        if isinstance(segment, int):
            out.append(f"[{segment}]")
        elif _IDENTIFIER_RE.fullmatch(segment):
            out.append(f".{segment}" if out else segment)
        else:
            out.append(f"[{orjson.dumps(segment).decode()}]")
    return "".join(out) or "$"


def not_an_object(event: Any) -> Issue:
    """The one error of an event that is not a JSON object."""
    return Issue("$", f"an event must be a JSON object, not {json_type(event)}", "not_an_object")


def unknown_event_name(event: dict[str, Any]) -> Issue:
    """The one error of an event whose eventName is not one of the five order events."""
    expected = ", ".join(EVENT_NAMES)
    if "eventName" not in event:
        return Issue("eventName", f"eventName is missing (expected one of: {expected})", "unknown_event_name")
    value = short_repr(event["eventName"])
    return Issue(
        "eventName",
        f"{value} is not an Omnisend order event name (expected one of: {expected})",
        "unknown_event_name",
    )


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to a length a message can quote."""
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_REPR else text[: _MAX_VALUE_REPR - 1] + "…"


def json_type(value: Any) -> str:
    """What kind of JSON value ``value`` is, for a message (``a string``, ``an array``, ``null`` ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
