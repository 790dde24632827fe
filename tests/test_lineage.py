"""OpenLineage of the extract and send steps: the operators' methods return the datasets and counts.

A partition runs for real (sample shop behind an Airflow SQLite connection, the Omnisend emulator); the
methods are then called as the OpenLineage listener calls them. Without OpenLineage installed (simulated
in a subprocess) the operators still import and the methods return ``None``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from openlineage.client.serde import Serde
from operators.pipeline_helpers import SHOP, TZ, run_partition, sample_shop, sqlite_connection
from operators.send_helpers import connect

from airflow_omnisend.lineage import location_dataset, omnisend_dataset, sql_datasets
from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
from airflow_omnisend.sources import SqlQueries

if TYPE_CHECKING:
    from airflow_omnisend.testing.emulator import OmnisendEmulator

REPO = Path(__file__).resolve().parent.parent
TABLES = ["order_lines", "orders", "refund_lines", "refunds"]
DAY = "2024-03-26"


def as_json(lineage: Any) -> str:
    """Every dataset and facet of an OperatorLineage, as OpenLineage serialises them."""
    return json.dumps([json.loads(Serde.to_json(d)) for d in [*lineage.inputs, *lineage.outputs]])


def rows(dataset: Any) -> int | None:
    stats = dataset.outputFacets.get("outputStatistics")
    return None if stats is None else stats.rowCount


@pytest.mark.integration
def test_a_partition_s_lineage_runs_from_the_tables_to_the_brand_s_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, omnisend_emulator: OmnisendEmulator
) -> None:
    db = sample_shop(tmp_path)
    conn_id = sqlite_connection(monkeypatch, db)
    omnisend = connect(monkeypatch, omnisend_emulator)
    run = run_partition(tmp_path / "staging", source_conn_id=conn_id, omnisend_conn_id=omnisend, day=DAY)
    common = {"store_id": SHOP, "partition": DAY, "staging": str(tmp_path / "staging")}

    extract = OmnisendExtractOrdersOperator(task_id="extract", timezone=TZ, source_conn_id=conn_id, **common)
    lineage = extract.get_openlineage_facets_on_complete(None)
    assert lineage is not None
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (f"sqlite://{db}", f"main.{table}") for table in TABLES
    ]
    [events] = lineage.outputs
    assert (events.namespace, events.name) == ("file", run.partition.events.path)
    assert rows(events) == run.extract["counts"]["events"] > 0
    assert events.outputFacets["outputStatistics"].size == run.partition.events.stat().st_size
    failed = extract.get_openlineage_facets_on_failure(None)
    assert failed is not None
    assert rows(failed.outputs[0]) is None  # no counts of a failed extraction
    assert failed.inputs == lineage.inputs

    accepted = 0
    for shard, sent in zip(run.shards, run.sends, strict=True):
        send = OmnisendSendBatchesOperator(task_id="send", shard=shard, omnisend_conn_id=omnisend, **common)
        shard_lineage = send.get_openlineage_facets_on_complete(None)
        assert shard_lineage is not None
        [bodies] = shard_lineage.inputs
        assert (bodies.namespace, bodies.name) == ("file", run.partition.shard(shard).path)
        [brand] = shard_lineage.outputs
        host = omnisend_emulator.base_url.split("://", 1)[1].rstrip("/")
        assert (brand.namespace, brand.name) == (f"omnisend://{host}", f"brands/{SHOP}/events")
        assert rows(brand) == sent["accepted"]
        accepted += rows(brand) or 0
        text = as_json(shard_lineage)
        assert omnisend_emulator.api_key not in text
    report = run.partition.read_json("report")
    assert accepted == report["events_accepted"] == len(omnisend_emulator.store.accepted_events())


def test_sql_namespaces_carry_host_and_port_never_the_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_PG", "postgresql://shop:pg-s3cret-pw@db.shop.invalid:5433/shopdb")
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_MY", "mysql://shop:my-s3cret-pw@mysql.shop.invalid/shopdb")
    pg = sql_datasets("shop_pg", None)
    assert [(d.namespace, d.name) for d in pg] == [
        ("postgres://db.shop.invalid:5433", f"shopdb.public.{table}") for table in TABLES
    ]
    default = SqlQueries.default("postgres")
    custom = dataclasses.replace(default, placed=default.placed.replace("FROM orders", "FROM sales.orders"))
    assert "shopdb.sales.orders" in {d.name for d in sql_datasets("shop_pg", custom)}
    my = sql_datasets("shop_my", None)
    assert [(d.namespace, d.name) for d in my] == [
        ("mysql://mysql.shop.invalid:3306", f"shopdb.{table}") for table in TABLES
    ]
    text = json.dumps([json.loads(Serde.to_json(d)) for d in [*pg, *my]])
    assert "s3cret" not in text
    assert "shop:" not in text


def test_file_sources_and_object_storage_urls() -> None:
    remote = location_dataset("s3://aws_shop@exports-bucket/shop/orders.ndjson")
    assert (remote.namespace, remote.name) == ("s3://exports-bucket", "shop/orders.ndjson")
    local = location_dataset("file:///srv/exports/orders.csv")
    assert (local.namespace, local.name) == ("file", "/srv/exports/orders.csv")
    brand = omnisend_dataset("https://user:key@api.omnisend.invalid/v5", "acme")
    assert (brand.namespace, brand.name) == ("omnisend://api.omnisend.invalid", "brands/acme/events")


def test_a_csv_folder_source_lists_its_tables(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("orders.csv", "refunds.csv"):
        (folder / name).write_text("order_id\n", encoding="utf-8")
    extract = OmnisendExtractOrdersOperator(
        task_id="extract", timezone=TZ, source_path=str(folder), store_id=SHOP, partition=DAY,
        staging=str(tmp_path / "staging"),
    )  # fmt: skip
    lineage = extract.get_openlineage_facets_on_complete(None)  # never ran: no extract.json, no counts
    assert lineage is not None
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("file", str(folder / "orders.csv")),
        ("file", str(folder / "refunds.csv")),
    ]
    assert rows(lineage.outputs[0]) is None


NO_OPENLINEAGE = """
import sys
for name in ("openlineage", "openlineage_sql", "airflow.providers.openlineage.extractors",
             "airflow.providers.common.compat.openlineage"):
    sys.modules[name] = None  # importing it or any submodule raises ImportError
from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
common = {"store_id": "acme", "partition": "2024-03-26", "staging": sys.argv[1]}
extract = OmnisendExtractOrdersOperator(task_id="e", timezone="UTC", source_conn_id="shop", **common)
send = OmnisendSendBatchesOperator(task_id="s", shard=0, **common)
print([op.get_openlineage_facets_on_complete(None) for op in (extract, send)],
      [op.get_openlineage_facets_on_failure(None) for op in (extract, send)])
"""


def test_without_openlineage_the_operators_import_and_return_none(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", NO_OPENLINEAGE, str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[None, None] [None, None]"
