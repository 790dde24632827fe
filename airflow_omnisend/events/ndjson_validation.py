"""Validate an NDJSON file of events as a stream: valid and rejected NDJSON out, a summary of counts.

One :meth:`EventValidator.check <airflow_omnisend.events.validation.EventValidator.check>` per event
decides; this module only reads lines, writes them where their verdict sends them (a valid event's
eventTime in its canonical UTC string) and counts. Memory does not grow with the input. The formats are
in docs/validation.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from airflow_omnisend.events.collisions import CollisionIndex
from airflow_omnisend.events.explanations import Issue, json_type
from airflow_omnisend.events.lines import MAX_LINE_BYTES, capped_lines, check_line_cap
from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.validation import EventVerdict
from airflow_omnisend.exceptions import OmnisendInputError

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from airflow_omnisend.events.validation import EventValidator

__all__ = [
    "DUPLICATE_KEY_CODE",
    "OVER_BODY_LIMIT_CODE",
    "ValidationSummary",
    "duplicate_key",
    "validate_ndjson",
    "with_event_time",
]

#: reason code of a line in which one object repeats a key
DUPLICATE_KEY_CODE = "duplicate_key"
#: reason code of an event too big for any request body (``max_event_bytes``)
OVER_BODY_LIMIT_CODE = "over_body_limit"

#: by_event_name key of events whose eventName is not one of the five order events.
_UNKNOWN_NAME = "(unknown)"
_KNOWN_NAMES = frozenset(EVENT_NAMES)
#: Valid lines are written in chunks of about this size: one write() per event would be a system call
#: every few events on a file opened with the default buffer.
_VALID_CHUNK = 64 * 1024


@dataclass
class ValidationSummary:
    """Counts of one NDJSON validation run; constant size whatever the input size.

    ``rejects_by_reason`` counts rejected events per reason code (an event with two different reasons
    counts under both); ``warnings_by_code`` counts warnings on valid events (the ones that are sent).
    Events whose eventName is not an order event are counted under ``(unknown)``.

    ``warned`` counts valid events with at least one warning (``warnings`` counts the warnings), and
    ``first_event_time`` / ``last_event_time`` are the earliest and latest eventTime of the valid events
    as written to the valid output (canonical UTC strings): the automation safety check refuses a
    partition whose newest event is too recent. They are reported by :meth:`valid_event_stats`, outside
    :meth:`to_dict`, whose shape tools already rely on.
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
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_event_bytes: int | None = None,
) -> ValidationSummary:
    """Stream NDJSON events from ``src`` into valid and rejected NDJSON, returning the counts.

    Valid events are written as their input line (trimmed; one JSON object per line, byte for byte
    what was validated, so numbers and texts stay exactly as given), except that an eventTime in
    another form than the canonical UTC string (``2024-01-01 02:00:00+02:00``) is replaced by that
    string (:func:`with_event_time`): one instant is always one eventID + eventTime pair. The byte limit
    and the collision check see the line as written. Rejected events are
    written as ``{"line": n, "event": {...}, "errors": [{"path", "message", "code"}, ...]}``. ``None``
    for an output discards those events. Blank lines are skipped. Memory does not grow with the input.

    Beyond the validator's verdict, a line is rejected when an object in it repeats a key (code
    ``duplicate_key``: which value counts would be up to the reader), when an earlier, different event
    has its eventID and eventTime (``event_id_collision``, :mod:`~airflow_omnisend.events.collisions`:
    the first is kept), and, with ``max_event_bytes``, when it is too big for any request body
    (``over_body_limit``; in a DAG run the plan step dead-letters those, with the connection's limit).

    :param max_line_bytes: the longest line accepted (:mod:`~airflow_omnisend.events.lines`).
    :param max_event_bytes: reject events longer than this (the CLI: the default API profile's limit).
    :raises OmnisendInputError: a line is not JSON, not a JSON object, or longer than
        ``max_line_bytes``; the message names the line.
    """
    counts = _Counts()
    sinks = _Sinks(valid_out, rejected_out)
    check = validator.check
    extra = _LineChecks(max_event_bytes)
    line_no = 0
    lines = capped_lines(src, limit=check_line_cap(max_line_bytes), what="events")
    try:
        for line_no, raw in enumerate(lines, 1):
            line = _content(raw, line_no)
            if not line:
                continue
            event = _event_of(line, line_no)
            verdict = check(event)
            out = line
            if not verdict.errors and verdict.event_time != event["eventTime"]:
                out = with_event_time(line, event, verdict.event_time)
            verdict = extra.judge(line, out, line_no, event, verdict)
            if verdict.errors:
                counts.rejected(event, verdict)
                sinks.write_rejected(line_no, event, verdict)
            else:
                counts.valid(event, verdict)
                sinks.write_valid(raw if out is line else out, out)
    except OmnisendInputError:
        sinks.flush_valid()  # the valid lines before the bad one are kept
        raise
    sinks.flush_valid()
    return counts.summary(line_no)


def _content(raw: bytes, line_no: int) -> bytes:
    """The line without surrounding white space (and without a byte order mark on the first line)."""
    line = raw.strip()
    if line_no == 1 and line.startswith(b"\xef\xbb\xbf"):
        line = line[3:].strip()
    return line


def _event_of(line: bytes, line_no: int) -> dict[str, Any]:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise OmnisendInputError(f"line {line_no}: not JSON ({exc.msg} at column {exc.colno})") from None
    if type(event) is not dict:
        raise OmnisendInputError(
            f"line {line_no}: {json_type(event)} where an event (a JSON object) was expected"
        )
    return event


def with_event_time(line: bytes, event: dict[str, Any], event_time: str | None) -> bytes:
    """``line`` (the JSON text of ``event``) with the top-level eventTime set to ``event_time``.

    Only the eventTime's bytes change when its key and value appear once in the line as orjson writes
    them; otherwise (an escaped spelling, the same pair nested deeper) the event is written anew by
    orjson. The result is checked to read back as the event with the new time.
    """
    assert event_time is not None  # a verdict without errors carries its canonical eventTime
    wanted = {**event, "eventTime": event_time}
    spot = re.compile(rb'"eventTime"[ \t\r\n]*:[ \t\r\n]*' + re.escape(orjson.dumps(event["eventTime"])))
    found = spot.findall(line)
    if len(found) == 1:
        new = line.replace(found[0], b'"eventTime":' + orjson.dumps(event_time), 1)
        if orjson.loads(new) == wanted:
            return new
    return orjson.dumps(wanted)


class _DuplicateKey(Exception):
    """An object of the line repeats a key."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _DuplicateKey(repeated)
    return out


def duplicate_key(line: bytes, event: dict[str, Any]) -> str | None:
    """The first key an object of ``line`` repeats, or ``None``. A line that is exactly how orjson
    writes ``event`` back (every line the extract step writes) has none; only others are parsed again."""
    if orjson.dumps(event) == line:
        return None
    try:
        json.loads(line, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        return str(exc.args[0])
    except ValueError:
        return None  # orjson read it; what the stdlib parser refuses is no duplicate key
    return None


class _LineChecks:
    """The checks of a line beyond the validator's verdict (see :func:`validate_ndjson`)."""

    __slots__ = ("_collisions", "_max_event_bytes")

    def __init__(self, max_event_bytes: int | None) -> None:
        self._collisions = CollisionIndex()
        self._max_event_bytes = max_event_bytes

    def judge(
        self, line: bytes, out: bytes, line_no: int, event: dict[str, Any], verdict: EventVerdict
    ) -> EventVerdict:
        """The verdict with the line's own errors added (``out``: the line as it would be written)."""
        issues: list[Issue] = []
        repeated = duplicate_key(line, event)
        if repeated is not None:
            issues.append(
                Issue(
                    "$",
                    f"key {repeated!r} appears twice in one object; which value counts would be up to the "
                    "reader: write each key once",
                    DUPLICATE_KEY_CODE,
                )
            )
        limit = self._max_event_bytes
        if limit is not None and len(out) > limit:
            issues.append(
                Issue(
                    "$",
                    f"the event is {len(out)} bytes, over the {limit}-byte limit of one request body; "
                    "shorten it (fewer line items, shorter texts)",
                    OVER_BODY_LIMIT_CODE,
                )
            )
        if not verdict.errors and not issues:
            instant = verdict.event_instant
            assert instant is not None
            collision = self._collisions.check(event["eventID"], instant, out, line_no)
            if collision is None:
                return verdict
            issues.append(collision)
        if not issues:
            return verdict
        return EventVerdict([*verdict.errors, *issues], verdict.warnings, None)


class _Counts:
    """The running counts of one run, made into a :class:`ValidationSummary` at the end."""

    __slots__ = ("_by_name", "_by_reason", "_by_warning", "_first", "_last", "_warned")

    def __init__(self) -> None:
        self._by_name: dict[str, dict[str, int]] = {}
        self._by_reason: dict[str, int] = {}
        self._by_warning: dict[str, int] = {}
        self._warned = 0
        self._first: tuple[datetime, str] | None = None  # (instant, canonical eventTime)
        self._last: tuple[datetime, str] | None = None

    def _of_name(self, event: dict[str, Any]) -> dict[str, int]:
        name = event.get("eventName")
        if type(name) is not str or name not in _KNOWN_NAMES:
            name = _UNKNOWN_NAME
        counts = self._by_name.get(name)
        if counts is None:
            counts = self._by_name[name] = {"total": 0, "valid": 0, "rejected": 0}
        counts["total"] += 1
        return counts

    def rejected(self, event: dict[str, Any], verdict: EventVerdict) -> None:
        self._of_name(event)["rejected"] += 1
        by_reason = self._by_reason
        for code in {issue.code for issue in verdict.errors}:
            by_reason[code] = by_reason.get(code, 0) + 1

    def valid(self, event: dict[str, Any], verdict: EventVerdict) -> None:
        self._of_name(event)["valid"] += 1
        if verdict.warnings:
            self._warned += 1
            by_warning = self._by_warning
            for issue in verdict.warnings:
                by_warning[issue.code] = by_warning.get(issue.code, 0) + 1
        instant, event_time = verdict.event_instant, verdict.event_time
        assert instant is not None  # a verdict without errors carries both
        assert event_time is not None
        if self._first is None or instant < self._first[0]:
            self._first = (instant, event_time)
        if self._last is None or instant > self._last[0]:
            self._last = (instant, event_time)

    def summary(self, lines_read: int) -> ValidationSummary:
        by_name = self._by_name
        return ValidationSummary(
            lines_read=lines_read,
            events=sum(c["total"] for c in by_name.values()),
            valid=sum(c["valid"] for c in by_name.values()),
            rejected=sum(c["rejected"] for c in by_name.values()),
            warnings=sum(self._by_warning.values()),
            by_event_name=by_name,
            rejects_by_reason=self._by_reason,
            warnings_by_code=self._by_warning,
            warned=self._warned,
            first_event_time=None if self._first is None else self._first[1],
            last_event_time=None if self._last is None else self._last[1],
        )


class _Sinks:
    """Where valid lines and rejected records go; valid lines are gathered into chunks of ~64 KiB.

    When both outputs are one sink, the pending valid lines are written before each rejected record so
    the sink keeps the input's order.
    """

    __slots__ = ("_interleaved", "_pending", "_pending_size", "_write_rejected", "_write_valid")

    def __init__(self, valid_out: BinaryIO | None, rejected_out: BinaryIO | None) -> None:
        self._write_valid: Callable[[bytes], object] | None = None if valid_out is None else valid_out.write
        self._write_rejected: Callable[[bytes], object] | None = (
            None if rejected_out is None else rejected_out.write
        )
        self._interleaved = valid_out is not None and valid_out is rejected_out
        self._pending: list[bytes] = []
        self._pending_size = 0

    def write_valid(self, raw: bytes, line: bytes) -> None:
        if self._write_valid is None:
            return
        out = raw if len(raw) == len(line) + 1 and raw[-1:] == b"\n" else line + b"\n"
        self._pending.append(out)
        self._pending_size += len(out)
        if self._pending_size >= _VALID_CHUNK:
            self.flush_valid()

    def write_rejected(self, line_no: int, event: dict[str, Any], verdict: EventVerdict) -> None:
        if self._write_rejected is None:
            return
        if self._interleaved:
            self.flush_valid()
        record = {"line": line_no, "event": event, "errors": [issue.to_dict() for issue in verdict.errors]}
        self._write_rejected(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def flush_valid(self) -> None:
        if self._pending and self._write_valid is not None:
            self._write_valid(b"".join(self._pending))
        self._pending.clear()
        self._pending_size = 0
