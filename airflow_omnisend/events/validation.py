"""Validate Omnisend order events: a compiled screen for speed, ``jsonschema`` for the reasons.

A backfill validates millions of events and almost all of them are fine, so each event is first
screened by the compiled ``jsonschema_rs`` validator of its eventName (hundreds of thousands per
second). Only an event that fails the screen is handed to ``jsonschema``, the reference validator,
which names every error (JSON path, message, and a stable reason ``code`` from the schema's
``x-code``/``x-codes`` annotations). Both use the same shipped schema files, and a differential
property test holds them to the same verdict.

What JSON Schema cannot say is one shared Python post-check, run the same way on both paths: the
eventTime digits form a real instant (no month 13, Feb 30 or offset minute 60) that is not in the future
(nor younger than ``min_age``: Omnisend de-duplicates only *historic* events).

Warnings do not stop an event; they count the recommended properties it lacks, above all
``totalPrice``, without which Omnisend's revenue reporting ignores the order.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

import jsonschema_rs
import orjson

from airflow_omnisend.events.schema import (
    EVENT_NAMES,
    LINE_ITEM_ARRAYS,
    inlined_event_schema,
    line_item_screen,
    reference_validator,
    schema_documents,
)
from airflow_omnisend.exceptions import OmnisendInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

__all__ = [
    "RECOMMENDED_PROPERTIES",
    "EventValidator",
    "EventVerdict",
    "Issue",
    "ValidationSummary",
    "validate_ndjson",
]

#: eventName -> (property, warning code): recommended ``properties`` whose absence is a warning. Kept
#: small on purpose: a warning that fires on every event is noise. Omnisend's own example (the seed
#: fixture) lacks only totalPrice.
RECOMMENDED_PROPERTIES: dict[str, tuple[tuple[str, str], ...]] = {
    "placed order": (("totalPrice", "missing_total_price"), ("lineItems", "missing_line_items")),
    "paid for order": (("totalPrice", "missing_total_price"),),
    "order fulfilled": (("totalPrice", "missing_total_price"),),
    "order canceled": (("totalPrice", "missing_total_price"), ("cancelReason", "missing_cancel_reason")),
    "order refunded": (
        ("totalPrice", "missing_total_price"),
        ("totalRefundedAmount", "missing_total_refunded_amount"),
    ),
}
_WARNING_WHY = {
    "totalPrice": "Omnisend needs it for revenue reporting",
    "lineItems": "product-based segments and reports need the ordered products",
    "cancelReason": "the cancellation flow and segments show the reason",
    "totalRefundedAmount": "revenue reports subtract the refunded amount",
}

#: The schema's own eventTime pattern; ``fullmatch`` has no trailing-newline loophole.
_EVENT_TIME_RE = re.compile(schema_documents()["defs.json"]["$defs"]["eventTime"]["pattern"])
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


@dataclass(frozen=True, slots=True)
class EventVerdict:
    """The outcome for one event: any error rejects it; warnings are counted, the event is still sent."""

    errors: list[Issue]
    warnings: list[Issue]

    @property
    def ok(self) -> bool:
        return not self.errors


class EventValidator:
    """Checks order events against the shipped schemas plus the eventTime post-check.

    :param now: the instant "the future" starts at (timezone-aware); default: when the validator is
        made, so one run judges every event against the same instant.
    :param min_age: an event must be at least this old (``eventTime <= now - min_age``). Omnisend
        de-duplicates on eventID + eventTime only for historic events; this keeps a backfill away from
        events that could still count as real-time.
    """

    def __init__(self, now: datetime | None = None, min_age: timedelta = timedelta(0)) -> None:
        if now is None:
            now = datetime.now(UTC)
        elif now.utcoffset() is None:
            raise ValueError(
                f"EventValidator(now={now!r}): now must be timezone-aware, e.g. datetime.now(UTC)"
            )
        if min_age < timedelta(0):
            raise ValueError(f"EventValidator(min_age={min_age!r}): min_age must not be negative")
        self.now = now
        self.min_age = min_age
        self._cutoff = now - min_age
        self._screens: dict[str, Callable[[Any], bool]] = {
            name: _inlined_screen(name).is_valid for name in EVENT_NAMES
        }
        self._line_item_ok = line_item_screen().is_valid
        self._warnings: dict[str, tuple[tuple[str, Issue], ...]] = {
            name: tuple(
                (
                    prop,
                    Issue(
                        f"properties.{prop}",
                        f"recommended property {prop} is missing: {_WARNING_WHY[prop]}",
                        code,
                    ),
                )
                for prop, code in props
            )
            for name, props in RECOMMENDED_PROPERTIES.items()
        }

    # -- the full check ---------------------------------------------------------------------------

    def check(self, event: Any) -> EventVerdict:
        """Errors (schema + eventTime post-check) and warnings for one event."""
        if type(event) is not dict:
            return EventVerdict([_not_an_object(event)], [])
        name = event.get("eventName")
        if type(name) is not str or (screen := self._screens.get(name)) is None:
            return EventVerdict([_unknown_event_name(event)], [])
        try:
            passed = screen(event)
        except (TypeError, ValueError, OverflowError):
            passed = False  # not representable for the screen (e.g. a lone surrogate): let jsonschema judge
        if passed:
            errors = self._time_issues(event["eventTime"])
        else:
            errors = self._explain_known(name, event)
            time_value = event.get("eventTime")
            if type(time_value) is str and not any(e.path == "eventTime" for e in errors):
                errors.extend(self._time_issues(time_value))
        warnings: list[Issue] = []
        props = event.get("properties")
        if type(props) is dict:
            for prop, issue in self._warnings[name]:
                if prop not in props:
                    warnings.append(issue)
        return EventVerdict(errors, warnings)

    # -- the two schema verdicts (the differential test compares these) -------------------------------

    def screen_is_valid(self, event: Any) -> bool:
        """The compiled validator's verdict on the schema alone (no eventTime post-check)."""
        if type(event) is not dict or type(event.get("eventName")) is not str:
            return False
        screen = self._screens.get(event["eventName"])
        return screen is not None and screen(event)

    def explain(self, event: Any) -> list[Issue]:
        """The reference validator's schema errors (no eventTime post-check); empty when the schema holds."""
        if type(event) is not dict:
            return [_not_an_object(event)]
        name = event.get("eventName")
        if type(name) is not str or name not in self._screens:
            return [_unknown_event_name(event)]
        return self._explain_known(name, event)

    def _explain_known(self, name: str, event: dict[str, Any]) -> list[Issue]:
        explained = _without_valid_line_items(event, LINE_ITEM_ARRAYS[name], self._line_item_ok)
        narrowed = _narrowed_reference_validator(name, explained)
        if narrowed is not None:
            errors = [_issue_from(error) for error in narrowed.iter_errors(explained)]
            if errors:
                return errors
        return [_issue_from(error) for error in reference_validator(name).iter_errors(explained)]

    # -- the shared post-check ---------------------------------------------------------------------

    def post_check(self, event: Any) -> list[Issue]:
        """The checks JSON Schema cannot express, for an event whose eventTime the schema accepts."""
        value = event.get("eventTime") if type(event) is dict else None
        if type(value) is not str or not _EVENT_TIME_RE.fullmatch(value):
            return []  # missing or malformed: the schema reports it
        return self._time_issues(value)

    def _time_issues(self, value: str) -> list[Issue]:
        """eventTime (already matching the schema's pattern) is a real instant, not too recent."""
        try:
            if value[-1] != "Z" and int(value[-2:]) > 59:
                raise ValueError("UTC offset minutes must be 00-59")
            instant = datetime.fromisoformat(value)
            too_recent = instant > self._cutoff
        except (ValueError, OverflowError, TypeError) as exc:
            return [Issue("eventTime", f"{value!r} is not a real time: {exc}", "event_time_invalid")]
        if not too_recent:
            return []
        if instant > self.now:
            return [
                Issue(
                    "eventTime",
                    f"{value!r} is in the future (now is {self.now.isoformat()}): a backfill sends only "
                    "events that have happened",
                    "event_time_future",
                )
            ]
        return [
            Issue(
                "eventTime",
                f"{value!r} is younger than the minimum age {self.min_age} (cutoff "
                f"{self._cutoff.isoformat()}): Omnisend de-duplicates only historic events",
                "event_time_too_recent",
            )
        ]


def _without_valid_line_items(
    event: dict[str, Any], array_keys: tuple[str, ...], item_ok: Callable[[Any], bool]
) -> dict[str, Any]:
    """A shallow copy of ``event`` whose line items that are valid on their own are replaced by ``{}``.

    jsonschema spends most of an explanation walking line items (~0.37 ms for a rejected event with
    3-4 of them, half of that in the items). The replacement cannot change the errors: a line-item array
    is ``{type: array, items: lineItem}`` (each item judged alone), ``{}`` is a valid line item, indexes
    (so paths) stay, and no message quotes a whole ``properties`` object or array that is still valid.
    The tests hold the result to jsonschema's errors on the untouched event.
    """
    props = event.get("properties")
    if type(props) is not dict:
        return event
    pruned_props: dict[str, Any] | None = None
    for key in array_keys:
        items = props.get(key)
        if type(items) is not list:
            continue
        pruned = [{} if _item_ok(item_ok, item) else item for item in items]
        if pruned_props is None:
            pruned_props = dict(props)
        pruned_props[key] = pruned
    if pruned_props is None:
        return event
    return {**event, "properties": pruned_props}


def _narrowed_reference_validator(name: str, event: dict[str, Any]) -> Draft202012Validator | None:
    """``jsonschema`` for ``event`` on its schema narrowed to where the compiled screen finds errors.

    Explaining a rejected event with the full schema cost ~0.22 ms, mostly ``jsonschema`` descending
    into the many parts of the event that are fine. The screen's own error list (``jsonschema_rs``,
    ~0.01 ms) says which instance locations carry errors; every ``properties`` subschema reached
    through ``properties`` / ``allOf`` / ``items`` whose value carries none is replaced by ``true``
    (see :func:`_narrowed_schema`). That cannot change what ``jsonschema`` reports: a subschema that
    yields no error for its value yields the same nothing as ``true``, every other keyword (``required``,
    ``additionalProperties``, ``anyOf``, ...) is kept as it is, and the instance is untouched, so
    messages quoting it do not change. The errors are still ``jsonschema``'s own, in its order; the
    tests hold them to plain ``jsonschema`` on the shipped schema. ``None`` when the screen cannot take
    the event (the caller then uses the full schema, as it also does when the narrowed one finds
    nothing).
    """
    try:
        found = _inlined_screen(name).iter_errors(event)
        paths: set[tuple[str | None, ...]] = set()
        for error in found:
            path = tuple(None if isinstance(step, int) else step for step in error.instance_path)
            paths.update(path[:end] for end in range(len(path) + 1))
    except (TypeError, ValueError, OverflowError):
        return None  # not representable for the screen (e.g. a lone surrogate)
    if not paths:
        return None
    return _narrowed_validator(name, frozenset(paths))


@functools.cache
def _inlined_screen(name: str) -> jsonschema_rs.Validator:
    """The compiled screen of one event on :func:`inlined_event_schema` (the schema the explanations
    use, every ``$ref`` replaced by its target): ~10% faster than the shipped schema with its registry
    (3.4 -> 3.05 us per event), same options as :func:`~airflow_omnisend.events.schema.screen_validator`;
    the differential tests hold its verdicts to jsonschema on the shipped schema."""
    return jsonschema_rs.validator_for(
        _without_redundant_line_break_checks(inlined_event_schema(name)),
        pattern_options=jsonschema_rs.RegexOptions(),
        validate_formats=False,
    )


#: The schemas' "no line break" check on a string (for jsonschema, whose ``$`` also matches before a
#: final newline); the messages name it, so the shipped schemas keep it.
_NO_LINE_BREAK = {"type": "string", "pattern": "\\n"}
#: A character class without escapes, negation or ``]`` inside: it matches only the characters written.
_PLAIN_CLASS = re.compile(r"\[[^\]\\^][^\]\\]*\]")


def _without_redundant_line_break_checks(schema: Any) -> Any:
    """A copy of ``schema`` for the compiled screen, without each ``not`` :data:`_NO_LINE_BREAK` whose
    sibling ``pattern`` already refuses every line break in ``jsonschema_rs`` (see
    :func:`_pattern_refuses_line_breaks`): the same verdicts and the same error locations, and each
    regex search costs the screen ~0.2 us (4 per event: eventID, eventTime, email, phone).
    """
    if isinstance(schema, list):
        return [_without_redundant_line_break_checks(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _without_redundant_line_break_checks(value) for key, value in schema.items()}
    pattern = out.get("pattern")
    if (
        out.get("not") == _NO_LINE_BREAK
        and isinstance(pattern, str)
        and _pattern_refuses_line_breaks(pattern)
    ):
        del out["not"]
    return out


def _pattern_refuses_line_breaks(pattern: str) -> bool:
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


@functools.lru_cache(maxsize=256)
def _narrowed_validator(
    name: str, error_paths: frozenset[tuple[str | None, ...]]
) -> Draft202012Validator | None:
    """The reference validator on :func:`_narrowed_schema` (cached: rejected events repeat a few
    shapes of error paths); ``None`` when the schema uses a keyword that narrowing cannot see through."""
    from jsonschema import Draft202012Validator

    if not _narrowable(name):
        return None
    return Draft202012Validator(_narrowed_schema(inlined_event_schema(name), error_paths))


@functools.cache
def _narrowable(name: str) -> bool:
    return not _uses_keywords(inlined_event_schema(name), _NOT_NARROWABLE)


#: Keywords whose outcome depends on other subschemas' results or on references: a schema using any of
#: them anywhere is explained with the full schema.
_NOT_NARROWABLE = frozenset(
    ("$ref", "$dynamicRef", "$recursiveRef", "unevaluatedProperties", "unevaluatedItems")
)


def _uses_keywords(schema: Any, keywords: frozenset[str]) -> bool:
    if isinstance(schema, list):
        return any(_uses_keywords(item, keywords) for item in schema)
    if not isinstance(schema, dict):
        return False
    return any(key in keywords or _uses_keywords(value, keywords) for key, value in schema.items())


def _narrowed_schema(schema: Any, error_paths: Iterable[tuple[str | None, ...]]) -> Any:
    """``schema`` with each ``properties`` entry whose key carries no error path replaced by ``true``.

    ``error_paths`` are instance paths relative to the node ``schema`` applies to, with every prefix
    present and array indexes as ``None``. Only ``properties``, ``allOf`` and an ``items`` schema are
    walked (they apply their subschemas to the same node or to its children, each judged alone); every
    other keyword is copied as it is. A ``true`` entry is left out where no ``additionalProperties``
    of the same object reads the keys of ``properties`` (it constrains nothing either way).
    """
    if not isinstance(schema, dict):
        return schema
    paths = list(error_paths)
    out: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword == "properties" and isinstance(value, dict):
            keep_unconstrained = "additionalProperties" in schema
            narrowed: dict[str, Any] = {}
            for key, subschema in value.items():
                below = [path[1:] for path in paths if path and path[0] == key]
                if below:
                    narrowed[key] = _narrowed_schema(subschema, below)
                elif keep_unconstrained:
                    narrowed[key] = True
            out[keyword] = narrowed
        elif keyword == "allOf" and isinstance(value, list):
            out[keyword] = [_narrowed_schema(subschema, paths) for subschema in value]
        elif keyword == "items" and isinstance(value, dict):
            below = [path[1:] for path in paths if path and path[0] is None]
            out[keyword] = _narrowed_schema(value, below) if below else True
        else:
            out[keyword] = value
    return out


def _item_ok(item_ok: Callable[[Any], bool], item: Any) -> bool:
    try:
        return item_ok(item)
    except (TypeError, ValueError, OverflowError):
        return False  # not representable for the screen: keep it for jsonschema


def _not_an_object(event: Any) -> Issue:
    return Issue("$", f"an event must be a JSON object, not {_json_type(event)}", "not_an_object")


def _unknown_event_name(event: dict[str, Any]) -> Issue:
    expected = ", ".join(EVENT_NAMES)
    if "eventName" not in event:
        return Issue("eventName", f"eventName is missing (expected one of: {expected})", "unknown_event_name")
    value = _short_repr(event["eventName"])
    return Issue(
        "eventName",
        f"{value} is not an Omnisend order event name (expected one of: {expected})",
        "unknown_event_name",
    )


def _issue_from(error: ValidationError) -> Issue:
    """A ``jsonschema`` error as an Issue: JSON path, readable message, reason code from the schema."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword = str(error.validator)
    segments: list[str | int] = list(error.absolute_path)
    message = error.message
    per_keyword = schema.get("x-codes", {}).get(keyword)
    if keyword == "required":
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = next((p for p in required if isinstance(p, str) and message.startswith(repr(p))), None)
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
        message = template.replace("{value}", _short_repr(error.instance))
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return Issue(render_path(segments), message, code)


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


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_REPR else text[: _MAX_VALUE_REPR - 1] + "…"


def _json_type(value: Any) -> str:
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


# -- streaming NDJSON -------------------------------------------------------------------------------

_UNKNOWN_NAME = "(unknown)"
_VALID_CHUNK = 64 * 1024


@dataclass
class ValidationSummary:
    """Counts of one NDJSON validation run; constant size whatever the input size.

    ``rejects_by_reason`` counts rejected events per reason code (an event with two different reasons
    counts under both); ``warnings_by_code`` counts warnings on valid events (the ones that are sent).
    Events whose eventName is not an order event are counted under ``(unknown)``.

    ``warned`` counts valid events with at least one warning (``warnings`` counts the warnings), and
    ``first_event_time`` / ``last_event_time`` are the earliest and latest eventTime of the valid events
    as written (compared as instants): the automation safety check refuses a partition whose newest
    event is too recent. They are reported by :meth:`valid_event_stats`, outside :meth:`to_dict`, whose
    shape tools already rely on.
    """

    lines_read: int = 0
    events: int = 0
    valid: int = 0
    rejected: int = 0
    warnings: int = 0
    by_event_name: dict[str, dict[str, int]] = field(default_factory=dict)
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    warnings_by_code: dict[str, int] = field(default_factory=dict)
    warned: int = 0
    first_event_time: str | None = None
    last_event_time: str | None = None

    def valid_event_stats(self) -> dict[str, Any]:
        """``{"warned", "first_event_time", "last_event_time"}`` of the valid events (see the class)."""
        return {
            "warned": self.warned,
            "first_event_time": self.first_event_time,
            "last_event_time": self.last_event_time,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines_read": self.lines_read,
            "events": self.events,
            "valid": self.valid,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "by_event_name": {name: dict(counts) for name, counts in self.by_event_name.items()},
            "rejects_by_reason": dict(sorted(self.rejects_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
            "warnings_by_code": dict(sorted(self.warnings_by_code.items(), key=lambda kv: (-kv[1], kv[0]))),
        }

    def one_line(self, top_reasons: int = 3) -> str:
        """``100000 events: 99012 valid, 988 rejected (top reasons: ...), 1200 warnings``."""
        text = f"{self.events} events: {self.valid} valid, {self.rejected} rejected"
        if self.rejects_by_reason:
            top = sorted(self.rejects_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))[:top_reasons]
            text += " (top reasons: " + ", ".join(f"{code} {count}" for code, count in top) + ")"
        return text + f", {self.warnings} warning{'' if self.warnings == 1 else 's'}"


def validate_ndjson(
    src: BinaryIO,
    valid_out: BinaryIO | None,
    rejected_out: BinaryIO | None,
    validator: EventValidator,
) -> ValidationSummary:
    """Stream NDJSON events from ``src`` into valid and rejected NDJSON, returning the counts.

    Valid events are written as their input line (trimmed; one JSON object per line, byte for byte
    what was validated, so eventTime strings and numbers stay exactly as given). Rejected events are
    written as ``{"line": n, "event": {...}, "errors": [{"path", "message", "code"}, ...]}``. ``None``
    for an output discards those events. Blank lines are skipped. Memory does not grow with the input.

    :raises OmnisendInputError: a line is not JSON, or not a JSON object; the message names the line.
    """
    summary = ValidationSummary()
    by_name = summary.by_event_name
    by_reason = summary.rejects_by_reason
    by_warning = summary.warnings_by_code
    check = validator.check
    # the inline fast path below is EventValidator.check's own logic: a subclass goes through its check()
    screens = validator._screens if type(validator) is EventValidator else None
    cutoff = validator._cutoff
    warning_codes = {
        name: tuple((prop, issue.code) for prop, issue in w) for name, w in validator._warnings.items()
    }
    loads = orjson.loads
    dumps = orjson.dumps
    append_newline = orjson.OPT_APPEND_NEWLINE
    write_valid = valid_out.write if valid_out is not None else None
    write_rejected = rejected_out.write if rejected_out is not None else None
    # Valid lines are written in chunks of ~64 KiB: one write() per ~2 KB event cost ~2 us per event
    # in system calls (a file opened with the default 4-8 KiB buffer flushes every few events).
    pending: list[bytes] = []
    keep = pending.append
    pending_size = 0
    interleaved = valid_out is not None and valid_out is rejected_out  # keep the order in one sink

    def flush_valid() -> None:
        if pending and write_valid is not None:
            write_valid(b"".join(pending))
        pending.clear()

    known_names = frozenset(EVENT_NAMES)
    parse_time = datetime.fromisoformat
    warned = 0
    first: datetime | None = None
    last: datetime | None = None
    first_text = last_text = None
    line_no = 0
    for line_no, raw in enumerate(src, 1):
        line = raw.strip()
        if not line:
            continue
        if line_no == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:].strip()
        try:
            event = loads(line)
        except orjson.JSONDecodeError as exc:
            flush_valid()
            raise OmnisendInputError(f"line {line_no}: not JSON ({exc.msg} at column {exc.colno})") from None
        if type(event) is not dict:
            flush_valid()
            raise OmnisendInputError(
                f"line {line_no}: {_json_type(event)} where an event (a JSON object) was expected"
            )
        name = event.get("eventName")
        if type(name) is not str or name not in known_names:
            name = _UNKNOWN_NAME
        counts = by_name.get(name)
        if counts is None:
            counts = by_name[name] = {"total": 0, "valid": 0, "rejected": 0}
        counts["total"] += 1
        # The common case, inline: what check() does for an event that passes the screen and the
        # eventTime post-check (the instant is kept for first/last); anything else goes to check().
        instant = None
        if screens is not None and name is not _UNKNOWN_NAME:
            try:
                passed = screens[name](event)
            except (TypeError, ValueError, OverflowError):
                passed = False
            if passed:
                time_text = event["eventTime"]  # the screen passed it: a string of the schema's pattern
                try:
                    if time_text[-1] == "Z" or int(time_text[-2:]) <= 59:
                        instant = parse_time(time_text)
                        if instant > cutoff:
                            instant = None
                except (ValueError, OverflowError, TypeError):
                    instant = None
        if instant is not None:
            counts["valid"] += 1
            props = event["properties"]  # the screen passed it: an object
            warned_here = False
            for prop, code in warning_codes[name]:
                if prop not in props:
                    warned_here = True
                    by_warning[code] = by_warning.get(code, 0) + 1
            if warned_here:
                warned += 1
        else:
            verdict = check(event)
            if verdict.errors:
                counts["rejected"] += 1
                for code in {issue.code for issue in verdict.errors}:
                    by_reason[code] = by_reason.get(code, 0) + 1
                if write_rejected is not None:
                    if interleaved:
                        flush_valid()
                        pending_size = 0
                    record = {
                        "line": line_no,
                        "event": event,
                        "errors": [i.to_dict() for i in verdict.errors],
                    }
                    write_rejected(dumps(record, option=append_newline))
                continue
            counts["valid"] += 1
            if verdict.warnings:
                warned += 1
                for issue in verdict.warnings:
                    by_warning[issue.code] = by_warning.get(issue.code, 0) + 1
            # a valid event's eventTime is a string the post-check already parsed this way
            time_text = event["eventTime"]
            instant = parse_time(time_text)
        if first is None or instant < first:
            first, first_text = instant, time_text
        if last is None or instant > last:
            last, last_text = instant, time_text
        if write_valid is not None:
            out = raw if len(raw) == len(line) + 1 and raw[-1:] == b"\n" else line + b"\n"
            keep(out)
            pending_size += len(out)
            if pending_size >= _VALID_CHUNK:
                flush_valid()
                pending_size = 0
    flush_valid()
    summary.lines_read = line_no
    summary.events = sum(c["total"] for c in by_name.values())
    summary.valid = sum(c["valid"] for c in by_name.values())
    summary.rejected = sum(c["rejected"] for c in by_name.values())
    summary.warnings = sum(by_warning.values())
    summary.warned = warned
    summary.first_event_time = first_text
    summary.last_event_time = last_text
    return summary
