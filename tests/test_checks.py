"""check_int: a whole number in a range, named in the message; short_repr keeps messages short."""

from __future__ import annotations

import pytest

from airflow_omnisend.checks import check_int, short_repr
from airflow_omnisend.exceptions import OmnisendConfigError


def test_in_range_values_pass() -> None:
    assert check_int("retries", 0, minimum=0, maximum=10, fix="e.g. 3") == 0
    assert check_int("retries", 10, minimum=0, maximum=10, fix="e.g. 3") == 10
    assert check_int("bodies", 10**30, minimum=0, fix="any count") == 10**30


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (11, ["retries must be from 0 to 10", "got 11", "e.g. 3"]),
        (10**20, ["retries must be from 0 to 10", "got 100000000000000000000"]),
        (-1, ["from 0 to 10", "got -1"]),
        (1e20, ["whole number", "got 1e+20", "range: from 0 to 10"]),
        ("3", ["whole number", "got '3'"]),
        (True, ["whole number", "got True"]),
    ],
)
def test_out_of_range_or_not_whole_names_field_and_range(value: object, words: list[str]) -> None:
    with pytest.raises(OmnisendConfigError) as caught:
        check_int("retries", value, minimum=0, maximum=10, fix="e.g. 3")
    for word in words:
        assert word in str(caught.value)


def test_a_huge_value_makes_a_short_message() -> None:
    with pytest.raises(OmnisendConfigError) as caught:
        check_int("retries", 10**5000, minimum=0, maximum=10, fix="e.g. 3")
    assert len(str(caught.value)) < 200
    assert "digits" in str(caught.value)
    assert len(short_repr("x" * 10_000)) == 80
    assert short_repr([1, 2]) == "[1, 2]"
