"""Partitions: one store-local calendar day, as a half-open window of UTC instants.

An event belongs to the day that contains its eventTime in the store's timezone, so a day is
``[local 00:00, next local 00:00)`` converted to UTC. Days are 24 hours except on DST changes (23 or 25
in America/New_York and Europe/Vilnius); consecutive windows share their boundary, so every instant
belongs to exactly one day, and a backfill that runs every day extracts every event exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_omnisend.exceptions import OmnisendConfigError

#: The day format of partitions, stores-file dates and staging folders: exactly ``YYYY-MM-DD``.
DAY_PATTERN: Final = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DAY_TEXT = re.compile(DAY_PATTERN)


@lru_cache(maxsize=64)
def load_timezone(name: str) -> ZoneInfo:
    """The IANA timezone ``name`` (e.g. ``Europe/Vilnius``), or :class:`OmnisendConfigError` saying so."""
    if not isinstance(name, str) or not name.strip():
        raise OmnisendConfigError(f"timezone must be an IANA name like 'Europe/Vilnius', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise OmnisendConfigError(
            f"timezone {name!r} is not a known IANA timezone "
            f"(e.g. 'Europe/Vilnius', 'America/New_York'): {exc}"
        ) from None


def parse_partition_day(value: object, *, what: str = "partition day") -> date:
    """A day from ``YYYY-MM-DD`` (or a ``date``); :class:`OmnisendConfigError` names the problem.

    The one day rule of the provider (partitions, stores-file dates, staging folders, run conf). Only the
    plain ISO calendar form :data:`DAY_PATTERN` is accepted: ``2024-3-9``, ``20240309`` or a timestamp
    are refused, because a day is also a folder name and must have exactly one spelling.

    :param what: how the caller names the value in the message (``"run conf partition"``).
    """
    if isinstance(value, datetime):
        raise OmnisendConfigError(
            f"{what} must be a date, got the datetime {value.isoformat()!r} (it has a time of day); "
            "pass the store-local calendar day, value.date()"
        )
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise OmnisendConfigError(
            f"{what} must be a 'YYYY-MM-DD' string, got {type(value).__name__}; write it as e.g. '2024-03-10'"
        )
    text = value.strip()
    if not _DAY_TEXT.fullmatch(text):
        raise OmnisendConfigError(f"{what} {value!r} is not a day in the form YYYY-MM-DD (e.g. 2024-03-10)")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise OmnisendConfigError(f"{what} {value!r} is not a real calendar date ({exc})") from None


def local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz``, in UTC.

    ``fold=0`` picks the earlier reading of an ambiguous wall time; where midnight itself is skipped by a
    DST jump, zoneinfo maps it to the instant the day actually starts.
    """
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class PartitionWindow:
    """One store-local calendar day as the UTC window ``[start_utc, end_utc)``.

    Build it with :meth:`for_day`; ``contains`` is the one membership test every source uses.
    """

    day: date
    timezone: str
    start_utc: datetime = field(compare=False)
    end_utc: datetime = field(compare=False)

    def __post_init__(self) -> None:
        if not (self.start_utc.utcoffset() == timedelta(0) and self.end_utc.utcoffset() == timedelta(0)):
            raise OmnisendConfigError(
                "PartitionWindow bounds must be UTC datetimes; use PartitionWindow.for_day"
            )
        if not self.start_utc < self.end_utc:
            raise OmnisendConfigError(
                f"PartitionWindow start {self.start_utc} is not before its end {self.end_utc}"
            )

    @classmethod
    def for_day(cls, day: date | str, timezone: str) -> PartitionWindow:
        """The window of ``day`` (a ``date`` or ``YYYY-MM-DD``) in the IANA ``timezone``."""
        parsed = parse_partition_day(day)
        tz = load_timezone(timezone)
        return cls(
            day=parsed,
            timezone=timezone,
            start_utc=local_midnight_utc(parsed, tz),
            end_utc=local_midnight_utc(parsed + timedelta(days=1), tz),
        )

    @property
    def label(self) -> str:
        """``YYYY-MM-DD``: the partition's name in staging paths and reports."""
        return self.day.isoformat()

    @property
    def duration(self) -> timedelta:
        return self.end_utc - self.start_utc

    def contains(self, instant: datetime) -> bool:
        """Whether the aware ``instant`` falls in ``[start_utc, end_utc)``."""
        return self.start_utc <= instant < self.end_utc

    def next(self) -> PartitionWindow:
        return PartitionWindow.for_day(self.day + timedelta(days=1), self.timezone)

    def __str__(self) -> str:
        return f"{self.label} {self.timezone} [{self.start_utc.isoformat()}, {self.end_utc.isoformat()})"


def day_has_ended(day: date | str, tz: str, now: datetime | None = None) -> bool:
    """Whether the whole store-local ``day`` lies in the past at ``now`` (default: the current time).

    Nothing is sent for a day that has not ended: its events are not all there yet.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.utcoffset() is None:
        raise OmnisendConfigError(f"now must be timezone-aware, got the naive {now.isoformat()!r}")
    return PartitionWindow.for_day(day, tz).end_utc <= now


def iter_days(first: date | str, last: date | str) -> list[date]:
    """Every day from ``first`` to ``last``, both included (empty when ``last`` is before ``first``)."""
    start, end = parse_partition_day(first), parse_partition_day(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
