"""Partitions: one store-local period (day, ISO week or calendar month) as a half-open UTC window.

An event belongs to the period that contains its eventTime in the store's timezone, so a period is
``[local 00:00 of its first day, local 00:00 of the next period's first day)`` converted to UTC. Days
are 24 hours except on DST changes (23 or 25 in America/New_York and Europe/Vilnius); consecutive
windows share their boundary, so every instant belongs to exactly one period, and a backfill that runs
every period extracts every event exactly once.

The period rule (:class:`PartitionPeriod`) is defined here once: keys ``YYYY-MM-DD`` (day),
``YYYY-Www`` (ISO week, Monday to Sunday, week 53 where the ISO year has one) and ``YYYY-MM`` (month).
A key's form names its period, so staging folders and later tasks need no separate period setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_omnisend.exceptions import OmnisendConfigError

#: The day format of partitions, stores-file dates and staging folders: exactly ``YYYY-MM-DD``.
DAY_PATTERN: Final = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DAY_TEXT = re.compile(DAY_PATTERN)
#: the key format of ISO-week partitions, ``YYYY-Www`` (``2024-W10``)
WEEK_PATTERN: Final = "[0-9]{4}-W[0-9]{2}"
#: the key format of month partitions, ``YYYY-MM`` (``2024-03``)
MONTH_PATTERN: Final = "[0-9]{4}-[0-9]{2}"


class PartitionPeriod(StrEnum):
    """How long one partition of a store is (the stores file's ``period``): its key form and bounds."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def noun(self) -> str:
        return {"day": "day", "week": "ISO week", "month": "month"}[self.value]

    @property
    def a_noun(self) -> str:
        """The noun with its article, for messages (``an ISO week``)."""
        return ("an " if self is PartitionPeriod.WEEK else "a ") + self.noun

    @property
    def form(self) -> str:
        """The key's form, for messages: ``YYYY-MM-DD``, ``YYYY-Www`` or ``YYYY-MM``."""
        return {"day": "YYYY-MM-DD", "week": "YYYY-Www", "month": "YYYY-MM"}[self.value]

    @property
    def example(self) -> str:
        return {"day": "2024-03-10", "week": "2024-W10", "month": "2024-03"}[self.value]

    @property
    def pattern(self) -> str:
        """The key's regular expression (for the DAG's ``partition`` Param)."""
        return {"day": DAY_PATTERN, "week": WEEK_PATTERN, "month": MONTH_PATTERN}[self.value]

    @property
    def cron(self) -> str:
        """The cron of the period's starts (local midnight of each first day)."""
        return {"day": "0 0 * * *", "week": "0 0 * * 1", "month": "0 0 1 * *"}[self.value]

    @property
    def key_format(self) -> str:
        """The ``strftime`` format that writes a period's key from its first day."""
        return {"day": "%Y-%m-%d", "week": "%G-W%V", "month": "%Y-%m"}[self.value]

    def start_of(self, day: date) -> date:
        """The first day of the period that contains ``day``."""
        if self is PartitionPeriod.WEEK:
            return day - timedelta(days=day.weekday())
        if self is PartitionPeriod.MONTH:
            return day.replace(day=1)
        return day

    def after(self, start: date) -> date:
        """The first day of the period after the one that starts on ``start``."""
        if self is PartitionPeriod.WEEK:
            return start + timedelta(days=7)
        if self is PartitionPeriod.MONTH:
            return date(start.year + start.month // 12, start.month % 12 + 1, 1)
        return start + timedelta(days=1)

    def label(self, start: date) -> str:
        """The key of the period that starts on ``start``."""
        if self is PartitionPeriod.WEEK:
            year, week, _ = start.isocalendar()
            return f"{year:04d}-W{week:02d}"
        if self is PartitionPeriod.MONTH:
            return f"{start.year:04d}-{start.month:02d}"
        return start.isoformat()


def parse_period(value: object, *, what: str = "period") -> PartitionPeriod:
    """``day``, ``week`` or ``month`` (the stores file's ``period``); anything else names the choices."""
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return PartitionPeriod(value)
    except ValueError:
        raise OmnisendConfigError(
            f"{what} {value!r} is not a partition period; use one of: day (default), week (ISO weeks, "
            "Monday to Sunday), month (calendar months)"
        ) from None


_PERIOD_TEXT: Final = {
    PartitionPeriod.WEEK: re.compile(WEEK_PATTERN),
    PartitionPeriod.MONTH: re.compile(MONTH_PATTERN),
}


def period_of_key(value: str) -> PartitionPeriod:
    """The period a key's form names (``2024-W10`` a week, ``2024-03`` a month, otherwise a day)."""
    for period, pattern in _PERIOD_TEXT.items():
        if pattern.fullmatch(value.strip()):
            return period
    return PartitionPeriod.DAY


def parse_partition_key(
    value: object, period: PartitionPeriod | str = PartitionPeriod.DAY, *, what: str = "partition"
) -> date:
    """The first day of the ``period`` named by the key ``value``; the error names the expected form.

    A day key for a month store (or any other mismatch) is refused, saying which form the store's
    period takes. For ``day`` this is :func:`parse_partition_day`.
    """
    period = parse_period(period)
    if period is PartitionPeriod.DAY:
        if isinstance(value, str) and period_of_key(value) is not PartitionPeriod.DAY:
            raise OmnisendConfigError(
                f"{what} {value!r} names {period_of_key(value).a_noun}, but this store's partitions are "
                "days: give a day in the form YYYY-MM-DD (e.g. 2024-03-10)"
            )
        return parse_partition_day(value, what=what)
    expected = (
        f"this store's partitions are {period.noun}s: give one in the form {period.form} "
        f"(e.g. {period.example})"
    )
    if not isinstance(value, str) or not _PERIOD_TEXT[period].fullmatch(value.strip()):
        raise OmnisendConfigError(f"{what} {value!r} is not {period.a_noun}; {expected}")
    year, number = int(value.strip()[:4]), int(value.strip()[-2:])
    try:
        if period is PartitionPeriod.WEEK:
            return date.fromisocalendar(year, number, 1)
        return date(year, number, 1)
    except ValueError as exc:
        raise OmnisendConfigError(
            f"{what} {value!r} is not a real {period.noun} ({exc}); {expected}"
        ) from None


def canonical_partition_label(value: object, *, what: str = "partition") -> str:
    """The key ``value`` (of any period, or a ``date`` for a day) in its one spelling."""
    period = period_of_key(value) if isinstance(value, str) else PartitionPeriod.DAY
    return period.label(parse_partition_key(value, period, what=what))


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
    """One store-local period as the UTC window ``[start_utc, end_utc)``; ``day`` is its first day.

    Build it with :meth:`for_day` or :meth:`for_period`; ``contains`` is the one membership test every
    source uses.
    """

    day: date
    timezone: str
    start_utc: datetime = field(compare=False)
    end_utc: datetime = field(compare=False)
    period: PartitionPeriod = PartitionPeriod.DAY

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

    @classmethod
    def for_period(cls, key: date | str, period: PartitionPeriod | str, timezone: str) -> PartitionWindow:
        """The window of the ``period`` named by ``key`` (its key, or a ``date`` inside it)."""
        period = parse_period(period)
        if isinstance(key, date) and not isinstance(key, datetime):
            first = period.start_of(key)
        else:
            first = parse_partition_key(key, period)
        tz = load_timezone(timezone)
        return cls(
            day=first,
            timezone=timezone,
            start_utc=local_midnight_utc(first, tz),
            end_utc=local_midnight_utc(period.after(first), tz),
            period=period,
        )

    @classmethod
    def for_key(cls, key: str, timezone: str) -> PartitionWindow:
        """The window of ``key``, whose form names its period (a staging label from the partition task)."""
        return cls.for_period(key, period_of_key(key), timezone)

    @property
    def label(self) -> str:
        """The partition's key (``YYYY-MM-DD``, ``YYYY-Www``, ``YYYY-MM``): its staging and report name."""
        return self.period.label(self.day)

    @property
    def end_day(self) -> date:
        """The first day after the period (the next period's first day)."""
        return self.period.after(self.day)

    @property
    def last_day(self) -> date:
        return self.end_day - timedelta(days=1)

    @property
    def day_labels(self) -> frozenset[str]:
        """Every store-local day of the period as ``YYYY-MM-DD`` (text times are reported by their day)."""
        count = (self.end_day - self.day).days
        return frozenset((self.day + timedelta(days=i)).isoformat() for i in range(count))

    @property
    def duration(self) -> timedelta:
        return self.end_utc - self.start_utc

    def contains(self, instant: datetime) -> bool:
        """Whether the aware ``instant`` falls in ``[start_utc, end_utc)``."""
        return self.start_utc <= instant < self.end_utc

    def next(self) -> PartitionWindow:
        return PartitionWindow.for_period(self.end_day, self.period, self.timezone)

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


def period_has_ended(
    key: date | str, period: PartitionPeriod | str, tz: str, now: datetime | None = None
) -> bool:
    """Whether the whole store-local period ``key`` lies in the past at ``now`` (default: now)."""
    if now is None:
        now = datetime.now(UTC)
    elif now.utcoffset() is None:
        raise OmnisendConfigError(f"now must be timezone-aware, got the naive {now.isoformat()!r}")
    return PartitionWindow.for_period(key, period, tz).end_utc <= now


def iter_days(first: date | str, last: date | str) -> list[date]:
    """Every day from ``first`` to ``last``, both included (empty when ``last`` is before ``first``)."""
    start, end = parse_partition_day(first), parse_partition_day(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
