"""OpenLineage in a real run: ``airflow dags test`` of the demo store against the emulator, with the
OpenLineage provider's own ``file`` transport (openlineage-python ``FileConfig``: ``log_file_path``,
``append``), then the same run with OpenLineage not configured.

Proves that the extract task's COMPLETE event names the shop's tables and the staged events with their
row count, that each send task's names its shard bodies and the brand's Omnisend events with the accepted
count, that the API key is in no event (SQL passwords: tests/test_lineage.py), and that without a
transport the provider logs no OpenLineage error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from airflow_omnisend.stores import STORES_ENV
from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "omnisend_orders__demo"
DAY = "2024-03-26"
NAMESPACE = "omnisend-lineage-test"
TABLES = ["order_lines", "orders", "refund_lines", "refunds"]
STORES = """\
stores:
  - store_id: demo
    omnisend_conn_id: omnisend_demo
    source_conn_id: shop_demo
    timezone: Europe/Vilnius
    start_date: "2024-03-04"
    max_reject_ratio: 0.1
    pool: omnisend_demo_never_created
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("openlineage-e2e")
    shop = root / "shop.sqlite"
    build_sample_store(shop, orders=300, seed=7, timezone="Europe/Vilnius", start="2024-03-25", days=7)
    stores = root / "stores.yaml"
    stores.write_text(STORES, encoding="utf-8")
    env = dict(os.environ)
    env.update(
        {
            STORES_ENV: str(stores),
            "AIRFLOW_OMNISEND_STAGING": str(root / "staging"),
            "AIRFLOW_CONN_SHOP_DEMO": json.dumps({"conn_type": "sqlite", "host": str(shop)}),
        }
    )
    migrate = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    return {"root": root, "shop": shop, "staging": root / "staging", "env": env}


@pytest.fixture
def emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.02)) as emu:
        yield emu


def dags_test(
    workspace: dict[str, Any], emu: OmnisendEmulator, day: str, lineage: Path | None
) -> subprocess.CompletedProcess[str]:
    env = dict(workspace["env"])
    env["AIRFLOW_CONN_OMNISEND_DEMO"] = json.dumps(
        {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key}
    )
    for name in ("AIRFLOW__OPENLINEAGE__TRANSPORT", "AIRFLOW__OPENLINEAGE__NAMESPACE", "OPENLINEAGE_URL"):
        env.pop(name, None)
    if lineage is not None:
        env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
            {"type": "file", "log_file_path": str(lineage), "append": True}
        )
        env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = NAMESPACE
    args = [AIRFLOW, "dags", "test", DAG_ID, "-c", json.dumps({"partition": day})]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)


def completes(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The COMPLETE run events of the file, by job name (``<dag_id>.<task_id>``)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for line in path.read_bytes().splitlines():
        event = orjson.loads(line)
        if event.get("eventType") == "COMPLETE" and "job" in event:
            found.setdefault(event["job"]["name"], []).append(event)
    return found


def rows(dataset: dict[str, Any]) -> int | None:
    stats = dataset.get("outputFacets", {}).get("outputStatistics")
    return None if stats is None else stats["rowCount"]


def test_a_run_emits_the_lineage_of_extract_and_send(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    lineage = workspace["root"] / "lineage.ndjson"
    result = dags_test(workspace, emulator, DAY, lineage)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    partition = Path(workspace["staging"]) / "demo" / DAY
    report = json.loads((partition / "report.json").read_text())
    events = completes(lineage)
    assert all(e["job"]["namespace"] == NAMESPACE for runs in events.values() for e in runs)

    [extract] = events[f"{DAG_ID}.extract"]
    assert [(d["namespace"], d["name"]) for d in extract["inputs"]] == [
        (f"sqlite://{workspace['shop']}", f"main.{table}") for table in TABLES
    ]
    [staged] = extract["outputs"]
    assert (staged["namespace"], staged["name"]) == ("file", str(partition / "events.ndjson"))
    assert rows(staged) == report["events_extracted"] > 0

    sends = events[f"{DAG_ID}.send"]
    host = emulator.base_url.split("://", 1)[1].rstrip("/")
    accepted = 0
    for send in sends:
        [bodies] = send["inputs"]
        assert bodies["namespace"] == "file"
        assert bodies["name"].startswith(str(partition / "bodies"))
        [brand] = send["outputs"]
        assert (brand["namespace"], brand["name"]) == (f"omnisend://{host}", "brands/demo/events")
        accepted += rows(brand) or 0
    assert accepted == report["events_accepted"] == len(emulator.store.accepted_events()) > 0

    text = lineage.read_text(encoding="utf-8")
    assert emulator.api_key not in text
    assert "password" not in text.lower()


def test_without_openlineage_configured_nothing_is_emitted_and_nothing_is_logged_as_an_error(
    workspace: dict[str, Any], emulator: OmnisendEmulator
) -> None:
    result = dags_test(workspace, emulator, "2024-03-27", None)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    output = result.stdout + result.stderr
    problems = [
        line
        for line in output.splitlines()
        if ("providers.openlineage" in line or "OpenLineage" in line)
        and any(w in line for w in ("ERROR", "error", "Traceback", "warning"))
    ]
    assert problems == []
    assert "emitted OpenLineage" not in output  # not configured: the listener sends nothing
