"""The DAG factory is wiring only: the operators it names live in operators/ (and stay importable from
here), both DAGs share one validate -> report chain, and the later steps read their upstream's output."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend import dag_factory
from airflow_omnisend.operators import import_request, partition, select_events
from airflow_omnisend.stores import STORES_ENV

if TYPE_CHECKING:
    from airflow.sdk import DAG

STORES = Path(__file__).resolve().parents[2] / "dags" / "stores.yaml"
SHARED = ("validate", "automation_safety_check", "plan", "send", "report")


@pytest.fixture(scope="module")
def store_dag() -> DAG:
    saved = os.environ.pop(STORES_ENV, None)
    try:
        return dag_factory.build_store_dags(default_stores_path=STORES)["omnisend_orders__demo"]
    finally:
        if saved is not None:
            os.environ[STORES_ENV] = saved


def test_operators_stay_importable_from_the_factory() -> None:
    assert dag_factory.OmnisendPartitionOperator is partition.OmnisendPartitionOperator
    assert dag_factory.OmnisendSelectEventsOperator is select_events.OmnisendSelectEventsOperator
    assert dag_factory.OmnisendImportRequestOperator is import_request.OmnisendImportRequestOperator
    assert dag_factory.DEFAULT_MIN_EVENT_AGE is partition.DEFAULT_MIN_EVENT_AGE
    assert dag_factory.IMPORT_CONF_KEYS == ("path", "store_id", "omnisend_conn_id")


def _xcom_source(dag: DAG, task_id: str, field: str) -> Any:
    value = getattr(dag.get_task(task_id), field)
    return None if value is None else value.operator.task_id


@pytest.mark.parametrize("first", ["extract", "prepare"])
def test_both_dags_share_the_steps_from_validate_to_report(store_dag: DAG, first: str) -> None:
    dag = store_dag if first == "extract" else dag_factory.build_import_file_dag(default_stores_path=STORES)
    for before, after in zip((first, *SHARED), SHARED, strict=False):
        assert before in dag.get_task(after).upstream_task_ids, (before, after)
    # the safety check and the plan read the files validate's returned manifest names
    assert _xcom_source(dag, "automation_safety_check", "validated") == "validate"
    assert _xcom_source(dag, "plan", "validated") == "validate"
    # validate reads extract's manifest in a store DAG; the import names its file in the conf
    assert _xcom_source(dag, "validate", "extracted") == ("extract" if first == "extract" else None)


def test_the_params_use_the_shared_patterns(store_dag: DAG) -> None:
    imported = dag_factory.build_import_file_dag(default_stores_path=STORES)
    day = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
    assert store_dag.params.get_param("partition").schema["pattern"] == day
    assert imported.params.get_param("partition").schema["pattern"] == day
    assert imported.params.get_param("store_id").schema["pattern"] == r"^[a-z0-9_]+$"


@pytest.mark.parametrize(
    ("period", "cron", "key_format", "pattern"),
    [
        ("day", "0 0 * * *", "%Y-%m-%d", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
        ("week", "0 0 * * 1", "%G-W%V", r"^[0-9]{4}-W[0-9]{2}$"),
        ("month", "0 0 1 * *", "%Y-%m", r"^[0-9]{4}-[0-9]{2}$"),
    ],
)
def test_a_store_dag_follows_its_period(period: str, cron: str, key_format: str, pattern: str) -> None:
    from airflow_omnisend.stores import StoreConfig

    store = StoreConfig(
        store_id="shop",
        omnisend_conn_id="omnisend_shop",
        source_conn_id="shop_db",
        timezone="Europe/Vilnius",
        start_date=date(2024, 1, 1),  # a Monday and a month's first day
        period=period,  # type: ignore[arg-type]
    )
    timetable: Any = dag_factory.store_timetable(store)
    assert (timetable.expression, timetable.key_format, timetable.run_offset) == (cron, key_format, -1)
    dag = dag_factory.build_store_dag(store)
    assert dag.params.get_param("partition").schema["pattern"] == pattern
    assert dag.get_task("partition").period == period
    assert dag.dag_id == "omnisend_orders__shop"
    assert dag.get_task("send").partial_kwargs["pool"] == "omnisend_shop"


def test_a_store_that_asks_for_approval_gets_the_approval_step_between_check_and_plan() -> None:
    from airflow_omnisend.stores import StoreConfig

    common: dict[str, Any] = {
        "omnisend_conn_id": "omnisend_shop",
        "source_conn_id": "shop_db",
        "timezone": "Europe/Vilnius",
        "start_date": date(2024, 1, 1),
    }
    asks = dag_factory.build_store_dag(
        StoreConfig(store_id="shop", approval="ui", approval_timeout_hours=6, approval_valid_days=7, **common)
    )
    approval = asks.get_task("automation_approval")
    assert "automation_safety_check" in approval.upstream_task_ids
    assert "automation_approval" in asks.get_task("plan").upstream_task_ids
    assert "automation_safety_check" not in asks.get_task("plan").upstream_task_ids
    assert _xcom_source(asks, "automation_approval", "checked") == "automation_safety_check"
    assert str(approval.response_timeout) == "6:00:00"
    assert asks.get_task("automation_safety_check").approval == "ui"
    assert asks.get_task("automation_safety_check").approval_valid_for.days == 7

    plain = dag_factory.build_store_dag(StoreConfig(store_id="shop", **common))
    assert "automation_approval" not in plain.task_ids
    assert plain.get_task("automation_safety_check").approval == "none"
