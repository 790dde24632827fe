"""parse_flag: one reading of yes/no settings that arrive as text."""

from __future__ import annotations

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.flags import parse_flag


@pytest.mark.parametrize("value", [True, 1, "true", "True", " YES ", "y", "on", "1"])
def test_true(value: object) -> None:
    assert parse_flag(value, "dry_run", "Plan") is True


@pytest.mark.parametrize("value", [False, 0, None, "false", "False", "no", "off", "", "None", "0"])
def test_false(value: object) -> None:
    assert parse_flag(value, "dry_run", "Plan") is False


def test_a_typo_is_an_error_naming_the_setting() -> None:
    with pytest.raises(OmnisendConfigError, match=r"Plan: dry_run must be true or false, got 'ture'"):
        parse_flag("ture", "dry_run", "Plan")
