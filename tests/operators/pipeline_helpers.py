"""Helpers of the extract/validate/safety/report tests: a sample shop behind an Airflow SQL connection,
automations as Omnisend describes them, and one partition run through every step."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_omnisend.events.chunk_plan import ChunkPlan
from airflow_omnisend.staging import PartitionStaging, StagingRoot
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

SHOP = "acme_shop"
TZ = "Europe/Vilnius"
#: a day of the sample store (start 2024-03-25) with every event kind and a few dirty orders
SHOP_DAY = "2024-03-26"
SHOP_CONN = "shop_sqlite"
FAST_SEND = {"poll_interval": 0.02, "max_poll_interval": 0.2, "deferrable": False}


def sample_shop(tmp_path: Path, *, orders: int = 300, seed: int = 7, name: str = "shop.sqlite") -> Path:
    """A deterministic sample shop (SQLite) over two store-local days from 2024-03-25."""
    db = tmp_path / name
    build_sample_store(db, orders=orders, seed=seed, timezone=TZ, days=2)
    return db


def sqlite_connection(monkeypatch: pytest.MonkeyPatch, db: Path, conn_id: str = SHOP_CONN) -> str:
    """An Airflow ``sqlite`` connection to ``db``, as ``AIRFLOW_CONN_<ID>`` JSON."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sqlite", "host": str(db)})
    )
    return conn_id


def execute_sql(db: Path, sql: str, *params: Any) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql, params)


def automation(
    ident: str,
    name: str,
    event: str,
    *,
    origin: str = "api",
    enabled: bool = True,
    exits: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """A 2026 ``Automation`` object (the fields the check reads, plus a few it must ignore)."""
    return {
        "id": ident,
        "name": name,
        "isEnabled": enabled,
        "brandID": "5f0000000000000000000001",
        "createdAt": "2025-01-02T03:04:05Z",
        "trigger": {"condition": {"event": event, "origin": origin, "filterGroups": []}},
        "blocks": [{"type": "email"}],
        "exitConditions": [{"event": e, "origin": o, "filterGroup": {}} for e, o in exits],
        "settings": {},
    }


@dataclass
class PartitionRun:
    partition: PartitionStaging
    extract: dict[str, Any]
    validate: dict[str, Any]
    safety: dict[str, Any]
    shards: list[int]
    sends: list[dict[str, int]]
    report: dict[str, Any]


def run_partition(
    staging: Path,
    *,
    source_conn_id: str,
    omnisend_conn_id: str,
    day: str = SHOP_DAY,
    dry_run: bool = False,
    max_reject_ratio: float = 0.05,
    acknowledge: str | None = None,
    min_bodies_per_shard: int = 2,
    keep_staged_events: bool = True,
) -> PartitionRun:
    """extract -> validate -> safety -> plan -> send (sync, every shard) -> report, as the DAG runs them.

    ``keep_staged_events`` defaults to True here (not the operator's False) so tests can read the files.
    """
    from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
    from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
    from airflow_omnisend.operators.report import OmnisendReportOperator
    from airflow_omnisend.operators.safety import OmnisendAutomationSafetyOperator
    from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
    from airflow_omnisend.operators.validate import OmnisendValidateEventsOperator

    common = {"store_id": SHOP, "partition": day, "staging": str(staging)}
    extract = OmnisendExtractOrdersOperator(
        task_id="extract", timezone=TZ, source_conn_id=source_conn_id, **common
    ).execute({})
    validate = OmnisendValidateEventsOperator(
        task_id="validate", max_reject_ratio=max_reject_ratio, **common
    ).execute({})
    safety = OmnisendAutomationSafetyOperator(
        task_id="safety", omnisend_conn_id=omnisend_conn_id, acknowledge_automations=acknowledge, **common
    ).execute({})
    shards = OmnisendPlanBatchesOperator(
        task_id="plan",
        omnisend_conn_id=omnisend_conn_id,
        dry_run=dry_run,
        min_bodies_per_shard=min_bodies_per_shard,
        **common,
    ).execute({})
    sends = [
        OmnisendSendBatchesOperator(
            task_id="send", shard=shard, omnisend_conn_id=omnisend_conn_id, **FAST_SEND, **common
        ).execute({})
        for shard in shards
    ]
    report = OmnisendReportOperator(
        task_id="report", dry_run=dry_run, keep_staged_events=keep_staged_events, **common
    ).execute({})
    partition = StagingRoot(str(staging)).partition(SHOP, day)
    return PartitionRun(partition, extract, validate, safety, shards, sends, report)


def current_plan(partition: PartitionStaging) -> ChunkPlan:
    return ChunkPlan.from_dict(partition.read_json("plan"))
