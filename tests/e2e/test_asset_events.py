"""Store runs emit the asset ``omnisend://<store_id>/orders`` with their period as partition key, in real
Airflow (``airflow dags test`` subprocesses, an own SQLite metadata DB, the emulator, a sample shop).

A dry run emits nothing; a real run triggered with ``{"partition": ...}`` (no Airflow partition key of its
own) emits one event keyed by that period, carrying the report's counts; the example downstream DAG
(``dags/omnisend_monthly_report.py``) is queued for the month: at once for a month store, and for a day
store only as a pending rollup until every day of the month is in.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.stores import STORES_ENV
from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
TZ = "Europe/Vilnius"
SAMPLE = {"orders": 120, "seed": 7, "timezone": TZ, "start": "2024-03-25", "days": 7}
STORES = """\
stores:
  - store_id: asset_day
    omnisend_conn_id: omnisend_demo
    source_conn_id: shop_demo
    timezone: Europe/Vilnius
    start_date: "2024-03-01"
    max_reject_ratio: 0.2
  - store_id: asset_month
    omnisend_conn_id: omnisend_demo
    source_conn_id: shop_demo
    timezone: Europe/Vilnius
    start_date: "2024-03-01"
    period: month
    max_reject_ratio: 0.2
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An own Airflow home and SQLite DB (the test reads its asset tables), the shop and the stores file."""
    root = tmp_path_factory.mktemp("asset-events")
    shop = root / "shop.sqlite"
    build_sample_store(shop, **SAMPLE)  # type: ignore[arg-type]
    stores = root / "stores.yaml"
    stores.write_text(STORES, encoding="utf-8")
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(root / "home"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # the downstream DAG is queued
            STORES_ENV: str(stores),
            "AIRFLOW_OMNISEND_STAGING": str(root / "staging"),
            "AIRFLOW_CONN_SHOP_DEMO": json.dumps({"conn_type": "sqlite", "host": str(shop)}),
        }
    )
    migrate = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    return {"root": root, "db": root / "airflow.db", "env": env}


@pytest.fixture(scope="module")
def emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.02)) as emu:
        yield emu


def dags_test(
    workspace: dict[str, Any], emu: OmnisendEmulator, dag_id: str, conf: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(workspace["env"])
    env["AIRFLOW_CONN_OMNISEND_DEMO"] = json.dumps(
        {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key}
    )
    args = [AIRFLOW, "dags", "test", dag_id]
    if conf is not None:
        args += ["-c", json.dumps(conf)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)


def asset_events(workspace: dict[str, Any], store_id: str) -> list[dict[str, Any]]:
    with sqlite3.connect(workspace["db"]) as db:
        rows = db.execute(
            "SELECT e.partition_key, e.extra, e.source_dag_id, e.source_task_id FROM asset_event e "
            "JOIN asset a ON a.id = e.asset_id WHERE a.uri = ? ORDER BY e.id",
            (f"omnisend://{store_id}/orders",),
        ).fetchall()
    return [
        {"partition_key": key, "extra": json.loads(extra), "dag_id": dag, "task_id": task}
        for key, extra, dag, task in rows
    ]


def queued(workspace: dict[str, Any], dag_id: str) -> list[tuple[str, str]]:
    """(target partition key, source partition key) of the downstream DAG's queued asset partitions."""
    with sqlite3.connect(workspace["db"]) as db:
        return db.execute(
            "SELECT target_partition_key, source_partition_key FROM partitioned_asset_key_log "
            "WHERE target_dag_id = ? ORDER BY id",
            (dag_id,),
        ).fetchall()


def failure(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stdout + result.stderr)[-6000:]


def test_a_month_run_emits_its_month_and_queues_the_monthly_dag_a_dry_run_emits_nothing(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    dry = dags_test(
        workspace, emulator, "omnisend_orders__asset_month", {"partition": "2024-03", "dry_run": True}
    )
    assert dry.returncode == 0, failure(dry)
    assert asset_events(workspace, "asset_month") == []
    assert queued(workspace, "omnisend_monthly__asset_month") == []

    real = dags_test(workspace, emulator, "omnisend_orders__asset_month", {"partition": "2024-03"})
    assert real.returncode == 0, failure(real)
    report = json.loads((workspace["root"] / "staging/asset_month/2024-03/report.json").read_text())
    (event,) = asset_events(workspace, "asset_month")
    assert event["partition_key"] == "2024-03"
    assert (event["dag_id"], event["task_id"]) == ("omnisend_orders__asset_month", "report")
    assert event["extra"]["partition"] == "2024-03"
    assert event["extra"]["events_accepted"] == report["events_accepted"] > 0
    assert event["extra"]["events_extracted"] == report["events_extracted"]
    assert queued(workspace, "omnisend_monthly__asset_month") == [("2024-03", "2024-03")]

    downstream = dags_test(workspace, emulator, "omnisend_monthly__asset_month")
    assert downstream.returncode == 0, failure(downstream)


def test_a_day_run_emits_its_day_and_the_monthly_rollup_waits_for_the_month(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    result = dags_test(workspace, emulator, "omnisend_orders__asset_day", {"partition": "2024-03-26"})
    assert result.returncode == 0, failure(result)
    (event,) = asset_events(workspace, "asset_day")
    assert event["partition_key"] == "2024-03-26"
    assert event["extra"]["store_id"] == "asset_day"
    assert queued(workspace, "omnisend_monthly__asset_day") == [("2024-03", "2024-03-26")]
    with sqlite3.connect(workspace["db"]) as db:
        pending = db.execute(
            "SELECT partition_key, created_dag_run_id FROM asset_partition_dag_run WHERE target_dag_id = ?",
            ("omnisend_monthly__asset_day",),
        ).fetchall()
    assert pending == [("2024-03", None)]  # one day of 31: no run yet
