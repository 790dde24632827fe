"""The first task of a store DAG: which period this run imports, and how.

``OmnisendExtractPartitionOperator`` (the store DAGs' ``extract``) resolves the run's partition and
options with :mod:`airflow_omnisend.run_partition` (the rules live there, free of Airflow), pushes them
for the later tasks, then extracts that period; ``OmnisendPartitionOperator`` does the resolving alone,
for DAGs that extract some other way. One task instead of two saves a task process (a DAG-file parse)
per run; the partition key has no retry boundary of its own to lose (resolving it is pure and is
repeated by a retry). A scheduled run fires at local midnight, when the period has just ended; the
safety check refuses events younger than ``min_event_age``, so the task first waits - deferred, in the
triggerer, holding no worker slot - until the period has been over that long.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_omnisend.events.partition import parse_period
from airflow_omnisend.events.timefmt import DEFAULT_MIN_EVENT_AGE
from airflow_omnisend.operators.base import DEFAULT_RETRY_POLICY, push_keys
from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
from airflow_omnisend.operators.safety import check_acknowledgement
from airflow_omnisend.run_partition import parse_run_options, resolve_partition

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import date

    from airflow.sdk import Context

__all__ = ["DEFAULT_MIN_EVENT_AGE", "OmnisendExtractPartitionOperator", "OmnisendPartitionOperator"]


class _RunPartitionTask(BaseOperator):
    """Resolve the run's partition and options, wait until it has settled, push them: what both
    operators below share (the store's ``store_id`` and ``timezone`` are their templated fields)."""

    store_id: str
    timezone: str

    def _set_run_partition(
        self,
        *,
        first_day: date | None,
        last_day: date | None,
        min_event_age: timedelta,
        period: str,
    ) -> None:
        self.first_day = first_day
        self.last_day = last_day
        self.min_event_age = min_event_age
        self.period = parse_period(period)

    def _resolve(self, context: Context) -> dict[str, Any]:
        dag_run = context["dag_run"]
        options = parse_run_options(dag_run.conf, context.get("params"), period=self.period)
        check_acknowledgement(options.acknowledge_automations, type(self).__name__)
        resolved = resolve_partition(
            dag_id=dag_run.dag_id,
            timezone=self.timezone,
            conf_partition=options.partition,
            partition_key=context.get("partition_key") or getattr(dag_run, "partition_key", None),
            data_interval_start=context.get("data_interval_start"),
            data_interval_end=context.get("data_interval_end"),
            run_type=getattr(dag_run, "run_type", None),
            first_day=self.first_day,
            last_day=self.last_day,
            period=self.period,
        )
        result = resolved.to_dict()
        result.update(
            store_id=self.store_id,
            dry_run=options.dry_run,
            acknowledge_automations=options.acknowledge_automations,
        )
        return result

    def _settled(self, context: Context) -> dict[str, Any]:
        """The resolved run, once its period ended ``min_event_age`` ago; before that, defer to
        ``execute_complete``."""
        result = self._resolve(context)
        settled = datetime.fromisoformat(result["end_utc"]) + self.min_event_age
        if settled > datetime.now(UTC):
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.log.info(
                "%s ended at %s; waiting until %s (min_event_age) before extracting",
                result["partition"],
                result["end_utc"],
                settled.isoformat(),
            )
            self.defer(trigger=DateTimeTrigger(moment=settled), method_name="execute_complete")
        return self._done(context, result)

    def _done(self, context: Context, result: dict[str, Any]) -> dict[str, Any]:
        push_keys(context, result)
        self._say_how_named(context, result)
        self.log.info(
            "%s: partition %s (%s, from the run's %s), dry_run=%s, acknowledge_automations=%s",
            self.store_id,
            result["partition"],
            result["timezone"],
            result["source"],
            result["dry_run"],
            "yes" if result["acknowledge_automations"] else "no",
        )
        return result

    def _say_how_named(self, context: Context, result: Mapping[str, Any]) -> None:
        """Log where a conf-named period stands against Airflow's partition key, the one way the UI
        shows a run's period (the run's note says it too: :mod:`airflow_omnisend.run_notes`)."""
        if result["source"] != "conf":
            return
        key = context.get("partition_key") or getattr(context["dag_run"], "partition_key", None)
        if key:
            self.log.info(
                "run conf partition %s agrees with the run's partition key %s (the conf key is an alias)",
                result["partition"],
                key,
            )
            return
        self.log.warning(
            "%s is named by the run conf 'partition' (the CLI's way: airflow dags test/trigger take no "
            "--partition-key); this run has no partition key, so the run's note names the %s. From the UI "
            "or the REST API, give it as the Partition Key (trigger form, Advanced Options; "
            '"partition_key") to show it as the run\'s partition key.',
            result["partition"],
            self.period.noun,
        )


class OmnisendPartitionOperator(_RunPartitionTask):
    """Resolve the run's partition and options (``airflow_omnisend.run_partition``) and return them.

    Returns (XCom) ``{"partition", "timezone", "start_utc", "end_utc", "source", "dry_run",
    "acknowledge_automations", "store_id"}``, and pushes each key as its own XCom. When the day ended
    less than ``min_event_age`` ago (a scheduled run at local midnight) it defers until then instead of
    letting the safety check refuse young events. ``period`` (``day``, ``week``, ``month``) is the
    store's: a partition key of another form is refused.
    """

    template_fields: Sequence[str] = ("store_id", "timezone")
    ui_color = "#f0f0f0"

    def __init__(
        self,
        *,
        store_id: str,
        timezone: str,
        first_day: date | None = None,
        last_day: date | None = None,
        min_event_age: timedelta = DEFAULT_MIN_EVENT_AGE,
        period: str = "day",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retry_policy", DEFAULT_RETRY_POLICY)
        super().__init__(**kwargs)
        self.store_id = store_id
        self.timezone = timezone
        self._set_run_partition(
            first_day=first_day, last_day=last_day, min_event_age=min_event_age, period=period
        )

    def execute(self, context: Context) -> dict[str, Any]:
        return self._settled(context)

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        return self._done(context, self._resolve(context))


class OmnisendExtractPartitionOperator(_RunPartitionTask, OmnisendExtractOrdersOperator):
    """:class:`OmnisendPartitionOperator`, then :class:`OmnisendExtractOrdersOperator` of the resolved
    period, in one task.

    Takes both operators' arguments but ``partition`` (the run names it). Pushes the run's keys
    (``partition``, ``dry_run``, ``acknowledge_automations``, ...) as XComs and returns the extract
    manifest.
    """

    def __init__(
        self,
        *,
        first_day: date | None = None,
        last_day: date | None = None,
        min_event_age: timedelta = DEFAULT_MIN_EVENT_AGE,
        period: str = "day",
        **kwargs: Any,
    ) -> None:
        super().__init__(partition="", **kwargs)  # set from the run when it executes
        self._set_run_partition(
            first_day=first_day, last_day=last_day, min_event_age=min_event_age, period=period
        )

    def execute(self, context: Context) -> dict[str, Any]:
        return self._extract(context, self._settled(context))

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        return self._extract(context, self._done(context, self._resolve(context)))

    def _extract(self, context: Context, run: Mapping[str, Any]) -> dict[str, Any]:
        self.partition = run["partition"]
        return super().execute(context)
