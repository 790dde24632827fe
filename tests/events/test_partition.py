"""Partition windows: store-local days, DST, partition-day strings (event times: test_timefmt.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

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
