"""Which partition (store-local period) a DAG run processes, and the run's options, from what Airflow gives.

A partition is one day, ISO week or month (the store's ``period``, :class:`PartitionPeriod`); its key
is ``YYYY-MM-DD``, ``YYYY-Www`` or ``YYYY-MM``, and a key of another form is refused with the store's.

No Airflow import: the DAG's first task passes in what it read from the task context, so the rules are
unit-testable on their own.

Rules, first match wins:

1. ``partition`` in the run conf (``-c '{"partition": "2024-03-10"}'``: the CLI's way, and a week
   store's form field; elsewhere the UI and REST give the period as the partition key). Any run type.
   When the run also has a partition of its own (a partition key, a backfill or scheduled run) the two
   must agree: a backfill started with a ``partition`` in ``--dag-run-conf`` would otherwise process one
   day N times.
2. The run's ``partition_key`` (``CronPartitionTimetable``: scheduled and backfill runs), in the
   period's form.
3. The run's data interval (a DAG built on ``CronDataIntervalTimetable("0 0 * * *", timezone=<store tz>)``),
   for scheduled and backfill runs only. It must be exactly one store-local day. A *manual* run's data
   interval is not used: Airflow infers it as the last whole interval before the logical date, so
   ``airflow dags test DAG 2024-03-31`` would process 2024-03-30 in Vilnius - a silent off-by-one.
4. Otherwise the run is refused, saying how to name the partition (``dags test`` without conf, runs
   triggered through the API or ``airflow dags trigger`` without a logical date: their context has no
   ``ds`` or data interval at all).

Then: a day outside the store's ``start_date``..``end_date`` is refused (the stores file is the record of
what is imported), and so is a day that has not ended in the store's timezone (its events are not all
there yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final

from airflow_omnisend.events.partition import (
    PartitionPeriod,
    PartitionWindow,
    load_timezone,
    parse_partition_key,
    parse_period,
)
from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "CONF_KEYS",
    "RunOptions",
    "RunPartition",
    "parse_run_options",
    "resolve_partition",
]

#: what a run's conf may hold (anything else is refused: a typo like ``dry_rn`` must not send for real)
CONF_KEYS: Final = ("partition", "dry_run", "acknowledge_automations")
#: run types whose own partition (key or data interval) names the day
PERIODIC_RUN_TYPES: Final = frozenset({"scheduled", "backfill"})
HOW_TO_NAME: Final = (
    "name the {noun}: trigger the run with the Partition Key {form} (UI trigger form, Advanced Options; "
    'REST "partition_key"), or in the run conf: airflow dags test {dag_id} -c \'{{"partition": "{form}"}}\' '
    '(or airflow dags trigger {dag_id} -c ...; or the "partition" field of a week store\'s UI trigger form)'
)


@dataclass(frozen=True)
class RunOptions:
    """The run conf's options, validated (see :data:`CONF_KEYS`)."""

    partition: str | None = None
    dry_run: bool = False
    acknowledge_automations: str | None = None


def _strict_key(value: object, what: str, period: PartitionPeriod = PartitionPeriod.DAY) -> date:
    """A period named in text (conf or partition key): the period rule, without accepting ``date`` objects."""
    if not isinstance(value, str):
        raise OmnisendConfigError(
            f"{what} {value!r} is not {period.a_noun} in the form {period.form} (e.g. {period.example})"
        )
    return parse_partition_key(value, period, what=what)


def parse_run_options(
    conf: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None = None,
    *,
    extra_keys: Sequence[str] = (),
    period: PartitionPeriod | str = PartitionPeriod.DAY,
) -> RunOptions:
    """The options of a run from its conf (and the DAG params, which the conf overrides).

    Unknown conf keys (not in :data:`CONF_KEYS` or ``extra_keys``) are refused, ``dry_run`` must be a
    boolean, ``acknowledge_automations`` a reason in words (non-blank text) or null; ``partition`` a key
    of the store's ``period``.
    """
    period = parse_period(period)
    conf = dict(conf or {})
    allowed = (*CONF_KEYS, *extra_keys)
    unknown = sorted(str(k) for k in conf if k not in allowed)
    if unknown:
        raise OmnisendConfigError(
            f"run conf has unknown key(s) {unknown}; allowed: {', '.join(allowed)} (nothing was run, so a "
            "typo cannot turn a dry run into a real one)"
        )
    merged = {k: v for k, v in (params or {}).items() if k in CONF_KEYS}
    merged.update(conf)
    partition = merged.get("partition")
    if isinstance(partition, str) and not partition.strip():
        partition = None  # the UI form's empty field
    if partition is not None:
        partition = period.label(_strict_key(partition, "run conf partition", period))
    dry_run = merged.get("dry_run", False)
    if dry_run is None:
        dry_run = False
    if not isinstance(dry_run, bool):
        raise OmnisendConfigError(f"run conf dry_run must be true or false (JSON boolean), got {dry_run!r}")
    reason = merged.get("acknowledge_automations")
    if reason is not None:
        if not isinstance(reason, str) or not reason.strip():
            raise OmnisendConfigError(
                "run conf acknowledge_automations must be the reason, in words, why enabled automations "
                f"may see these events (e.g. 'flows paused by Ana until 10:00'), got {reason!r}"
            )
        reason = reason.strip()
    return RunOptions(partition=partition, dry_run=dry_run, acknowledge_automations=reason)


@dataclass(frozen=True)
class RunPartition:
    """The period a run processes: its window in UTC and where the period came from."""

    window: PartitionWindow
    source: str  # "conf" | "partition_key" | "data_interval"

    @property
    def day(self) -> str:
        return self.window.label

    @property
    def ended_at(self) -> datetime:
        return self.window.end_utc

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.day,
            "timezone": self.window.timezone,
            "start_utc": self.window.start_utc.isoformat(),
            "end_utc": self.window.end_utc.isoformat(),
            "source": self.source,
        }


def _window_of_interval(
    start: datetime, end: datetime, timezone: str, period: PartitionPeriod = PartitionPeriod.DAY
) -> PartitionWindow:
    tz = load_timezone(timezone)
    local_start = start.astimezone(tz)
    window = PartitionWindow.for_period(local_start.date(), period, timezone)
    if local_start.time() != time(0) or window.start_utc != start or window.end_utc != end.astimezone(UTC):
        noun = "calendar day" if period is PartitionPeriod.DAY else period.noun
        raise OmnisendConfigError(
            f"the run's data interval [{start.isoformat()}, {end.isoformat()}) is not one {noun} in "
            f"{timezone} ({window}); build the DAG with CronPartitionTimetable('{period.cron}', timezone="
            f"'{timezone}', run_offset=-1, key_format='{period.key_format}') or CronDataIntervalTimetable("
            f"'{period.cron}', timezone='{timezone}')"
        )
    return window


def _run_type_name(run_type: object) -> str:
    value = getattr(run_type, "value", run_type)
    return str(value).lower() if value is not None else ""


def resolve_partition(
    *,
    dag_id: str,
    timezone: str,
    conf_partition: str | None,
    partition_key: str | None = None,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
    run_type: object = None,
    now: datetime | None = None,
    first_day: date | None = None,
    last_day: date | None = None,
    period: PartitionPeriod | str = PartitionPeriod.DAY,
) -> RunPartition:
    """Apply the module's rules; :class:`OmnisendConfigError` says what is wrong and how to fix it."""
    period = parse_period(period)
    periodic = _run_type_name(run_type) in PERIODIC_RUN_TYPES
    own: RunPartition | None = None
    if partition_key:
        own = RunPartition(
            PartitionWindow.for_period(
                _strict_key(partition_key, "the run's partition_key", period), period, timezone
            ),
            "partition_key",
        )
    elif periodic and data_interval_start is not None and data_interval_end is not None:
        own = RunPartition(
            _window_of_interval(data_interval_start, data_interval_end, timezone, period), "data_interval"
        )

    if conf_partition is not None:
        chosen = RunPartition(
            PartitionWindow.for_period(
                _strict_key(conf_partition, "run conf partition", period), period, timezone
            ),
            "conf",
        )
        if own is not None and own.day != chosen.day:
            raise OmnisendConfigError(
                f"run conf partition {chosen.day} differs from this run's own partition {own.day} (from its "
                f"{own.source}); drop 'partition' from the conf of backfill and scheduled runs, or trigger a "
                f"manual run to process another {period.noun}"
            )
    elif own is not None:
        chosen = own
    else:
        why = (
            "its timetable gave neither a partition key nor a data interval"
            if periodic
            else "a manual run's logical date is not used: Airflow maps it to the last whole interval before "
            "it, an off-by-one waiting to happen"
        )
        raise OmnisendConfigError(
            f"{dag_id}: this run does not name the {period.noun} to process: no 'partition' in its conf "
            f"and no partition of its own ({why}); "
            + HOW_TO_NAME.format(dag_id=dag_id, noun=period.noun, form=period.form)
        )
    return _in_range_and_ended(dag_id, chosen, first_day, last_day, now)


def _in_range_and_ended(
    dag_id: str, chosen: RunPartition, first_day: date | None, last_day: date | None, now: datetime | None
) -> RunPartition:
    """``chosen``, unless it reaches outside the store's dates or has not ended yet."""
    window, day, timezone = chosen.window, chosen.day, chosen.window.timezone
    if first_day is not None and window.day < first_day:
        raise OmnisendConfigError(
            f"{dag_id}: partition {day} is before the store's start_date {first_day}; move start_date in the "
            "stores file to import it"
        )
    if last_day is not None and window.last_day > last_day:
        raise OmnisendConfigError(
            f"{dag_id}: partition {day} is after the store's end_date {last_day}; move or drop end_date in "
            "the stores file to import it"
        )
    moment = now if now is not None else datetime.now(UTC)
    if moment.utcoffset() is None:
        raise OmnisendConfigError(f"now must be timezone-aware, got {moment!r}")
    if chosen.ended_at > moment:
        left = chosen.ended_at - moment
        raise OmnisendConfigError(
            f"{dag_id}: partition {day} has not ended in {timezone} (it ends at "
            f"{chosen.ended_at.astimezone(load_timezone(timezone)).isoformat()}, in "
            f"{_duration(left)}); nothing is sent for {window.period.a_noun} that has not ended - run it "
            "afterwards"
        )
    return chosen


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
