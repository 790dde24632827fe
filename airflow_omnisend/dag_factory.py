"""Build the per-store backfill DAGs (and the import-file DAG) from the stores file.

Use it from any dags folder::

    # dags/omnisend_orders.py
    from pathlib import Path

    from airflow_omnisend.dag_factory import build_store_dags

    globals().update(build_store_dags(default_stores_path=Path(__file__).with_name("stores.yaml")))

One DAG per store, ``omnisend_orders__<store_id>``::

    extract -> [select_events] -> validate -> automation_safety_check -> plan
        -> send (mapped, one task per shard) -> report

``extract`` first resolves the run's partition and options (``OmnisendExtractPartitionOperator``) and
pushes them as XComs for the later tasks.

``select_events`` only exists when the store imports a subset of the five event names. The tasks that
call Omnisend (``automation_safety_check``, ``send``) run in the pool ``omnisend_<store_id>`` (``pool`` in
the stores file), so parallel runs of one brand share its rate budget; create it with
``airflow pools set omnisend_<store_id> 4 "Omnisend <store_id>" --include-deferred`` (a deferred send
keeps its slot; ``airflow dags test`` needs no pool: it runs tasks in-process, without pool slots).
Each task retries ``retries`` times after
``retry_delay_seconds`` (stores file), and ``OmnisendRetryPolicy`` ends retries at once where another
attempt cannot help (configuration, auth, automation risk, ...). ``report`` runs with ``none_failed``:
after a dry run's skipped send, never after a failed one. Its outlet is the store's asset
``omnisend://<store_id>/orders`` (``assets.py``): a successful, non-dry run emits one event keyed by
its period, for DAGs scheduled downstream (``dags/omnisend_monthly_report.py``).

Timetable: ``CronPartitionTimetable``
-------------------------------------
A run processes one store-local period (the stores file's ``period``: ``day``, ``week`` or ``month``),
named by the run's partition key (``YYYY-MM-DD``, ``YYYY-Www``, ``YYYY-MM``): the cron ticks at each
period's first local midnight and the key is written from that tick, so
``airflow backfill create --from-date D --to-date D`` creates one run per period that starts in the
range (read as the store's local days, DST days included); a data-interval timetable's backfill
silently dropped a day at one end of the range.
Partitioned runs have no ``ds``: the ``extract`` task passes the day on. A manual run is given its
period as Airflow's Partition Key (the trigger form's Advanced Options, REST ``partition_key``), so it
shows as the run's partition key like a backfill's; the trigger form has no field of its own for it.
From the CLI, whose ``dags test``/``dags trigger`` take no partition key, the conf names it
(``-c '{"partition": "2024-03-10"}'``, which must agree with a partition key the run has) and the run's
note says so (:mod:`airflow_omnisend.run_notes`). Week stores keep the form's *Partition* field:
Airflow 3.3.2 cannot read a week key it is given. ``catchup`` is off; history comes from backfills, and
the ``extract`` task refuses days outside the store's ``start_date``..``end_date``. What was tried
and what it showed: ``docs/timetable.md``.

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

from airflow.sdk import DAG, Param
from airflow.sdk.definitions.timetables.trigger import CronPartitionTimetable

from airflow_omnisend.assets import store_asset
from airflow_omnisend.events.ids import STORE_ID_PATTERN
from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.partition import DAY_PATTERN, PartitionPeriod, load_timezone
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators.import_request import IMPORT_CONF_KEYS, OmnisendImportRequestOperator
from airflow_omnisend.operators.labels import SEND_MAP_INDEX_TEMPLATE
from airflow_omnisend.operators.partition import (
    DEFAULT_MIN_EVENT_AGE,
    OmnisendExtractPartitionOperator,
    OmnisendPartitionOperator,
)
from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
from airflow_omnisend.operators.report import OmnisendReportOperator
from airflow_omnisend.operators.safety import OmnisendAutomationSafetyOperator
from airflow_omnisend.operators.select_events import OmnisendSelectEventsOperator
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
from airflow_omnisend.operators.validate import OmnisendValidateEventsOperator
from airflow_omnisend.sources.sql import SqlQueries
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

    from airflow.sdk import Asset, BaseOperator
    from airflow.sdk.bases.timetable import BaseTimetable

__all__ = [
    "DEFAULT_MIN_EVENT_AGE",
    "IMPORT_CONF_KEYS",
    "IMPORT_FILE_DAG_ID",
    "TASK_IDS",
    "BrokenStoreDag",
    "OmnisendExtractPartitionOperator",
    "OmnisendImportRequestOperator",
    "OmnisendPartitionOperator",
    "OmnisendSelectEventsOperator",
    "build_broken_store_dag",
    "build_import_file_dag",
    "build_store_dag",
    "build_store_dags",
    "store_timetable",
    "takes_partition_key",
]

IMPORT_FILE_DAG_ID: Final = "omnisend_import_file"
#: task ids of a store DAG, in order (``select_events`` only for a subset of event names)
TASK_IDS: Final = (
    "extract",
    "select_events",
    "validate",
    "automation_safety_check",
    "plan",
    "send",
    "report",
)


def _pulled(task_id: str, key: str) -> str:
    """A template reading the XCom ``key`` a task pushed (``push_keys``), for operator arguments that
    must be text when the DAG is parsed (the safety operator checks its acknowledgement right away)."""
    return "{{ ti.xcom_pull(task_ids='" + task_id + "', key='" + key + "') }}"


def _returned(task: BaseOperator) -> Any:
    """What the task returned (its manifest), resolved when the consumer runs."""
    return cast("Any", task.output)


def _output(task: BaseOperator, key: str) -> Any:
    """The XCom ``key`` the task pushed (``push_keys``), resolved when the consumer runs."""
    return cast("Any", task.output)[key]


def store_timetable(store: StoreConfig) -> BaseTimetable | None:
    """The store's timetable: one partition per period (day ``YYYY-MM-DD``, week ``YYYY-Www``, month
    ``YYYY-MM``) in its timezone (module docstring), or ``None`` for ``schedule: null`` (runs only when
    triggered with a partition)."""
    if store.schedule is None:
        return None
    period = store.period
    return CronPartitionTimetable(
        period.cron, timezone=store.timezone, run_offset=-1, key_format=period.key_format
    )


def _local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=load_timezone(timezone))


def _day_param(title: str, description: str, pattern: str = DAY_PATTERN) -> Param:
    return Param(None, type=["null", "string"], pattern=f"^{pattern}$", title=title, description=description)


def takes_partition_key(timetable: object, period: PartitionPeriod = PartitionPeriod.DAY) -> bool:
    """Whether a run of this DAG can be given its period as Airflow's own partition key: the UI trigger
    form's Partition Key (Advanced Options) and the REST API's ``partition_key``, which Airflow then
    shows as the run's partition key everywhere. Not for a week store: Airflow 3.3.2 cannot read a
    week key it is given (README, "Week keys"), so a week is named in the conf's ``partition``."""
    partitioned = isinstance(timetable, CronPartitionTimetable) or bool(
        getattr(timetable, "partitioned_at_runtime", False)
    )
    return partitioned and period is not PartitionPeriod.WEEK


def run_params(
    *,
    extra: Mapping[str, Param] | None = None,
    period: PartitionPeriod = PartitionPeriod.DAY,
    partition_field: bool = True,
) -> dict[str, Param]:
    """The DAG params: the UI's trigger form, and what ``-c '{...}'`` overrides; ``partition`` takes the
    key form of the store's ``period``. ``partition_field=False`` leaves ``partition`` out of the form
    for a DAG whose runs take Airflow's Partition Key (:func:`takes_partition_key`): one field names the
    period there; the conf key ``partition`` still works (the CLI's way, ``dags test -c``)."""
    params: dict[str, Param] = {}
    if partition_field:
        params["partition"] = _day_param(
            f"Partition (store-local {period.noun})",
            f"{period.form}: the {period.noun} to import. Required for manual runs; backfill and "
            "scheduled runs have their own and must leave it empty.",
            period.pattern,
        )
    params |= {
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


# -- the steps both DAGs share ---------------------------------------------------------------------------


def _validate_to_report(
    upstream: BaseOperator,
    run: BaseOperator,
    *,
    common: Mapping[str, Any],
    omnisend_conn_id: Any,
    max_reject_ratio: Any,
    events_path: Any,
    extracted: Any,
    min_event_age: timedelta,
    pool: str | None,
    retries: Mapping[str, Any],
    keep_staged_events: bool = False,
    approval: StoreConfig | None = None,
    outlets: Sequence[Asset] = (),
) -> None:
    """``upstream >> validate >> automation_safety_check [>> automation_approval] >> plan >> send
    (mapped) >> report``.

    :param run: the first task, whose XCom keys ``dry_run`` and ``acknowledge_automations`` hold the
        run's options (``extract`` or ``prepare``).
    :param common: ``store_id``, ``partition`` and ``staging`` of every step.
    :param pool: the pool of the steps that call Omnisend (safety, send); ``None``: the default pool.
    :param approval: the store whose ``approval: ui`` adds the approval step (``None``: no approval step).
    :param outlets: the report's assets (a store DAG's :func:`~airflow_omnisend.assets.store_asset`).
    """
    pool_kw: dict[str, Any] = {"pool": pool} if pool else {}
    asks = approval is not None and approval.approval == "ui"
    valid_for = timedelta(days=approval.approval_valid_days) if approval is not None else timedelta(days=30)
    validate = OmnisendValidateEventsOperator(
        task_id="validate",
        max_reject_ratio=max_reject_ratio,
        events_path=events_path,
        extracted=extracted,
        **common,
        **retries,
    )
    safety = OmnisendAutomationSafetyOperator(
        task_id="automation_safety_check",
        omnisend_conn_id=omnisend_conn_id,
        acknowledge_automations=_pulled(run.task_id, "acknowledge_automations"),
        min_event_age=min_event_age,
        validated=_returned(validate),
        approval="ui" if asks else "none",
        approval_valid_for=valid_for,
        **pool_kw,
        **common,
        **retries,
    )
    gate: BaseOperator = safety
    if asks:
        assert approval is not None
        # only stores that ask pay for the standard provider's HITL import when the DAG file is parsed
        from airflow_omnisend.operators.approval import OmnisendAutomationApprovalOperator

        gate = OmnisendAutomationApprovalOperator(
            task_id="automation_approval",
            checked=_returned(safety),
            approval_timeout=timedelta(hours=approval.approval_timeout_hours),
            approval_valid_for=valid_for,
            **common,
        )
        safety >> gate
    plan = OmnisendPlanBatchesOperator(
        task_id="plan",
        omnisend_conn_id=omnisend_conn_id,
        dry_run=_output(run, "dry_run"),
        validated=_returned(validate),
        **common,
        **retries,
    )
    send = OmnisendSendBatchesOperator.partial(
        task_id="send",
        omnisend_conn_id=omnisend_conn_id,
        map_index_template=SEND_MAP_INDEX_TEMPLATE,  # "shard 3: 16 bodies, 14,210 events" in the UI
        **pool_kw,
        **common,
        **retries,
    ).expand(shard=plan.output)
    report = OmnisendReportOperator(
        task_id="report",
        dry_run=_output(run, "dry_run"),
        keep_staged_events=keep_staged_events,
        outlets=list(outlets),
        **common,
        **retries,
    )
    upstream >> validate >> safety
    gate >> plan >> send >> report


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
        "params": run_params(
            period=store.period, partition_field=not takes_partition_key(chosen, store.period)
        ),
        "tags": ["omnisend", f"store:{store.store_id}"],
        "doc_md": _store_doc(store, takes_partition_key(chosen, store.period)),
        "default_args": {"owner": "omnisend", **retries},
    }
    kwargs.update(dag_kwargs or {})
    with DAG(**kwargs) as dag:
        extract = OmnisendExtractPartitionOperator(
            task_id="extract",
            store_id=store.store_id,
            staging=store.staging,
            timezone=store.timezone,
            first_day=store.start_date,
            last_day=store.end_date,
            min_event_age=min_event_age,
            period=store.period,
            source_conn_id=store.source_conn_id,
            source_path=store.source_path,
            queries=SqlQueries(**store.queries_dict) if store.queries else None,
            paramstyle=store.paramstyle,
            **retries,
        )
        common: dict[str, Any] = {
            "store_id": store.store_id,
            "partition": _output(extract, "partition"),
            "staging": store.staging,
        }
        events_path: Any = None
        upstream_of_validate: BaseOperator = extract
        if set(store.events) != set(EVENT_NAMES):
            select = OmnisendSelectEventsOperator(
                task_id="select_events",
                event_names=store.events,
                extracted=_returned(extract),
                **common,
                **retries,
            )
            events_path = select.output
            upstream_of_validate = select
        _validate_to_report(
            upstream_of_validate,
            extract,
            common=common,
            omnisend_conn_id=store.omnisend_conn_id,
            max_reject_ratio=store.max_reject_ratio,
            events_path=events_path,
            extracted=_returned(extract),
            min_event_age=min_event_age,
            pool=store.pool,
            retries=retries,
            keep_staged_events=store.keep_staged_events,
            approval=store,
            outlets=[store_asset(store.store_id)],
        )
    return dag


def _how_to_name(store: StoreConfig, keyed: bool) -> str:
    """The doc's lines on naming a manual run's period: Airflow's Partition Key where the DAG takes one,
    the conf's ``partition`` from the CLI (which has no ``--partition-key``) and otherwise."""
    noun, form = store.period.noun, store.period.form
    cli = f'`airflow dags test {store.dag_id} -c \'{{"partition": "{form}"}}\'`'
    if not keyed:
        return f"* one {noun}: {cli} (or the trigger form's *Partition* field)\n"
    return (
        f"* one {noun}: Trigger > Advanced Options > **Partition Key** `{form}` (REST: "
        f'`"partition_key"`), shown as the run\'s partition key; from the CLI, which has no '
        f"`--partition-key`: {cli} (the run's note names the {noun})\n"
    )


def _store_doc(store: StoreConfig, keyed: bool = True) -> str:
    source = (
        f"SQL connection `{store.source_conn_id}`" if store.source_conn_id else f"file `{store.source_path}`"
    )
    return (
        f"### Omnisend backfill: store `{store.store_id}`\n\n"
        f"One run = one calendar {store.period.noun} in **{store.timezone}**, from {store.start_date}"
        f"{f' to {store.end_date}' if store.end_date else ''}. Source: {source}; Omnisend connection "
        f"`{store.omnisend_conn_id}`; pool `{store.pool}`.\n\n"
        + _how_to_name(store, keyed)
        + "* a range: `airflow backfill create --dag-id "
        + store.dag_id
        + " --from-date D --to-date D`\n"
        f"* rerun failed {store.period.noun}s: add `--reprocess-behavior failed`\n"
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
    params = run_params(
        extra={
            "path": Param(
                None,
                type=["null", "string"],
                title="Events file",
                description=(
                    "NDJSON file of Omnisend events (absolute path or fsspec URL) under an allowed "
                    "import root ([omnisend] import_allowed_roots; default "
                    "$AIRFLOW_HOME/omnisend-imports). Required."
                ),
            ),
            "store_id": Param(
                "file_import",
                type="string",
                pattern=f"^{STORE_ID_PATTERN}$",
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
    params["partition"] = _day_param(
        "Import label (YYYY-MM-DD)",
        "Staging folder of this import; default today (UTC). Reuse it to resume a failed import.",
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
            staging=staging,
            **retry,
        )
        _validate_to_report(
            request,
            request,
            common={
                "store_id": _output(request, "store_id"),
                "partition": _output(request, "partition"),
                "staging": _output(request, "staging"),  # <root>/file-imports: no store run's folder
            },
            omnisend_conn_id=_output(request, "omnisend_conn_id"),
            max_reject_ratio=max_reject_ratio,
            events_path=_output(request, "path"),
            extracted=None,
            min_event_age=min_event_age,
            pool=pool,
            retries=retry,
        )
    return dag
