"""Canonical event times: strict parsing, one string per instant, and the memo of the hot path."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_omnisend.events.timefmt import (
    InstantCache,
    InstantError,
    canonical_or_raw,
    date_prefix,
    format_event_time,
    parse_event_time,
    parse_instant,
)

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
    assert len(cache) <= 4


# -- parse_event_time is format_event_time(parse_instant(v)) -------------------------------------------------

_digits = st.integers(min_value=0, max_value=999_999)
_offsets = st.one_of(
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+14:59", "-14:59", "+15:00", "+0200", "-05", ""]),
    st.builds(
        lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
        st.sampled_from("+-"),
        st.integers(min_value=0, max_value=16),
        st.integers(min_value=0, max_value=61),
    ),
)
_fractions = st.one_of(
    st.just(""),
    st.builds(lambda n, width: "." + f"{n:06d}"[:width], _digits, st.integers(min_value=1, max_value=7)),
    st.sampled_from([".000", ".000000", ".100", ".100000", ".1234567"]),
)
_text_times = st.builds(
    lambda y, mo, d, sep, h, mi, s, fraction, offset: (
        f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{fraction}{offset}"
    ),
    st.integers(min_value=0, max_value=9999),
    st.integers(min_value=0, max_value=13),
    st.integers(min_value=0, max_value=32),
    st.sampled_from(["T", " ", "t"]),
    st.integers(min_value=0, max_value=25),
    st.integers(min_value=0, max_value=61),
    st.integers(min_value=0, max_value=61),
    _fractions,
    _offsets,
)


@settings(max_examples=1000, deadline=None)
@given(value=st.one_of(_text_times, st.text(max_size=30)))
def test_parse_event_time_is_format_of_parse_instant(value: str) -> None:
    """The canonical-text shortcut of parse_event_time (a value already canonical is returned as it is)
    gives what formatting the parsed instant gives, and an invalid value fails with the same message."""
    instant = _instant_or_message(value)
    if isinstance(instant, str):
        with pytest.raises(InstantError) as info:
            parse_event_time(value)
        assert str(info.value) == instant
    else:
        assert parse_event_time(value) == (instant, format_event_time(instant))


def _instant_or_message(value: object) -> datetime | str:
    try:
        return parse_instant(value)
    except InstantError as exc:
        return str(exc)


@settings(max_examples=500, deadline=None)
@given(values=st.lists(st.one_of(_text_times, st.none(), st.integers()), max_size=12))
def test_instant_cache_is_parse_event_time_in_utc(values: list[object]) -> None:
    cache = InstantCache(limit=5)
    for value in values * 2:
        found = cache.lookup(value)
        try:
            instant, canonical = parse_event_time(value)
        except InstantError:
            assert found is None
            continue
        assert found == (instant, canonical)
        assert found[0].tzinfo is UTC
        assert cache.instant(value) == instant
        assert cache.canonical(value) == canonical
