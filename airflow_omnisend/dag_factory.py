"""Build the per-store backfill DAGs (and the import-file DAG) from the stores file.

Use it from any dags folder::

    # dags/omnisend_orders.py
    from pathlib import Path

    from airflow_omnisend.dag_factory import build_store_dags

    globals().update(build_store_dags(default_stores_path=Path(__file__).with_name("stores.yaml")))

One DAG per store, ``omnisend_orders__<store_id>``::

    partition -> extract -> [select_events] -> validate -> automation_safety_check -> plan
        -> send (mapped, one task per shard) -> report

``select_events`` only exists when the store imports a subset of the five event names. The tasks that
call Omnisend (``automation_safety_check``, ``send``) run in the pool ``omnisend_<store_id>`` (``pool`` in
the stores file), so parallel runs of one brand share its rate budget; create it with
``airflow pools set omnisend_<store_id> 4 "Omnisend <store_id>"`` (``airflow dags test`` does not need it:
it runs tasks in-process, without pool slots). Each task retries ``retries`` times after
``retry_delay_seconds`` (stores file), and ``OmnisendRetryPolicy`` ends retries at once where another
attempt cannot help (configuration, auth, automation risk, ...). ``report`` runs with ``none_failed``:
after a dry run's skipped send, never after a failed one.

Timetable: ``CronPartitionTimetable`` (why, and what was tried)
----------------------------------------------------------------
A run processes one store-local calendar day. Two 3.3 timetables can express "daily, in the store's
timezone"; both were run for real (Airflow 3.3.2, scheduler + LocalExecutor, backfills and ``dags test``
in Europe/Vilnius and America/New_York, over the DST changes of 2024-03-31 and 2024-11-03):

* ``CronPartitionTimetable("0 0 * * *", timezone=<store tz>, run_offset=-1, key_format="%Y-%m-%d")``
  gives each run a ``partition_key`` that *is* the day. ``airflow backfill create --from-date 2024-03-30
  --to-date 2024-04-01`` reads the dates as store-local days (the help says so: "for partitioned Dags,
  this range is interpreted as the partition-date range") and created exactly 2024-03-30, 2024-03-31
  (the 23-hour day) and 2024-04-01 in Vilnius, and 2024-11-02, 2024-11-03 (25 hours), 2024-11-04 in New
  York. A scheduled run fires at local midnight with the day that just ended (run at
  2026-11-26T22:00Z -> key 2026-11-26 in Vilnius; at 2026-11-26T05:00Z -> 2026-11-25 in New York).
  ``--reprocess-behavior failed`` re-ran only the failed key. The key is in the run id
  (``backfill__2024-03-10T22:00:00+00:00__2024-03-11__<random>``), so the UI lists runs by day.
* ``CronDataIntervalTimetable("0 0 * * *", timezone=<store tz>)`` gives correct local-day data
  intervals (23 and 25 hours on DST days), but the backfill CLI reads naive dates as UTC midnights, so
  the same command *silently dropped a day*: Vilnius (UTC+2/+3) lost the first requested day (ran
  03-31 and 04-01 only), New York (UTC-4/-5) the last (ran 11-02 and 11-03 only). Typing offsets
  (``--from-date 2024-03-30T00:00:00+02:00``) works, but nobody will, and the offset changes with DST.

So the factory uses ``CronPartitionTimetable``. The cost: partitioned runs have no ``logical_date``,
``ds`` or data interval in their context (templates must not use ``{{ ds }}``; these DAGs pass the day
from the ``partition`` task instead), and ``airflow dags test`` gets no partition key with either
timetable (with a data interval it gets "the last whole interval before the date": ``dags test DAG
2024-03-31`` would process 2024-03-30 in Vilnius). Hence a manual run names its day in the conf:
``airflow dags test omnisend_orders__demo -c '{"partition": "2024-03-10"}'``. The ``partition`` task
still accepts a scheduled/backfill data interval (one whole local day), so a DAG built with
``timetable=CronDataIntervalTimetable(...)`` works too. See ``airflow_omnisend.run_partition`` for the
rules.

Scheduled runs fire at local midnight, when the day has just ended; the safety check refuses events
younger than ``min_event_age`` (1 hour), so the ``partition`` task waits - deferred, in the triggerer,
holding no worker slot - until the day has been over for that long. Days further back never wait.
``catchup`` is off: unpausing a DAG creates one scheduled run, for yesterday; history is imported with
``airflow backfill create`` (set ``end_date`` in the stores file for a store that should get no daily
runs). Backfills do not clamp to the DAG's dates, so the ``partition`` task refuses days outside the
store's ``start_date``..``end_date`` itself.

Broken stores-file entries
--------------------------
Airflow records import errors per file, and keeps the other DAGs of a file when one DAG fails
``validate()``. A bad entry therefore becomes a placeholder DAG (its own DAG id, or
``omnisend_orders__entry_<n>`` when the id itself is unusable) whose ``validate()`` raises
``OmnisendConfigError`` naming the store, the field and the fix - and, as only one import error per file
survives, every other bad entry too. The good stores' DAGs load as usual.

Parsing stays cheap: the only I/O at parse time is reading the stores file; connections, pools,
staging and the source are touched only when tasks run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

import orjson
from airflow.sdk import DAG, BaseOperator, Param
from airflow.sdk.definitions.timetables.trigger import CronPartitionTimetable

from airflow_omnisend.events.mapping import EVENT_NAMES
from airflow_omnisend.events.partition import load_timezone
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
from airflow_omnisend.operators.report import OmnisendReportOperator
from airflow_omnisend.operators.retry import OmnisendRetryPolicy
from airflow_omnisend.operators.safety import OmnisendAutomationSafetyOperator, check_acknowledgement
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
from airflow_omnisend.operators.validate import OmnisendValidateEventsOperator
from airflow_omnisend.run_partition import parse_run_options, resolve_partition
from airflow_omnisend.sources.sql import SqlQueries
from airflow_omnisend.staging import StagingRoot
from airflow_omnisend.stores import (
    StoreConfig,
    StoreEntry,
    StoresFile,
    load_stores,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import date
    from pathlib import Path

    from airflow.sdk import Context
    from airflow.sdk.bases.timetable import BaseTimetable

__all__ = [
    "IMPORT_FILE_DAG_ID",
    "TASK_IDS",
    "BrokenStoreDag",
    "OmnisendImportRequestOperator",
    "OmnisendPartitionOperator",
    "build_broken_store_dag",
    "build_import_file_dag",
    "build_store_dag",
    "build_store_dags",
    "store_timetable",
]

IMPORT_FILE_DAG_ID: Final = "omnisend_import_file"
#: conf keys of the import-file DAG besides the run options
IMPORT_CONF_KEYS: Final = ("path", "store_id", "omnisend_conn_id")
#: task ids of a store DAG, in order (``select_events`` only for a subset of event names)
TASK_IDS: Final = (
    "partition",
    "extract",
    "select_events",
    "validate",
    "automation_safety_check",
    "plan",
    "send",
    "report",
)
DEFAULT_MIN_EVENT_AGE: Final = timedelta(hours=1)
_RETRY_POLICY: Final = OmnisendRetryPolicy()
_SELECTED_EVENTS_FILE: Final = "events_selected.ndjson"


def _pulled(task_id: str, key: str) -> str:
    """A template reading one key of a task's returned dict, for operator arguments that must be text
    when the DAG is parsed (the safety operator checks its acknowledgement right away)."""
    return "{{ ti.xcom_pull(task_ids='" + task_id + "')['" + key + "'] }}"


def _output(task: BaseOperator, key: str) -> Any:
    """The XCom ``key`` the task pushed (:func:`_push_keys`), resolved when the consumer runs."""
    return cast("Any", task.output)[key]


def _push_keys(context: Context, result: Mapping[str, Any]) -> None:
    """Push every key of ``result`` as its own XCom, so later tasks take one value each
    (``task.output["partition"]`` names an XCom key, not a key of the returned dict)."""
    ti = context["ti"]
    for key, value in result.items():
        ti.xcom_push(key=key, value=value)


def store_timetable(store: StoreConfig) -> BaseTimetable | None:
    """The store's timetable: daily partitions keyed ``YYYY-MM-DD`` in its timezone (module docstring),
    or ``None`` for ``schedule: null`` (runs only when triggered with a partition)."""
    if store.schedule is None:
        return None
    return CronPartitionTimetable("0 0 * * *", timezone=store.timezone, run_offset=-1, key_format="%Y-%m-%d")


def _local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=load_timezone(timezone))


def run_params(*, extra: Mapping[str, Param] | None = None) -> dict[str, Param]:
    """The DAG params: the UI's trigger form, and what ``-c '{...}'`` overrides."""
    params = {
        "partition": Param(
            None,
            type=["null", "string"],
            pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            title="Partition (store-local day)",
            description=(
                "YYYY-MM-DD: the day to import. Required for manual runs; backfill and scheduled runs "
                "have their own and must leave it empty."
            ),
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description=(
                "Extract, validate, check automations and plan; report requests and minutes; send nothing."
            ),
        ),
        "acknowledge_automations": Param(
            None,
            type=["null", "string"],
            title="Acknowledge automations (reason)",
            description=(
                "Only when the safety check blocked: why, in words, enabled automations may see these "
                "events. Logged and written into the report."
            ),
        ),
    }
    params.update(extra or {})
    return params


# -- the partition task -----------------------------------------------------------------------------------


class OmnisendPartitionOperator(BaseOperator):
    """Resolve the run's partition and options (``airflow_omnisend.run_partition``) and return them.

    Returns (XCom) ``{"partition", "timezone", "start_utc", "end_utc", "source", "dry_run",
    "acknowledge_automations", "store_id"}``; the later tasks read their day and options from it, so
    conf rules live in one place. When the day ended less than ``min_event_age`` ago (a scheduled run
    at local midnight) it defers until then instead of letting the safety check refuse young events.
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
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retry_policy", _RETRY_POLICY)
        super().__init__(**kwargs)
        self.store_id = store_id
        self.timezone = timezone
        self.first_day = first_day
        self.last_day = last_day
        self.min_event_age = min_event_age

    def _resolve(self, context: Context) -> dict[str, Any]:
        dag_run = context["dag_run"]
        options = parse_run_options(dag_run.conf, context.get("params"))
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
        )
        result = resolved.to_dict()
        result.update(
            store_id=self.store_id,
            dry_run=options.dry_run,
            acknowledge_automations=options.acknowledge_automations,
        )
        return result

    def execute(self, context: Context) -> dict[str, Any]:
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

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        return self._done(context, self._resolve(context))

    def _done(self, context: Context, result: dict[str, Any]) -> dict[str, Any]:
        _push_keys(context, result)
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


class OmnisendSelectEventsOperator(BaseOperator):
    """Keep only the store's event names from ``events.ndjson`` (``events`` in the stores file).

    Writes ``events_selected.ndjson`` next to it and returns its URL, which the validate step reads
    (``events_path``); the report then counts the selected events as the partition's events.
    """

    template_fields: Sequence[str] = ("store_id", "partition", "staging")

    def __init__(
        self,
        *,
        store_id: str,
        partition: str,
        event_names: Sequence[str],
        staging: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retry_policy", _RETRY_POLICY)
        super().__init__(**kwargs)
        self.store_id = store_id
        self.partition = partition
        self.event_names = tuple(event_names)
        self.staging = staging
        unknown = set(self.event_names) - set(EVENT_NAMES)
        if unknown or not self.event_names:
            raise OmnisendConfigError(
                f"event_names must be a non-empty subset of {EVENT_NAMES}, got {event_names!r}"
            )

    def execute(self, context: Context) -> str:
        partition = StagingRoot.from_env(self.staging).partition(self.store_id, self.partition)
        wanted = {name.encode() for name in self.event_names}
        target = partition.dir / _SELECTED_EVENTS_FILE
        kept = dropped = 0
        with (
            partition.local_copy("events") as local,
            open(local, "rb") as src,
            partition.open_write(target) as out,
        ):
            for line in src:
                if not line.strip():
                    continue
                try:
                    name = orjson.loads(line).get("eventName")
                except (orjson.JSONDecodeError, AttributeError):
                    name = None  # not ours to judge: validation rejects it with a reason
                if name is None or str(name).encode() in wanted:
                    out.write(line if line.endswith(b"\n") else line + b"\n")
                    kept += 1
                else:
                    dropped += 1
        self.log.info(
            "%s %s: kept %d events named %s, left out %d others -> %s",
            self.store_id,
            self.partition,
            kept,
            ", ".join(self.event_names),
            dropped,
            target,
        )
        return str(target)


# -- store DAGs ------------------------------------------------------------------------------------------


_DEFAULT: Final = object()


def build_store_dag(
    store: StoreConfig,
    *,
    timetable: Any = _DEFAULT,
    min_event_age: timedelta = DEFAULT_MIN_EVENT_AGE,
    dag_kwargs: Mapping[str, Any] | None = None,
) -> DAG:
    """The DAG ``omnisend_orders__<store_id>`` of one store (see the module docstring).

    :param timetable: override the default :func:`store_timetable` (e.g. a
        ``CronDataIntervalTimetable("0 0 * * *", timezone=...)``; ``None`` for manual runs only).
    :param min_event_age: the safety check's minimum event age, and how long after a day's end its
        scheduled run waits.
    :param dag_kwargs: more ``DAG(...)`` arguments (tags, owner links, ...).
    """
    chosen = store_timetable(store) if timetable is _DEFAULT else timetable
    end = None
    if store.end_date is not None:
        # the run for end_date fires at the next local midnight
        end = _local_midnight(store.end_date + timedelta(days=1), store.timezone)
    retries: dict[str, Any] = {
        "retries": store.retries,
        "retry_delay": timedelta(seconds=store.retry_delay_seconds),
    }
    kwargs: dict[str, Any] = {
        "dag_id": store.dag_id,
        "schedule": chosen,
        "start_date": _local_midnight(store.start_date, store.timezone),
        "end_date": end,
        "catchup": False,
        "max_active_runs": store.max_active_runs,
        "params": run_params(),
        "tags": ["omnisend", f"store:{store.store_id}"],
        "doc_md": _store_doc(store),
        "default_args": {"owner": "omnisend", **retries},
    }
    kwargs.update(dag_kwargs or {})
    with DAG(**kwargs) as dag:
        partition = OmnisendPartitionOperator(
            task_id="partition",
            store_id=store.store_id,
            timezone=store.timezone,
            first_day=store.start_date,
            last_day=store.end_date,
            min_event_age=min_event_age,
            **retries,
        )
        day = _output(partition, "partition")
        common: dict[str, Any] = {"store_id": store.store_id, "partition": day, "staging": store.staging}
        extract = OmnisendExtractOrdersOperator(
            task_id="extract",
            timezone=store.timezone,
            source_conn_id=store.source_conn_id,
            source_path=store.source_path,
            queries=SqlQueries(**store.queries_dict) if store.queries else None,
            **common,
            **retries,
        )
        events_path: Any = None
        upstream_of_validate: BaseOperator = extract
        if set(store.events) != set(EVENT_NAMES):
            select = OmnisendSelectEventsOperator(
                task_id="select_events", event_names=store.events, **common, **retries
            )
            extract >> select
            events_path = select.output
            upstream_of_validate = select
        validate = OmnisendValidateEventsOperator(
            task_id="validate",
            max_reject_ratio=store.max_reject_ratio,
            events_path=events_path,
            **common,
            **retries,
        )
        safety = OmnisendAutomationSafetyOperator(
            task_id="automation_safety_check",
            omnisend_conn_id=store.omnisend_conn_id,
            acknowledge_automations=_pulled("partition", "acknowledge_automations"),
            min_event_age=min_event_age,
            pool=store.pool,
            **common,
            **retries,
        )
        plan = OmnisendPlanBatchesOperator(
            task_id="plan",
            omnisend_conn_id=store.omnisend_conn_id,
            dry_run=_output(partition, "dry_run"),
            **common,
            **retries,
        )
        send = OmnisendSendBatchesOperator.partial(
            task_id="send",
            omnisend_conn_id=store.omnisend_conn_id,
            pool=store.pool,
            **common,
            **retries,
        ).expand(shard=plan.output)
        report = OmnisendReportOperator(
            task_id="report", dry_run=_output(partition, "dry_run"), **common, **retries
        )
        partition >> extract
        upstream_of_validate >> validate >> safety >> plan >> send >> report
    return dag


def _store_doc(store: StoreConfig) -> str:
    source = (
        f"SQL connection `{store.source_conn_id}`" if store.source_conn_id else f"file `{store.source_path}`"
    )
    return (
        f"### Omnisend backfill: store `{store.store_id}`\n\n"
        f"One run = one calendar day in **{store.timezone}**, from {store.start_date}"
        f"{f' to {store.end_date}' if store.end_date else ''}. Source: {source}; Omnisend connection "
        f"`{store.omnisend_conn_id}`; pool `{store.pool}`.\n\n"
        "* one day: `airflow dags test " + store.dag_id + ' -c \'{"partition": "YYYY-MM-DD"}\'`\n'
        "* a range: `airflow backfill create --dag-id " + store.dag_id + " --from-date D --to-date D`\n"
        "* rerun failed days: add `--reprocess-behavior failed`\n"
        "* conf: `partition`, `dry_run` (true: plan only), `acknowledge_automations` (a reason)\n"
    )


class BrokenStoreDag(DAG):
    """Placeholder for a bad stores-file entry: ``validate()`` raises the entry's problems, so the DAG
    processor records an import error for the file and keeps the file's other DAGs."""

    omnisend_problem: str = ""

    def validate(self) -> None:
        raise OmnisendConfigError(self.omnisend_problem)


def build_broken_store_dag(entry: StoreEntry, stores: StoresFile) -> BrokenStoreDag:
    """The placeholder DAG of a bad entry (see the module docstring).

    Its message lists every bad entry of the file, in file order, the same for each placeholder: Airflow
    keeps one import error per file, and which placeholder's survives is not defined.
    """
    problem = stores.describe_problems() or f"stores file {stores.path}: {entry.describe()}"
    dag = BrokenStoreDag(dag_id=entry.dag_id, schedule=None, tags=["omnisend", "broken-store-entry"])
    dag.omnisend_problem = problem
    return dag


def build_store_dags(
    stores_path: str | Path | None = None,
    *,
    default_stores_path: str | Path | None = None,
    **build_kwargs: Any,
) -> dict[str, DAG]:
    """Every store's DAG, by DAG id: good entries built, bad entries as :class:`BrokenStoreDag`.

    :param stores_path: the stores file; default ``$AIRFLOW_OMNISEND_STORES``, else
        ``default_stores_path`` (the dag file's ``stores.yaml``).
    :param build_kwargs: passed to :func:`build_store_dag` for every store.

    A stores file that cannot be read at all raises :class:`OmnisendConfigError` (one import error for
    the DAG file, naming the stores file).
    """
    stores = load_stores(stores_path, default=default_stores_path)
    built: dict[int, DAG] = {}
    entries: list[StoreEntry] = []
    for entry in stores.entries:
        if entry.config is not None:
            try:
                built[entry.index] = build_store_dag(entry.config, **build_kwargs)
            except Exception as exc:  # an operator refusing the config: still only this store's DAG
                entry = replace(entry, config=None, errors=(f"{type(exc).__name__}: {exc}",))
        entries.append(entry)
    stores = replace(stores, entries=tuple(entries))
    dags: dict[str, DAG] = {}
    for entry in stores.entries:
        dag = built.get(entry.index) or build_broken_store_dag(entry, stores)
        dags[dag.dag_id] = dag
    return dags


# -- the import-file DAG ---------------------------------------------------------------------------------


class OmnisendImportRequestOperator(BaseOperator):
    """Resolve the import-file run's conf: the file, the store and connection, the partition label.

    Conf (or the DAG params): ``path`` (required: an NDJSON file of Omnisend events, a local path or
    fsspec URL), ``store_id`` (staging folder; default ``file_import``), ``omnisend_conn_id`` (default:
    the store's in the stores file, else ``omnisend_default``), ``partition`` (a ``YYYY-MM-DD`` label for
    the staging folder; default today in UTC - rerun with the same label to resume and skip finished
    bodies), ``dry_run``, ``acknowledge_automations``.
    """

    ui_color = "#f0f0f0"

    def __init__(
        self, *, stores_path: str | None = None, default_stores_path: str | None = None, **kwargs: Any
    ):
        kwargs.setdefault("retry_policy", _RETRY_POLICY)
        super().__init__(**kwargs)
        self.stores_path = stores_path
        self.default_stores_path = default_stores_path

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_omnisend.events.ids import check_store_id
        from airflow_omnisend.events.partition import parse_partition_day

        dag_run = context["dag_run"]
        conf = dict(dag_run.conf or {})
        params = dict(context.get("params") or {})
        options = parse_run_options(conf, params, extra_keys=IMPORT_CONF_KEYS)
        merged = {**params, **conf}
        check_acknowledgement(options.acknowledge_automations, type(self).__name__)
        path = merged.get("path")
        if not isinstance(path, str) or not path.strip():
            raise OmnisendConfigError(
                f"{dag_run.dag_id}: name the NDJSON file of events to import: "
                f'airflow dags trigger {dag_run.dag_id} -c \'{{"path": "/data/events.ndjson"}}\''
            )
        store_id = merged.get("store_id") or "file_import"
        check_store_id(store_id)
        conn_id = merged.get("omnisend_conn_id")
        if not conn_id:
            conn_id = "omnisend_default"
            try:
                stores = load_stores(self.stores_path, default=self.default_stores_path)
                conn_id = stores.get(store_id).omnisend_conn_id
            except OmnisendConfigError:
                pass
        label = options.partition or datetime.now(UTC).date().isoformat()
        parse_partition_day(label)
        result = {
            "path": path.strip(),
            "store_id": store_id,
            "omnisend_conn_id": conn_id,
            "partition": label,
            "dry_run": options.dry_run,
            "acknowledge_automations": options.acknowledge_automations,
        }
        shown = {k: v for k, v in result.items() if k != "acknowledge_automations"}
        self.log.info("Import request: %s", shown)
        _push_keys(context, result)
        return result


def build_import_file_dag(
    *,
    dag_id: str = IMPORT_FILE_DAG_ID,
    stores_path: str | Path | None = None,
    default_stores_path: str | Path | None = None,
    staging: str | None = None,
    max_reject_ratio: float = 0.01,
    retries: int = 3,
    retry_delay: timedelta = timedelta(seconds=60),
    pool: str | None = None,
    min_event_age: timedelta = DEFAULT_MIN_EVENT_AGE,
) -> DAG:
    """The manual DAG that imports an NDJSON file of Omnisend events (path in the conf):
    ``prepare -> validate -> automation_safety_check -> plan -> send -> report``."""
    retry: dict[str, Any] = {"retries": retries, "retry_delay": retry_delay}
    pool_kw: dict[str, Any] = {"pool": pool} if pool else {}
    params = run_params(
        extra={
            "path": Param(
                None,
                type=["null", "string"],
                title="Events file",
                description="NDJSON file of Omnisend events (local path or fsspec URL). Required.",
            ),
            "store_id": Param(
                "file_import",
                type="string",
                pattern=r"^[a-z0-9_]+$",
                title="Store id",
                description=(
                    "Names the staging folder; a store of the stores file lends its Omnisend connection."
                ),
            ),
            "omnisend_conn_id": Param(
                None,
                type=["null", "string"],
                title="Omnisend connection",
                description="Default: the store's in the stores file, else omnisend_default.",
            ),
        }
    )
    params["partition"] = Param(
        None,
        type=["null", "string"],
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        title="Import label (YYYY-MM-DD)",
        description="Staging folder of this import; default today (UTC). Reuse it to resume a failed import.",
    )
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2024, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        params=params,
        tags=["omnisend"],
        doc_md=(
            "### Import an NDJSON file of Omnisend events\n\n"
            "`airflow dags trigger " + dag_id + ' -c \'{"path": "/data/events.ndjson", "store_id": "demo"}\'`'
            "\n\nvalidate -> automation safety check -> plan -> send -> report, as in the store DAGs."
        ),
        default_args={"owner": "omnisend", **retry},
    ) as dag:
        request = OmnisendImportRequestOperator(
            task_id="prepare",
            stores_path=None if stores_path is None else str(stores_path),
            default_stores_path=None if default_stores_path is None else str(default_stores_path),
            **retry,
        )
        common: dict[str, Any] = {
            "store_id": _output(request, "store_id"),
            "partition": _output(request, "partition"),
            "staging": staging,
        }
        validate = OmnisendValidateEventsOperator(
            task_id="validate",
            events_path=_output(request, "path"),
            max_reject_ratio=max_reject_ratio,
            **common,
            **retry,
        )
        safety = OmnisendAutomationSafetyOperator(
            task_id="automation_safety_check",
            omnisend_conn_id=_output(request, "omnisend_conn_id"),
            acknowledge_automations=_pulled("prepare", "acknowledge_automations"),
            min_event_age=min_event_age,
            **pool_kw,
            **common,
            **retry,
        )
        plan = OmnisendPlanBatchesOperator(
            task_id="plan",
            omnisend_conn_id=_output(request, "omnisend_conn_id"),
            dry_run=_output(request, "dry_run"),
            **common,
            **retry,
        )
        send = OmnisendSendBatchesOperator.partial(
            task_id="send",
            omnisend_conn_id=_output(request, "omnisend_conn_id"),
            **pool_kw,
            **common,
            **retry,
        ).expand(shard=plan.output)
        report = OmnisendReportOperator(
            task_id="report", dry_run=_output(request, "dry_run"), **common, **retry
        )
        request >> validate >> safety >> plan >> send >> report
    return dag
