"""Canonical event times and strict parsing of the shop's instants.

Omnisend de-duplicates historic events on ``eventID`` + ``eventTime``, so one instant must always become
one string, whatever offset the shop stored it with and whichever database it came from:
:func:`format_event_time` writes it in UTC as ``YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z`` (no fraction when the
microsecond is 0, three digits for a whole millisecond, else six).

Parsing is strict because a time is also what places an event in its partition (a store-local day): a
text without a UTC offset would be placed by guesswork, so it is refused instead. Accepted: timezone-aware
``datetime`` (PostgreSQL ``timestamptz``) and ISO text ``YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}](Z|±HH:MM)`` (SQLite).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "UTC",
    "InstantCache",
    "InstantError",
    "canonical_or_raw",
    "date_prefix",
    "format_event_time",
    "parse_event_time",
    "parse_instant",
    "try_parse_instant",
]

# Offsets are limited to ±14:59 like SQLite's date functions, so that SQL prefilters and Python agree.
_STRICT_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:[Zz]|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])"
)
_DATE_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class InstantError(ValueError):
    """A value is not a time this provider can place: the message says what is wrong with it."""


def parse_instant(value: object) -> datetime:
    """The timezone-aware instant of ``value``, or :class:`InstantError` saying why there is none."""
    if type(value) is str:
        if _STRICT_TEXT.fullmatch(value) is None:
            raise InstantError(_explain_text(value))
        try:
            instant = datetime.fromisoformat(value if value[-1] != "z" else value[:-1] + "Z")
        except ValueError as exc:
            raise InstantError(f"{value!r} is not a real time ({exc})") from None
        if 1 < instant.year < 9999:
            return instant
        raise InstantError(f"{value!r} is out of range (years 0002-9998)")
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise InstantError(f"{value.isoformat()!r} has no UTC offset (a timestamp without time zone?)")
        if 1 < value.year < 9999:
            return value
        raise InstantError(f"{value.isoformat()!r} is out of range (years 0002-9998)")
    if value is None:
        raise InstantError("the time is missing (NULL)")
    raise InstantError(f"{value!r} is a {type(value).__name__}, not a time with a UTC offset")


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


def _canonical_text(value: str, hours: dict[str, str | None], *, checked: bool = False) -> Any:
    """``format_event_time(parse_instant(value))`` of a text time by slicing, ``None`` when it is not a
    usable time, or ``_MISS`` when its offset is not a whole number of hours (then ask the datetimes).

    Converting to UTC shifts only the date and the hour when the offset is whole hours, so the UTC
    "YYYY-MM-DDTHH" of each local hour and offset is worked out once with datetimes (in ``hours``, which
    also says whether that date and hour are real); the minutes, seconds and fraction are copied. About
    half the cost of parsing and formatting, and most createdAt values are never needed as instants.

    :param checked: ``value`` is already known to be a usable time (skip the pattern).
    """
    if not checked and _STRICT_TEXT.fullmatch(value) is None:
        return None
    if value[14] > "5" or value[17] > "5":  # minute or second 60-99 (the pattern allows any two digits)
        return None
    last = value[-1]
    if last == "Z" or last == "z":
        offset = "Z"
        fraction = value[19:-1]
    else:
        offset = value[-6:]
        if offset[4:] != "00":
            return _MISS
        fraction = value[19:-6]
    key = value[:13] + offset
    prefix = hours.get(key, _MISS)
    if prefix is _MISS:
        prefix = hours[key] = _utc_hour(value[:10], value[11:13], offset)
    if prefix is None:
        return None
    if fraction:  # "." and 1-6 digits: microseconds, written with 3 digits for a whole millisecond
        digits = fraction[1:] + "000000"[len(fraction) - 1 :]
        if digits == "000000":
            fraction = ""
        elif digits[3:] == "000":
            fraction = "." + digits[:3]
        else:
            fraction = "." + digits
    return prefix + value[13:19] + fraction + "Z"


def _utc_hour(day: str, hour: str, offset: str) -> str | None:
    """UTC ``YYYY-MM-DDTHH`` of a local hour, ``None`` when it is not real or out of range (as parsed)."""
    try:
        local = datetime.fromisoformat(f"{day}T{hour}:00:00{offset}")
    except ValueError:
        return None
    if not 1 < local.year < 9999:
        return None
    return local.astimezone(UTC).isoformat()[:13]


def _utc_instant(value: object) -> datetime | None:
    """:func:`parse_instant` converted to UTC, ``None`` instead of :class:`InstantError` (the common text
    case inline: no exception is built for the message of a value that is fine)."""
    if type(value) is str:
        if _STRICT_TEXT.fullmatch(value) is None:
            return None
        try:
            instant = datetime.fromisoformat(value if value[-1] != "z" else value[:-1] + "Z")
        except ValueError:
            return None
        if not 1 < instant.year < 9999:
            return None
    else:
        try:
            instant = parse_instant(value)
        except InstantError:
            return None
    # years 0002-9998 in any offset up to a day stay within datetime's range in UTC
    return instant.astimezone(UTC)


class InstantCache:
    """Memo of :func:`parse_instant` and :func:`format_event_time` for the hot path.

    The events of one order arrive together and repeat its times (created_at is every event's
    ``createdAt``, paid_at is the paid event's time and a status input of the later ones), so most
    lookups are hits. Statuses only compare instants, so the canonical string is made only when asked
    for. Bounded: each memo is emptied when full.
    """

    __slots__ = ("_canonical", "_hours", "_instants", "_limit")

    def __init__(self, limit: int = 8192) -> None:
        self._instants: dict[Any, datetime | None] = {}
        self._canonical: dict[Any, str | None] = {}
        self._hours: dict[str, str | None] = {}  # see _canonical_text
        self._limit = limit

    def instant(self, value: Any) -> datetime | None:
        """The aware instant of ``value`` in UTC, or ``None`` when it is not a usable time.

        In UTC because the instants are compared a lot (window bounds, statuses, the merge by order):
        two datetimes with the same ``tzinfo`` compare by their fields, other pairs first compute both
        UTC offsets (25x slower). Equal to :func:`parse_instant`'s result, which keeps the offset.
        """
        memo = self._instants
        try:
            hit = memo.get(value, _MISS)
        except TypeError:  # unhashable: not a time anyway
            return None
        if hit is not _MISS:
            return hit  # type: ignore[no-any-return]
        result = _utc_instant(value)
        if len(memo) >= self._limit:
            memo.clear()
        memo[value] = result
        return result

    def canonical(self, value: Any) -> str | None:
        """The canonical eventTime string of ``value``, or ``None`` when it is not a usable time."""
        memo = self._canonical
        try:
            hit = memo.get(value, _MISS)
        except TypeError:
            return None
        if hit is not _MISS:
            return hit  # type: ignore[no-any-return]
        fast: Any = _MISS
        if type(value) is str:
            known = self._instants.get(value, _MISS)
            if known is None:
                fast = None
            else:
                hours = self._hours
                if len(hours) >= self._limit:
                    hours.clear()
                fast = _canonical_text(value, hours, checked=known is not _MISS)
        result: str | None
        if fast is not _MISS:
            result = fast
        else:
            instant = self.instant(value)
            if instant is None:
                result = None
            elif type(value) is str and is_canonical_text(value):
                result = value
            else:
                result = format_event_time(instant)
        if len(memo) >= self._limit:
            memo.clear()
        memo[value] = result
        return result

    def lookup(self, value: Any) -> tuple[datetime, str] | None:
        """``(instant, canonical)`` of ``value``, or ``None`` when it is not a usable time.

        A text time seen for the first time is made canonical by slicing (:func:`_canonical_text`) and
        its instant read back from that UTC string: cheaper than parsing it with its offset, converting
        and formatting (this runs once per extracted event, for the time that places it).
        """
        instants = self._instants
        try:
            instant = instants.get(value, _MISS)
        except TypeError:
            return None
        if instant is _MISS and type(value) is str:
            canonicals = self._canonical
            canonical = canonicals.get(value, _MISS)
            known = canonical is not _MISS
            if not known:
                hours = self._hours
                if len(hours) >= self._limit:
                    hours.clear()
                canonical = _canonical_text(value, hours)
            if canonical is not _MISS:
                instant = None if canonical is None else datetime.fromisoformat(canonical)
                if len(instants) >= self._limit:
                    instants.clear()
                instants[value] = instant
                if not known:
                    if len(canonicals) >= self._limit:
                        canonicals.clear()
                    canonicals[value] = canonical
                return None if instant is None else (instant, canonical)
        if instant is _MISS:
            instant = self.instant(value)
        if instant is None:
            return None
        text = self.canonical(value)
        assert text is not None
        return instant, text
