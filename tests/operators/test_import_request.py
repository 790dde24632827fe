"""The import-file DAG's first task: the file, the store and its connection, the partition label."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators.import_request import OmnisendImportRequestOperator
from airflow_omnisend.stores import STORES_ENV

if TYPE_CHECKING:
    from pathlib import Path

STORES = """\
stores:
  - store_id: demo
    omnisend_conn_id: omnisend_demo
    source_conn_id: shop_demo
    timezone: Europe/Vilnius
    start_date: "2024-03-04"
"""


class _TI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _context(conf: dict[str, Any]) -> dict[str, Any]:
    dag_run = SimpleNamespace(dag_id="omnisend_import_file", conf=conf)
    params = {"partition": None, "dry_run": False, "acknowledge_automations": None, "path": None,
              "store_id": "file_import", "omnisend_conn_id": None}  # fmt: skip
    return {"dag_run": dag_run, "params": params, "ti": _TI()}


@pytest.fixture
def stores_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv(STORES_ENV, raising=False)
    path = tmp_path / "stores.yaml"
    path.write_text(STORES, encoding="utf-8")
    return str(path)


def _request(stores_path: str) -> OmnisendImportRequestOperator:
    return OmnisendImportRequestOperator(task_id="prepare", stores_path=stores_path)


def test_a_store_of_the_stores_file_lends_its_connection(stores_path: str) -> None:
    context = _context({"path": " /data/events.ndjson ", "store_id": "demo", "partition": "2024-03-10"})
    result = _request(stores_path).execute(context)  # type: ignore[arg-type]
    assert result == {
        "path": "/data/events.ndjson",
        "store_id": "demo",
        "omnisend_conn_id": "omnisend_demo",
        "partition": "2024-03-10",
        "dry_run": False,
        "acknowledge_automations": None,
    }
    assert context["ti"].pushed == result


def test_defaults_the_store_connection_and_label(stores_path: str) -> None:
    result = _request(stores_path).execute(_context({"path": "/data/events.ndjson"}))  # type: ignore[arg-type]
    assert (result["store_id"], result["omnisend_conn_id"]) == ("file_import", "omnisend_default")
    assert result["partition"] == datetime.now(UTC).date().isoformat()
    named = _context({"path": "/e.ndjson", "store_id": "demo", "omnisend_conn_id": "other"})
    assert _request(stores_path).execute(named)["omnisend_conn_id"] == "other"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({}, "name the NDJSON file of events to import"),
        ({"path": "/e.ndjson", "store_id": "Bad-Id"}, "store_id 'Bad-Id' cannot name a store"),
        ({"path": "/e.ndjson", "partition": "2024-3-1"}, "is not a day in the form YYYY-MM-DD"),
        ({"path": "/e.ndjson", "acknowledge_automations": "yes"}, "says yes but not why"),
    ],
)
def test_refuses_a_request_it_cannot_carry_out(stores_path: str, conf: dict[str, Any], message: str) -> None:
    with pytest.raises(OmnisendConfigError, match=message):
        _request(stores_path).execute(_context(conf))  # type: ignore[arg-type]
