"""Partition windows: store-local days, DST, partition-day strings (event times: test_timefmt.py)."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_omnisend.events.partition import (
    PartitionPeriod,
    PartitionWindow,
    canonical_partition_label,
    day_has_ended,
    iter_days,
    load_timezone,
    parse_partition_day,
    parse_partition_key,
    parse_period,
    period_has_ended,
    period_of_key,
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


# -- periods: weeks and months ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "period", "key", "start", "end", "hours"),
    [
        # months holding a DST change: one hour short / long
        ("Europe/Vilnius", "month", "2024-03", "2024-02-29T22:00:00+00:00", "2024-03-31T21:00:00+00:00", 743),
        ("Europe/Vilnius", "month", "2024-10", "2024-09-30T21:00:00+00:00", "2024-10-31T22:00:00+00:00", 745),
        (
            "America/New_York",
            "month",
            "2024-03",
            "2024-03-01T05:00:00+00:00",
            "2024-04-01T04:00:00+00:00",
            743,
        ),
        (
            "America/New_York",
            "month",
            "2024-11",
            "2024-11-01T04:00:00+00:00",
            "2024-12-01T05:00:00+00:00",
            721,
        ),
        # leap February, and a year end
        ("UTC", "month", "2024-02", "2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00", 29 * 24),
        ("UTC", "month", "2023-02", "2023-02-01T00:00:00+00:00", "2023-03-01T00:00:00+00:00", 28 * 24),
        ("Asia/Tokyo", "month", "2024-12", "2024-11-30T15:00:00+00:00", "2024-12-31T15:00:00+00:00", 744),
        # east of UTC: the month starts the previous UTC day; Auckland's DST change inside April
        (
            "Pacific/Auckland",
            "month",
            "2024-04",
            "2024-03-31T11:00:00+00:00",
            "2024-04-30T12:00:00+00:00",
            721,
        ),
        # ISO weeks: week 53, a week across a year end, a DST week
        ("Europe/Vilnius", "week", "2020-W53", "2020-12-27T22:00:00+00:00", "2021-01-03T22:00:00+00:00", 168),
        ("UTC", "week", "2026-W53", "2026-12-28T00:00:00+00:00", "2027-01-04T00:00:00+00:00", 168),
        ("UTC", "week", "2025-W01", "2024-12-30T00:00:00+00:00", "2025-01-06T00:00:00+00:00", 168),
        (
            "America/New_York",
            "week",
            "2024-W10",
            "2024-03-04T05:00:00+00:00",
            "2024-03-11T04:00:00+00:00",
            167,
        ),
    ],
)
def test_window_of_a_period(tz: str, period: str, key: str, start: str, end: str, hours: int) -> None:
    window = PartitionWindow.for_period(key, period, tz)
    assert window.start_utc.isoformat() == start
    assert window.end_utc.isoformat() == end
    assert window.duration == timedelta(hours=hours)
    assert window.label == key
    assert PartitionWindow.for_key(key, tz) == window
    assert window.next().start_utc == window.end_utc
    assert len(window.day_labels) == (window.end_day - window.day).days


def test_the_leap_day_is_in_february_and_in_its_iso_week() -> None:
    leap = date(2024, 2, 29)
    month = PartitionWindow.for_period(leap, "month", "Europe/Vilnius")
    week = PartitionWindow.for_period(leap, "week", "Europe/Vilnius")
    assert (month.label, month.last_day) == ("2024-02", leap)
    assert (week.label, week.day, week.last_day) == ("2024-W09", date(2024, 2, 26), date(2024, 3, 3))
    assert "2024-02-29" in month.day_labels
    assert "2024-02-29" in week.day_labels


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/Vilnius", "Pacific/Auckland", "Asia/Tokyo"])
@pytest.mark.parametrize("period", ["week", "month"])
def test_consecutive_periods_tile_two_years(tz: str, period: str) -> None:
    window = PartitionWindow.for_period(date(2023, 1, 1), period, tz)
    days = 0
    while window.day < date(2025, 1, 1):
        following = window.next()
        assert following.start_utc == window.end_utc
        assert following.day == window.end_day
        days += len(window.day_labels)
        window = following
    assert days == (window.day - PartitionPeriod(period).start_of(date(2023, 1, 1))).days


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)))
@settings(max_examples=200, deadline=None)
def test_every_instant_is_in_exactly_one_period(instant: datetime) -> None:
    for period in ("day", "week", "month"):
        for tz in ("America/New_York", "Pacific/Auckland"):
            local_day = instant.astimezone(load_timezone(tz)).date()
            window = PartitionWindow.for_period(local_day, period, tz)
            assert window.contains(instant)
            assert not window.next().contains(instant)
            previous = PartitionWindow.for_period(window.day - timedelta(days=1), period, tz)
            assert not previous.contains(instant)
            assert previous.end_utc == window.start_utc


def test_day_periods_are_the_day_windows() -> None:
    for day in iter_days("2024-03-08", "2024-03-12"):
        assert PartitionWindow.for_period(day, "day", "America/New_York") == PartitionWindow.for_day(
            day, "America/New_York"
        )
    assert PartitionWindow.for_day("2024-03-10", "UTC").period is PartitionPeriod.DAY


@pytest.mark.parametrize(
    ("value", "period", "expected_form"),
    [
        ("2024-03-04", "month", "YYYY-MM (e.g. 2024-03)"),
        ("2024-13", "month", "YYYY-MM (e.g. 2024-03)"),
        ("2024-00", "month", "YYYY-MM (e.g. 2024-03)"),
        ("2024-W10", "month", "YYYY-MM (e.g. 2024-03)"),
        ("2024-3", "month", "YYYY-MM (e.g. 2024-03)"),
        ("2024-W54", "week", "YYYY-Www (e.g. 2024-W10)"),
        ("2021-W53", "week", "YYYY-Www (e.g. 2024-W10)"),  # 2021 has 52 ISO weeks
        ("2024-W00", "week", "YYYY-Www (e.g. 2024-W10)"),
        ("2024-03", "week", "YYYY-Www (e.g. 2024-W10)"),
        ("2024-03", "day", "YYYY-MM-DD (e.g. 2024-03-10)"),
        ("2024-W10", "day", "YYYY-MM-DD (e.g. 2024-03-10)"),
    ],
)
def test_a_key_of_another_form_is_refused_with_the_expected_form(
    value: str, period: str, expected_form: str
) -> None:
    with pytest.raises(OmnisendConfigError, match=re.escape(expected_form)) as err:
        parse_partition_key(value, period, what="run conf partition")
    assert str(err.value).startswith(f"run conf partition {value!r}")


def test_keys_parse_to_the_first_day_of_their_period() -> None:
    assert parse_partition_key("2024-03", "month") == date(2024, 3, 1)
    assert parse_partition_key("2020-W53", "week") == date(2020, 12, 28)
    assert parse_partition_key("2024-03-10", "day") == date(2024, 3, 10)
    assert [period_of_key(k) for k in ("2024-03", "2024-W10", "2024-03-10")] == ["month", "week", "day"]
    assert canonical_partition_label(" 2024-W05 ") == "2024-W05"
    assert canonical_partition_label(date(2024, 3, 1)) == "2024-03-01"


def test_an_unknown_period_names_the_choices() -> None:
    assert parse_period("month") is PartitionPeriod.MONTH
    for bad in ("monthly", "Month", 7, None):
        with pytest.raises(OmnisendConfigError, match=r"day \(default\), week .* month"):
            parse_period(bad)


def test_a_period_has_ended_only_after_its_last_local_day() -> None:
    end = datetime(2024, 3, 31, 21, 0, tzinfo=UTC)  # 2024-04-01 00:00 in Vilnius
    assert not period_has_ended("2024-03", "month", "Europe/Vilnius", end - timedelta(seconds=1))
    assert period_has_ended("2024-03", "month", "Europe/Vilnius", end)
    assert not period_has_ended("2024-W13", "week", "Europe/Vilnius", end - timedelta(seconds=1))
