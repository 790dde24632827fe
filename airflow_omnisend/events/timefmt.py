"""Canonical event times and strict parsing of the shop's instants.

Omnisend de-duplicates historic events on ``eventID`` + ``eventTime``, so one instant must always become
one string, whatever offset the shop stored it with and whichever database it came from:
:func:`format_event_time` writes it in UTC as ``YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z`` (no fraction when the
microsecond is 0, three digits for a whole millisecond, else six).

Parsing is strict because a time is also what places an event in its partition (a store-local day): a
text without a UTC offset would be placed by guesswork, so it is refused instead. :func:`parse_instant`, the
rule for a shop's times, accepts timezone-aware ``datetime`` (PostgreSQL ``timestamptz``) and ISO text
``YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}](Z|±HH:MM)``: exactly what SQLite's ``julianday()`` reads too, so the
SQL prefilter of a SQLite source and Python agree on every row.

:func:`read_event_time` is the rule for the ``eventTime`` of a ready event (an imported file): the forms
Omnisend's 2026-03-15 events contract accepts (ISO 8601 / RFC 3339), which are more than that:
``YYYY-MM-DD(T|t| )HH:MM:SS[.f+](Z|z|±HH:MM|±HHMM|±HH)``. Such a text is rewritten to the shop rule's form
(``T``, at most six fraction digits, ``±HH:MM``) and read by it, so both rules give one instant and one
canonical string. Fraction digits beyond the sixth (a datetime's microsecond) are truncated, never rounded:
the date and clock fields stay as written (rounding ``23:59:59.9999999`` would move an event to the next
day, and so to another partition), and every text of one instant, trailing zeros or not, gives one string.
Still refused, with the reason: no UTC offset (Omnisend would read it in some zone of its own), a date
alone, minutes without seconds, ISO week or ordinal dates, offsets beyond ±14:59, leap second 60.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from airflow_omnisend.events.partition import DAY_PATTERN

__all__ = [
    "DEFAULT_MIN_EVENT_AGE",
    "EARLIEST_EVENT_TIME",
    "UTC",
    "InstantCache",
    "InstantError",
    "canonical_or_raw",
    "date_prefix",
    "format_event_time",
    "parse_event_time",
    "parse_instant",
    "read_event_time",
    "try_parse_instant",
]

#: the earliest eventTime a backfill sends: older ones are a source's placeholder dates (0001-01-01,
#: 1900-01-01, 1970-01-01 ...), not orders, and would become false purchase history in Omnisend
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)

#: How old an event must be before it is sent by default: Omnisend de-duplicates only historic events,
#: and a younger one could still fire an automation. The DAGs, the safety check and the CLI share it.
DEFAULT_MIN_EVENT_AGE: Final = timedelta(hours=1)

# Offsets are limited to ±14:59 like SQLite's date functions, so that SQL prefilters and Python agree.
_STRICT_TEXT = re.compile(
    DAY_PATTERN + r"[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:[Zz]|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])"
)
_DATE_PREFIX = re.compile(DAY_PATTERN)
#: The events contract's wider forms (see the module docstring); the offset's range is checked by
#: rewriting it into the shop rule's ``±HH:MM``. defs.json's eventTime pattern has the same shape.
_CONTRACT_TEXT = re.compile(
    "(" + DAY_PATTERN + r")[Tt ]([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)"
)


class InstantError(ValueError):
    """A value is not a time this provider can place: the message says what is wrong with it."""


def parse_instant(value: object) -> datetime:
    """The timezone-aware instant of ``value``, or :class:`InstantError` saying why there is none."""
    if type(value) is str:
        if _STRICT_TEXT.fullmatch(value) is None:
            raise InstantError(_explain_text(value))
        return _strict_instant(value, value)
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise InstantError(f"{value.isoformat()!r} has no UTC offset (a timestamp without time zone?)")
        if 1 < value.year < 9999:
            return value
        raise InstantError(f"{value.isoformat()!r} is out of range (years 0002-9998)")
    if value is None:
        raise InstantError("the time is missing (NULL)")
    raise InstantError(f"{value!r} is a {type(value).__name__}, not a time with a UTC offset")


def _strict_instant(text: str, value: str) -> datetime:
    """The instant of ``text`` (matching the shop rule's pattern); messages name ``value``, as written."""
    try:
        instant = datetime.fromisoformat(text if text[-1] != "z" else text[:-1] + "Z")
    except ValueError as exc:
        raise InstantError(f"{value!r} is not a real time ({exc})") from None
    if 1 < instant.year < 9999:
        return instant
    raise InstantError(f"{value!r} is out of range (years 0002-9998)")


def read_event_time(value: str) -> tuple[datetime, str]:
    """``(instant, canonical string)`` of an event's ``eventTime`` text in any form the events contract
    accepts (see the module docstring), or :class:`InstantError` saying why it is none.

    The fast path is the shop rule's pattern (every event the extraction writes); only a text that fails
    it is matched against the wider forms.
    """
    if _STRICT_TEXT.fullmatch(value) is not None:
        instant = _strict_instant(value, value)
        return instant, value if is_canonical_text(value) else format_event_time(instant)
    match = _CONTRACT_TEXT.fullmatch(value)
    if match is None:
        raise InstantError(_explain_event_time(value))
    day, clock, fraction, offset = match.groups()
    if len(offset) == 3:  # ±HH
        offset += ":00"
    elif len(offset) == 5:  # ±HHMM
        offset = f"{offset[:3]}:{offset[3:]}"
    text = f"{day}T{clock}{'' if fraction is None else '.' + fraction[:6]}{offset}"
    if _STRICT_TEXT.fullmatch(text) is None:
        raise InstantError(f"{value!r} has an offset outside ±14:59")
    instant = _strict_instant(text, value)
    return instant, format_event_time(instant)


def _explain_event_time(value: str) -> str:
    if _DATE_PREFIX.match(value) and len(value) >= 19 and _CONTRACT_TEXT.fullmatch(value + "Z"):
        return f"{value!r} has no UTC offset (add Z or ±HH:MM)"
    return (
        f"{value!r} is not an ISO 8601 time like 2024-03-09T23:59:59-05:00 or 2024-03-09 23:59:59+02:00 "
        "(a date, 'T' or a space, HH:MM:SS, an optional fraction and a UTC offset: Z, ±HH:MM, ±HHMM or ±HH)"
    )


def try_parse_instant(value: object) -> datetime | None:
    """:func:`parse_instant`, or ``None`` when the value is not a usable time."""
    try:
        return parse_instant(value)
    except InstantError:
        return None


def _explain_text(value: str) -> str:
    if _DATE_PREFIX.match(value) and len(value) >= 19 and _STRICT_TEXT.fullmatch(value + "Z"):
        return f"{value!r} has no UTC offset (add Z or ±HH:MM)"
    if re.fullmatch(r".*\.[0-9]{7,}([Zz]|[+-][0-9]{2}:[0-9]{2})", value):
        return f"{value!r} has more than 6 fraction digits"
    if re.fullmatch(r".*[+-][0-9]{2}:[0-9]{2}", value) and _STRICT_TEXT.fullmatch(value[:-6] + "Z"):
        return f"{value!r} has an offset outside ±14:59"
    return f"{value!r} is not an ISO 8601 time like 2024-03-09T23:59:59-05:00"


def format_event_time(instant: datetime) -> str:
    """The canonical UTC string of an aware instant (see the module docstring)."""
    offset = instant.utcoffset()
    if offset is None:
        raise InstantError(f"{instant.isoformat()!r} has no UTC offset")
    if offset:
        instant = instant - offset  # wall fields are UTC now; the stale tzinfo is cut off below
    micro = instant.microsecond
    text = instant.isoformat()
    if not micro:
        return text[:19] + "Z"
    if micro % 1000 == 0:
        return text[:23] + "Z"
    return text[:26] + "Z"


def is_canonical_text(value: str) -> bool:
    """True when ``value`` already has the canonical shape (cheap, no parsing; validity not checked)."""
    n = len(value)
    if value[-1:] != "Z" or value[10:11] != "T":
        return False
    if n == 20:
        return True
    if n == 24:
        return value[19] == "." and value[20:23] != "000"
    if n == 27:
        return value[19] == "." and value[23:26] != "000"
    return False


def parse_event_time(value: object) -> tuple[datetime, str]:
    """``(instant, canonical string)`` of ``value``; :class:`InstantError` when it is not usable."""
    instant = parse_instant(value)
    if type(value) is str and is_canonical_text(value):
        return instant, value
    return instant, format_event_time(instant)


def canonical_or_raw(value: object) -> Any:
    """The canonical string of ``value`` when it is a usable time, else ``value`` itself.

    The mapping is total: a time it cannot read is passed on unchanged, so the validator rejects the
    event and says what is wrong with it.
    """
    try:
        return parse_event_time(value)[1]
    except InstantError:
        if isinstance(value, datetime):
            return value.isoformat()
        return value


def date_prefix(value: object) -> str | None:
    """The leading ``YYYY-MM-DD`` of a text time (not checked to be a real date), else ``None``.

    A text that cannot be parsed is reported in exactly one partition, the day its text starts with (see
    ``airflow_omnisend.sources``); one without such a prefix cannot be placed at all.
    """
    if type(value) is str and _DATE_PREFIX.match(value):
        return value[:10]
    return None


_MISS: Any = object()


def _utc_event_time(value: object) -> tuple[datetime, str] | None:
    """:func:`parse_event_time` with the instant converted to UTC, ``None`` when it is not a usable time."""
    try:
        instant, canonical = parse_event_time(value)
    except InstantError:
        return None
    # years 0002-9998 in any offset up to a day stay within datetime's range in UTC
    return instant.astimezone(UTC), canonical


class InstantCache:
    """Memo of :func:`parse_event_time` for the hot path: ``value -> (instant in UTC, canonical string)``.

    The events of one order arrive together and repeat its times (created_at is every event's
    ``createdAt``, paid_at is the paid event's time and a status input of the later ones), so most
    lookups are hits. The instants are in UTC because they are compared a lot (window bounds, statuses,
    the merge by order): two datetimes with the same ``tzinfo`` compare by their fields, other pairs first
    compute both UTC offsets. Each equals :func:`parse_instant`'s result, which keeps the offset.
    Bounded: the memo is emptied when it holds ``limit`` values.
    """

    __slots__ = ("_limit", "_parsed")

    def __init__(self, limit: int = 8192) -> None:
        self._parsed: dict[Any, tuple[datetime, str] | None] = {}
        self._limit = limit

    def __len__(self) -> int:
        """How many values the memo holds (at most ``limit``)."""
        return len(self._parsed)

    def lookup(self, value: Any) -> tuple[datetime, str] | None:
        """``(instant in UTC, canonical eventTime)`` of ``value``; ``None`` when it is not a usable time."""
        parsed = self._parsed
        try:
            hit = parsed.get(value, _MISS)
        except TypeError:  # unhashable: not a time anyway
            return None
        if hit is _MISS:
            hit = _utc_event_time(value)
            if len(parsed) >= self._limit:
                parsed.clear()
            parsed[value] = hit
        return hit  # type: ignore[no-any-return]

    def instant(self, value: Any) -> datetime | None:
        """The instant of ``value`` in UTC, or ``None`` when it is not a usable time."""
        found = self.lookup(value)
        return None if found is None else found[0]

    def canonical(self, value: Any) -> str | None:
        """The canonical eventTime string of ``value``, or ``None`` when it is not a usable time."""
        found = self.lookup(value)
        return None if found is None else found[1]
