"""Which day a run processes: conf, partition key, data interval (Vilnius and New York, DST days),
unended days, runs that name no day; the run options (the partition task itself:
tests/operators/test_partition_operator.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.run_partition import RunOptions, parse_run_options, resolve_partition

VILNIUS = "Europe/Vilnius"
NEW_YORK = "America/New_York"
LATER = datetime(2030, 1, 1, tzinfo=UTC)


def local(day: str, tz: str) -> datetime:
    """Local midnight of ``day`` in ``tz``, as UTC."""
    return datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def resolve(tz: str = VILNIUS, **kwargs: Any) -> Any:
    kwargs.setdefault("conf_partition", None)
    kwargs.setdefault("now", LATER)
    return resolve_partition(dag_id="omnisend_orders__demo", timezone=tz, **kwargs)


# -- conf ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_type", ["manual", "scheduled", "backfill", None])
def test_conf_partition_for_any_run_type(run_type: str | None) -> None:
    resolved = resolve(conf_partition="2024-03-10", run_type=run_type)
    assert resolved.day == "2024-03-10"
    assert resolved.source == "conf"
    assert resolved.window.start_utc == datetime(2024, 3, 9, 22, tzinfo=UTC)
    assert resolved.window.end_utc == datetime(2024, 3, 10, 22, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["2024-3-10", "20240310", "2024-03-10T00:00:00", "2024-02-30", "yesterday"])
def test_conf_partition_must_be_a_plain_day(bad: str) -> None:
    with pytest.raises(OmnisendConfigError, match="run conf partition"):
        resolve(conf_partition=bad)


def test_conf_must_agree_with_the_runs_own_partition() -> None:
    assert resolve(conf_partition="2024-03-10", partition_key="2024-03-10").day == "2024-03-10"
    with pytest.raises(OmnisendConfigError, match=r"differs from this run's own partition 2024-03-11"):
        resolve(conf_partition="2024-03-10", partition_key="2024-03-11", run_type="backfill")
    with pytest.raises(OmnisendConfigError, match="from its data_interval"):
        resolve(
            conf_partition="2024-03-10",
            data_interval_start=local("2024-03-11", VILNIUS),
            data_interval_end=local("2024-03-12", VILNIUS),
            run_type="scheduled",
        )


# -- partition key (CronPartitionTimetable) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "key", "hours"),
    [
        (VILNIUS, "2024-03-31", 23),
        (VILNIUS, "2024-10-27", 25),
        (NEW_YORK, "2024-03-10", 23),
        (NEW_YORK, "2024-11-03", 25),
        (NEW_YORK, "2024-06-01", 24),
    ],
)
def test_partition_key_names_the_local_day(tz: str, key: str, hours: int) -> None:
    resolved = resolve(tz, partition_key=key, run_type="backfill")
    assert (resolved.day, resolved.source) == (key, "partition_key")
    assert resolved.window.start_utc == local(key, tz)
    assert resolved.window.duration == timedelta(hours=hours)


def test_bad_partition_key() -> None:
    with pytest.raises(OmnisendConfigError, match="partition_key '2024-03-10T00:00:00'"):
        resolve(partition_key="2024-03-10T00:00:00", run_type="scheduled")


# -- data interval (CronDataIntervalTimetable) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "next_day", "hours"),
    [
        (VILNIUS, "2024-03-30", "2024-03-31", 24),
        (VILNIUS, "2024-03-31", "2024-04-01", 23),
        (VILNIUS, "2024-10-27", "2024-10-28", 25),
        (NEW_YORK, "2024-03-10", "2024-03-11", 23),
        (NEW_YORK, "2024-11-03", "2024-11-04", 25),
        (NEW_YORK, "2024-11-04", "2024-11-05", 24),
    ],
)
@pytest.mark.parametrize("run_type", ["scheduled", "backfill"])
def test_data_interval_in_the_store_timezone(
    tz: str, day: str, next_day: str, hours: int, run_type: str
) -> None:
    start, end = local(day, tz), local(next_day, tz)
    assert end - start == timedelta(hours=hours)
    resolved = resolve(tz, data_interval_start=start, data_interval_end=end, run_type=run_type)
    assert (resolved.day, resolved.source) == (day, "data_interval")
    # pendulum's run-type enum works as well as the plain value
    enum_like = SimpleNamespace(value=run_type.upper())
    assert resolve(tz, data_interval_start=start, data_interval_end=end, run_type=enum_like).day == day


def test_data_interval_that_is_not_one_local_day() -> None:
    utc_day = (datetime(2024, 3, 10, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC))
    with pytest.raises(
        OmnisendConfigError, match=r"not one calendar day in Europe/Vilnius.*CronPartitionTimetable"
    ):
        resolve(data_interval_start=utc_day[0], data_interval_end=utc_day[1], run_type="scheduled")
    two_days = (local("2024-03-10", VILNIUS), local("2024-03-12", VILNIUS))
    with pytest.raises(OmnisendConfigError, match="not one calendar day"):
        resolve(data_interval_start=two_days[0], data_interval_end=two_days[1], run_type="backfill")


def test_manual_runs_data_interval_is_not_used() -> None:
    """``dags test DAG 2024-03-31`` gets the interval of 2024-03-30 in Vilnius: never guess from it."""
    with pytest.raises(OmnisendConfigError) as info:
        resolve(
            data_interval_start=local("2024-03-30", VILNIUS),
            data_interval_end=local("2024-03-31", VILNIUS),
            run_type="manual",
        )
    text = str(info.value)
    assert "manual run's logical date is not used" in text
    assert """airflow dags test omnisend_orders__demo -c '{"partition": "YYYY-MM-DD"}'""" in text


# -- runs that name no day -----------------------------------------------------------------------------------


@pytest.mark.parametrize("run_type", ["manual", "scheduled", "asset_triggered", None])
def test_no_conf_no_key_no_interval_says_how_to_name_the_day(run_type: str | None) -> None:
    with pytest.raises(OmnisendConfigError) as info:
        resolve(run_type=run_type)
    text = str(info.value)
    assert "does not name the day to process" in text
    assert '-c \'{"partition": "YYYY-MM-DD"}\'' in text
    assert "Partition Key YYYY-MM-DD (UI trigger form, Advanced Options" in text


# -- unended days and the store's range ----------------------------------------------------------------------


@pytest.mark.parametrize("tz", [VILNIUS, NEW_YORK])
def test_day_that_has_not_ended_is_refused(tz: str) -> None:
    end = local("2024-03-11", tz)
    refused = rf"2024-03-10 has not ended in {tz} \(it ends at .*, in 1m\)"
    with pytest.raises(OmnisendConfigError, match=refused):
        resolve(tz, conf_partition="2024-03-10", now=end - timedelta(minutes=1))
    with pytest.raises(OmnisendConfigError, match="has not ended"):
        resolve(tz, partition_key="2024-03-10", run_type="scheduled", now=end - timedelta(hours=30))
    assert resolve(tz, conf_partition="2024-03-10", now=end).day == "2024-03-10"


def test_today_is_refused_by_default_clock() -> None:
    today = datetime.now(UTC).astimezone(ZoneInfo(NEW_YORK)).date().isoformat()
    with pytest.raises(OmnisendConfigError, match="has not ended"):
        resolve_partition(dag_id="d", timezone=NEW_YORK, conf_partition=today)


def test_naive_now_is_refused() -> None:
    with pytest.raises(OmnisendConfigError, match="timezone-aware"):
        resolve(conf_partition="2024-03-10", now=datetime(2030, 1, 1))


def test_days_outside_the_stores_range() -> None:
    bounds = {"first_day": date(2024, 3, 4), "last_day": date(2024, 3, 31)}
    assert resolve(conf_partition="2024-03-04", **bounds).day == "2024-03-04"
    assert resolve(conf_partition="2024-03-31", **bounds).day == "2024-03-31"
    with pytest.raises(OmnisendConfigError, match="before the store's start_date 2024-03-04"):
        resolve(conf_partition="2024-03-03", **bounds)
    with pytest.raises(OmnisendConfigError, match="after the store's end_date 2024-03-31"):
        resolve(partition_key="2024-04-01", run_type="scheduled", **bounds)


# -- run options ---------------------------------------------------------------------------------------------


def test_options_default_and_from_params() -> None:
    assert parse_run_options(None) == RunOptions()
    params = {"partition": None, "dry_run": False, "acknowledge_automations": None}
    assert parse_run_options({}, params) == RunOptions()
    conf = {"partition": "2024-03-10", "dry_run": True, "acknowledge_automations": "  flows paused by Ana  "}
    assert parse_run_options(conf, params) == RunOptions("2024-03-10", True, "flows paused by Ana")
    # the UI form's empty field is "no partition"
    assert parse_run_options({"partition": ""}, params).partition is None


def test_unknown_conf_key_is_refused_before_anything_runs() -> None:
    with pytest.raises(
        OmnisendConfigError, match=r"unknown key\(s\) \['dry_rn'\]; allowed: partition, dry_run"
    ):
        parse_run_options({"dry_rn": True})
    assert parse_run_options({"path": "/x"}, extra_keys=("path",)) == RunOptions()


@pytest.mark.parametrize("value", ["true", 1, "yes"])
def test_dry_run_must_be_a_boolean(value: object) -> None:
    with pytest.raises(OmnisendConfigError, match="dry_run must be true or false"):
        parse_run_options({"dry_run": value})


@pytest.mark.parametrize("value", ["", "   ", 1, True])
def test_acknowledgement_must_be_words(value: object) -> None:
    with pytest.raises(OmnisendConfigError, match="acknowledge_automations must be the reason"):
        parse_run_options({"acknowledge_automations": value})


# -- weeks and months ---------------------------------------------------------------------------------------


def test_a_month_store_takes_a_month_from_the_conf() -> None:
    options = parse_run_options({"partition": "2024-03"}, period="month")
    assert options.partition == "2024-03"
    run = resolve(conf_partition=options.partition, period="month")
    assert run.day == "2024-03"
    assert run.to_dict()["start_utc"] == "2024-02-29T22:00:00+00:00"
    assert run.to_dict()["end_utc"] == "2024-03-31T21:00:00+00:00"


@pytest.mark.parametrize(
    ("period", "bad", "form"),
    [
        ("month", "2024-03-04", "YYYY-MM"),
        ("month", "2024-13", "YYYY-MM"),
        ("week", "2024-W54", "YYYY-Www"),
        ("day", "2024-03", "YYYY-MM-DD"),
        ("week", "2024-03", "YYYY-Www"),
    ],
)
def test_a_key_of_another_period_is_refused_with_the_stores_form(period: str, bad: str, form: str) -> None:
    with pytest.raises(OmnisendConfigError, match=f"form {form} ") as err:
        parse_run_options({"partition": bad}, period=period)
    assert "run conf partition" in str(err.value)
    with pytest.raises(OmnisendConfigError, match=f"form {form} "):
        resolve(conf_partition=None, partition_key=bad, run_type="backfill", period=period)


def test_a_backfill_week_key_and_the_period_bounds() -> None:
    run = resolve(
        conf_partition=None, partition_key="2020-W53", run_type="backfill", tz=NEW_YORK, period="week"
    )
    assert (run.day, run.source) == ("2020-W53", "partition_key")
    assert run.window.last_day == date(2021, 1, 3)


def test_a_month_that_has_not_ended_is_refused() -> None:
    with pytest.raises(OmnisendConfigError, match="nothing is sent for a month that has not ended"):
        resolve_partition(
            dag_id="d",
            timezone=VILNIUS,
            conf_partition="2024-03",
            period="month",
            now=datetime(2024, 3, 31, 20, 59, tzinfo=UTC),
        )
    ended = resolve_partition(
        dag_id="d",
        timezone=VILNIUS,
        conf_partition="2024-03",
        period="month",
        now=datetime(2024, 3, 31, 21, 0, tzinfo=UTC),
    )
    assert ended.day == "2024-03"


def test_a_month_must_lie_inside_the_stores_dates() -> None:
    with pytest.raises(OmnisendConfigError, match="after the store's end_date"):
        resolve(conf_partition="2024-03", period="month", last_day=date(2024, 3, 30))
    assert (
        resolve(
            conf_partition="2024-03", period="month", first_day=date(2024, 3, 1), last_day=date(2024, 3, 31)
        ).day
        == "2024-03"
    )


def test_a_month_run_without_a_partition_says_how_to_name_the_month() -> None:
    with pytest.raises(
        OmnisendConfigError, match=r'name the month: .*Partition Key YYYY-MM .*in the run conf: .*"YYYY-MM"'
    ):
        resolve(conf_partition=None, period="month")


def test_a_monthly_data_interval_is_one_month() -> None:
    tz = ZoneInfo(VILNIUS)
    run = resolve(
        conf_partition=None,
        run_type="scheduled",
        period="month",
        data_interval_start=datetime(2024, 3, 1, tzinfo=tz),
        data_interval_end=datetime(2024, 4, 1, tzinfo=tz),
    )
    assert run.day == "2024-03"
