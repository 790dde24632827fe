"""Canonical event times: strict parsing, the events contract's wider forms, one string per instant, and
the memo of the hot path."""

from __future__ import annotations

import contextlib
import re
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
    read_event_time,
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


# -- read_event_time: every form of the events contract, one canonical string per instant ----------------


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("2021-07-01 00:00:00+02:00", "2021-06-30T22:00:00Z"),  # the 2026-03-15 contract's example
        ("2021-07-01T00:00:00Z", "2021-07-01T00:00:00Z"),
        ("2021-07-01t00:00:00z", "2021-07-01T00:00:00Z"),
        ("2021-07-01T02:00:00+0200", "2021-07-01T00:00:00Z"),
        ("2021-06-30T19:00:00-05", "2021-07-01T00:00:00Z"),
        ("2021-07-01T00:00:00-00:00", "2021-07-01T00:00:00Z"),
        ("2021-07-01T00:00:00.1234567Z", "2021-07-01T00:00:00.123456Z"),
        ("2021-07-01T00:00:00.123456999Z", "2021-07-01T00:00:00.123456Z"),  # truncated, never rounded
        ("2021-07-01T23:59:59.9999999Z", "2021-07-01T23:59:59.999999Z"),  # so the day stays the day
        ("2021-07-01T00:00:00.120000000+00:00", "2021-07-01T00:00:00.120Z"),
        ("2021-07-01T00:00:00.000000000000Z", "2021-07-01T00:00:00Z"),
    ],
)
def test_read_event_time_accepts_the_contract_forms(value: str, canonical: str) -> None:
    instant, text = read_event_time(value)
    assert text == canonical
    assert format_event_time(instant) == canonical


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2021-07-01 00:00:00", "has no UTC offset"),
        ("2021-07-01T00:00:00.5", "has no UTC offset"),
        ("2021-07-01", "ISO 8601"),
        ("2021-07-01T00:00Z", "ISO 8601"),
        ("20210701T000000Z", "ISO 8601"),
        ("2021-W26-4T00:00:00Z", "ISO 8601"),
        ("2021-07-01T00:00:00+020", "ISO 8601"),
        ("2021-07-01T00:00:00.Z", "ISO 8601"),
        ("2021-07-01T00:00:00 Z", "ISO 8601"),
        ("2021-07-01T00:00:00+15", "offset outside ±14:59"),
        ("2021-07-01T00:00:00+0160", "offset outside ±14:59"),
        ("2021-07-01T00:00:60Z", "not a real time"),
        ("2021-02-29 00:00:00+02", "not a real time"),
        ("0001-01-01 00:00:00+0500", "out of range"),
    ],
)
def test_read_event_time_refuses_the_rest_with_a_reason(value: str, message: str) -> None:
    with pytest.raises(InstantError, match=message) as info:
        read_event_time(value)
    assert repr(value) in str(info.value)  # the message names the value as written


def test_read_event_time_is_parse_event_time_on_the_shop_rule_forms() -> None:
    for value in ("2024-03-10T04:59:59.5+02:00", "2024-03-10 04:59:59Z", "2024-03-10T04:59:59.000z"):
        assert read_event_time(value) == parse_event_time(value)


def _forms(instant: datetime, offset_minutes: int, data: st.DataObject) -> str:
    """One of the contract's spellings of ``instant`` at ``offset_minutes``."""
    local = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    sep = data.draw(st.sampled_from(["T", "t", " "]))
    micro = f"{local.microsecond:06d}"
    fraction = data.draw(
        st.sampled_from(
            ["." + micro + "0" * extra for extra in range(4)] + ([""] if micro == "000000" else [])
        )
    )
    if fraction and micro.endswith("000"):
        fraction = data.draw(st.sampled_from([fraction, "." + micro[:3]]))
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    choices = [f"{sign}{hours:02d}:{minutes:02d}", f"{sign}{hours:02d}{minutes:02d}"]
    if minutes == 0:
        choices.append(f"{sign}{hours:02d}")
    if offset_minutes == 0:
        choices += ["Z", "z", "-00:00"]
    offset = data.draw(st.sampled_from(choices))
    return local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + fraction + offset


@settings(max_examples=500, deadline=None)
@given(
    instant=st.datetimes(
        min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-14 * 60 - 59, max_value=14 * 60 + 59),
    data=st.data(),
)
def test_every_accepted_form_of_an_instant_gives_the_canonical_string(
    instant: datetime, offset_minutes: int, data: st.DataObject
) -> None:
    """Any spelling the contract accepts of one instant gives the string of its canonical form, and that
    string is a fixed point (normalising twice changes nothing)."""
    canonical = format_event_time(instant)
    written = _forms(instant, offset_minutes, data)
    found, text = read_event_time(written)
    assert (found, text) == (instant, canonical)
    assert read_event_time(canonical) == (instant, canonical)
    assert read_event_time(text)[1] == text


@settings(max_examples=500, deadline=None)
@given(
    instant=st.datetimes(
        min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    nanos=st.integers(min_value=0, max_value=999),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_digits_beyond_the_microsecond_are_truncated(
    instant: datetime, nanos: int, offset_minutes: int
) -> None:
    local = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    offset = local.isoformat()[-6:]  # ±HH:MM
    written = local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond:06d}{nanos:03d}{offset}"
    assert read_event_time(written) == (instant, format_event_time(instant))


@settings(max_examples=1000, deadline=None)
@given(value=st.one_of(_text_times, st.text(max_size=30)))
def test_read_event_time_is_idempotent_and_wider_than_the_shop_rule(value: str) -> None:
    """Whatever the shop rule reads, read_event_time reads the same; whatever it reads is canonical
    afterwards; what it refuses, it refuses with a message naming the value."""
    try:
        instant, text = read_event_time(value)
    except InstantError:
        with pytest.raises(InstantError, match=re.escape(repr(value))):
            read_event_time(value)
        with pytest.raises(InstantError):
            parse_instant(value)
        return
    assert read_event_time(text) == (instant, text)  # equal instants, whatever the offset
    assert parse_event_time(text) == read_event_time(text)
    if (shop := _instant_or_message(value)) and not isinstance(shop, str):
        assert (shop, format_event_time(shop)) == (instant, text)
