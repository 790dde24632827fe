"""Partition windows (store-local days, DST) and canonical event times."""

from __future__ import annotations

import contextlib
import itertools
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_omnisend.events.partition import (
    PartitionWindow,
    day_has_ended,
    iter_days,
    load_timezone,
    parse_partition_day,
)
from airflow_omnisend.events.timefmt import (
    InstantCache,
    InstantError,
    canonical_or_raw,
    date_prefix,
    format_event_time,
    parse_event_time,
    parse_instant,
)
from airflow_omnisend.exceptions import OmnisendConfigError

# -- windows ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "hours", "start", "end"),
    [
        ("America/New_York", "2024-03-10", 23, "2024-03-10T05:00:00+00:00", "2024-03-11T04:00:00+00:00"),
        ("America/New_York", "2024-11-03", 25, "2024-11-03T04:00:00+00:00", "2024-11-04T05:00:00+00:00"),
        ("America/New_York", "2024-03-09", 24, "2024-03-09T05:00:00+00:00", "2024-03-10T05:00:00+00:00"),
        ("Europe/Vilnius", "2024-03-31", 23, "2024-03-30T22:00:00+00:00", "2024-03-31T21:00:00+00:00"),
        ("Europe/Vilnius", "2024-10-27", 25, "2024-10-26T21:00:00+00:00", "2024-10-27T22:00:00+00:00"),
        ("Europe/Vilnius", "2024-07-01", 24, "2024-06-30T21:00:00+00:00", "2024-07-01T21:00:00+00:00"),
        ("UTC", "2024-02-29", 24, "2024-02-29T00:00:00+00:00", "2024-03-01T00:00:00+00:00"),
    ],
)
def test_window_of_a_day(tz: str, day: str, hours: int, start: str, end: str) -> None:
    window = PartitionWindow.for_day(day, tz)
    assert window.duration == timedelta(hours=hours)
    assert window.start_utc.isoformat() == start
    assert window.end_utc.isoformat() == end
    assert window.label == day
    assert window.start_utc.tzinfo is not None


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        ("America/New_York", "2024-03-10"),
        ("America/New_York", "2024-11-03"),
        ("Europe/Vilnius", "2024-03-31"),
    ],
)
def test_midnight_belongs_to_the_new_day_and_a_microsecond_before_to_the_old(tz: str, day: str) -> None:
    window = PartitionWindow.for_day(day, tz)
    before = PartitionWindow.for_day(date.fromisoformat(day) - timedelta(days=1), tz)
    after = window.next()
    midnight = window.start_utc
    assert window.contains(midnight)
    assert not before.contains(midnight)
    assert before.contains(midnight - timedelta(microseconds=1))
    assert not window.contains(midnight - timedelta(microseconds=1))
    assert after.contains(window.end_utc)
    assert not window.contains(window.end_utc)
    assert window.contains(window.end_utc - timedelta(microseconds=1))


def test_midnight_skipped_by_dst_starts_the_day_when_it_really_starts() -> None:
    # America/Santiago springs forward at local midnight: 2024-09-08 starts at 01:00 local (04:00 UTC)
    window = PartitionWindow.for_day("2024-09-08", "America/Santiago")
    assert window.start_utc == datetime(2024, 9, 8, 4, 0, tzinfo=UTC)
    assert window.duration == timedelta(hours=23)
    assert PartitionWindow.for_day("2024-09-07", "America/Santiago").end_utc == window.start_utc


@settings(max_examples=300, deadline=None)
@given(
    instant=st.datetimes(
        min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC)
    ),
    tz=st.sampled_from(["America/New_York", "Europe/Vilnius", "Asia/Kolkata", "Pacific/Kiritimati", "UTC"]),
)
def test_every_instant_belongs_to_exactly_one_day(instant: datetime, tz: str) -> None:
    local_day = instant.astimezone(load_timezone(tz)).date()
    windows = [PartitionWindow.for_day(local_day + timedelta(days=d), tz) for d in (-1, 0, 1)]
    assert [w.contains(instant) for w in windows] == [False, True, False]
    assert windows[0].end_utc == windows[1].start_utc
    assert windows[1].end_utc == windows[2].start_utc


def test_consecutive_windows_tile_a_year() -> None:
    for tz in ("America/New_York", "Europe/Vilnius"):
        days = iter_days("2024-01-01", "2024-12-31")
        windows = [PartitionWindow.for_day(d, tz) for d in days]
        assert len(windows) == 366
        assert all(a.end_utc == b.start_utc for a, b in itertools.pairwise(windows))
        assert sorted({w.duration for w in windows}) == [timedelta(hours=h) for h in (23, 24, 25)]


def test_window_equality_and_validation() -> None:
    assert PartitionWindow.for_day("2024-03-10", "UTC") == PartitionWindow.for_day(date(2024, 3, 10), "UTC")
    with pytest.raises(OmnisendConfigError, match="UTC datetimes"):
        PartitionWindow(date(2024, 1, 1), "UTC", datetime(2024, 1, 1), datetime(2024, 1, 2))
    with pytest.raises(OmnisendConfigError, match="not before"):
        PartitionWindow(
            date(2024, 1, 1), "UTC", datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)
        )
    assert "2024-03-10 UTC" in str(PartitionWindow.for_day("2024-03-10", "UTC"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-3-9", "YYYY-MM-DD"),
        ("20240309", "YYYY-MM-DD"),
        ("2024-03-09T00:00", "YYYY-MM-DD"),
        ("2024-02-30", "not a real calendar date"),
        ("", "YYYY-MM-DD"),
        (20240309, "must be a 'YYYY-MM-DD' string"),
    ],
)
def test_partition_day_strings_are_strict(value: object, message: str) -> None:
    with pytest.raises(OmnisendConfigError, match=message):
        parse_partition_day(value)  # type: ignore[arg-type]


def test_partition_day_accepts_dates_and_trims() -> None:
    assert parse_partition_day(" 2024-03-09 ") == date(2024, 3, 9)
    assert parse_partition_day(date(2024, 3, 9)) == date(2024, 3, 9)
    with pytest.raises(OmnisendConfigError, match=r"value\.date\(\)"):
        parse_partition_day(datetime(2024, 3, 9))


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", None])
def test_unknown_timezones_are_config_errors(name: object) -> None:
    with pytest.raises(OmnisendConfigError, match="timezone"):
        PartitionWindow.for_day("2024-03-09", name)  # type: ignore[arg-type]


def test_day_has_ended() -> None:
    end = PartitionWindow.for_day("2024-03-10", "America/New_York").end_utc
    assert not day_has_ended("2024-03-10", "America/New_York", end - timedelta(microseconds=1))
    assert day_has_ended("2024-03-10", "America/New_York", end)
    assert day_has_ended("2000-01-01", "UTC")
    assert not day_has_ended(datetime.now(UTC).date() + timedelta(days=2), "UTC")
    with pytest.raises(OmnisendConfigError, match="timezone-aware"):
        day_has_ended("2024-03-10", "UTC", datetime(2024, 3, 12))


def test_iter_days() -> None:
    assert iter_days("2024-02-28", "2024-03-01") == [date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)]
    assert iter_days("2024-03-01", "2024-02-28") == []


# -- event times --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("2024-03-09T23:59:59-05:00", "2024-03-10T04:59:59Z"),
        ("2024-03-10T04:59:59Z", "2024-03-10T04:59:59Z"),
        ("2024-03-10T04:59:59z", "2024-03-10T04:59:59Z"),
        ("2024-03-10 04:59:59+00:00", "2024-03-10T04:59:59Z"),
        ("2024-03-10T06:59:59.5+02:00", "2024-03-10T04:59:59.500Z"),
        ("2024-03-10T04:59:59.000Z", "2024-03-10T04:59:59Z"),
        ("2024-03-10T04:59:59.120Z", "2024-03-10T04:59:59.120Z"),
        ("2024-03-10T04:59:59.000001Z", "2024-03-10T04:59:59.000001Z"),
        ("2024-03-10T04:59:59.123450Z", "2024-03-10T04:59:59.123450Z"),
        ("2024-03-10T18:59:59+14:00", "2024-03-10T04:59:59Z"),
        ("2024-03-09T16:59:59-12:00", "2024-03-10T04:59:59Z"),
        (datetime(2024, 3, 10, 4, 59, 59, 250000, tzinfo=UTC), "2024-03-10T04:59:59.250Z"),
        (datetime(2024, 3, 9, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))), "2024-03-10T04:59:59Z"),
    ],
)
def test_canonical_event_time(value: object, canonical: str) -> None:
    instant, text = parse_event_time(value)
    assert text == canonical
    assert format_event_time(instant) == canonical
    assert datetime.fromisoformat(canonical) == instant


@settings(max_examples=300, deadline=None)
@given(
    instant=st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_same_instant_same_string_whatever_the_offset(instant: datetime, offset_minutes: int) -> None:
    shifted = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    as_text = shifted.isoformat()
    assert parse_event_time(as_text)[1] == parse_event_time(shifted)[1] == format_event_time(instant)
    assert parse_instant(as_text) == instant


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-03-09T23:59:59", "no UTC offset"),
        ("2024-03-09 23:59:59", "no UTC offset"),
        ("2024-03-09T23:59:59.1234567Z", "more than 6 fraction digits"),
        ("2024-03-09T23:59:59+15:00", "outside"),
        ("2024-03-09T23:59:59-05", "ISO 8601"),
        ("2024-03-09T23:59Z", "ISO 8601"),
        ("2024-03-09", "no UTC offset|ISO 8601"),
        ("20240309T235959Z", "ISO 8601"),
        ("2024-02-30T00:00:00Z", "not a real time"),
        ("2024-03-09T24:00:00Z", "not a real time"),
        ("0001-01-01T00:00:00+05:00", "out of range"),
        ("yesterday", "ISO 8601"),
        (None, "missing"),
        (1710046799, "is a int"),
        (datetime(2024, 3, 9, 23, 59), "no UTC offset"),
    ],
)
def test_strict_parsing_refuses_what_cannot_be_placed(value: object, message: str) -> None:
    with pytest.raises(InstantError, match=message):
        parse_instant(value)


def test_canonical_or_raw_passes_unreadable_values_on() -> None:
    assert canonical_or_raw("2024-03-09 23:59") == "2024-03-09 23:59"
    assert canonical_or_raw(datetime(2024, 3, 9, 23, 59)) == "2024-03-09T23:59:00"
    assert canonical_or_raw(None) is None
    assert canonical_or_raw("2024-03-09T23:59:59-05:00") == "2024-03-10T04:59:59Z"


def test_date_prefix() -> None:
    assert date_prefix("2024-03-09 23:59") == "2024-03-09"
    assert date_prefix("2024-02-30Tjunk") == "2024-02-30"
    assert date_prefix("yesterday") is None
    assert date_prefix(None) is None
    assert date_prefix(datetime(2024, 3, 9)) is None


def test_instant_cache_agrees_with_parsing_and_stays_bounded() -> None:
    cache = InstantCache(limit=4)
    values = [f"2024-03-{d:02d}T10:00:00+02:00" for d in range(1, 20)] + ["junk", None, ["unhashable"]]
    for value in values * 2:
        expected = None
        with contextlib.suppress(InstantError):
            expected = parse_event_time(value)
        assert cache.lookup(value) == expected
        assert cache.instant(value) == (expected[0] if expected else None)
        assert cache.canonical(value) == (expected[1] if expected else None)
    assert len(cache._instants) <= 4
    assert len(cache._canonical) <= 4
