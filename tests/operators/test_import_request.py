"""The import-file DAG's first task: the file, the store and its connection, the partition label."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators.import_request import OmnisendImportRequestOperator, import_allowed_roots
from airflow_omnisend.staging import StagingRoot
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


def _request(stores_path: str, roots: str = "/data,/e.ndjson") -> OmnisendImportRequestOperator:
    return OmnisendImportRequestOperator(
        task_id="prepare", stores_path=stores_path, staging="/srv/staging", import_allowed_roots=roots
    )


def test_a_store_of_the_stores_file_lends_its_connection(stores_path: str) -> None:
    context = _context({"path": " /data/events.ndjson ", "store_id": "demo", "partition": "2024-03-10"})
    result = _request(stores_path).execute(context)  # type: ignore[arg-type]
    assert result == {
        "path": "/data/events.ndjson",
        "store_id": "demo",
        "staging": "file:///srv/staging/file-imports",
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


# -- what an import may read, and where it stages (issue 14 item 5) ----------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/data/../etc/passwd",
        "events.ndjson",
        "../data/events.ndjson",
        "file:///etc/passwd",
        "s3://bucket/events.ndjson",
        "/database",
    ],
)
def test_a_path_outside_the_allowed_roots_is_refused(stores_path: str, path: str) -> None:
    with pytest.raises(OmnisendConfigError, match="import_allowed_roots") as caught:
        _request(stores_path).execute(_context({"path": path}))  # type: ignore[arg-type]
    assert path.rsplit("/", 1)[-1] in str(caught.value)


def test_a_symlink_out_of_a_root_is_refused(stores_path: str, tmp_path: Path) -> None:
    root = tmp_path / "imports"
    root.mkdir()
    (root / "events.ndjson").symlink_to("/etc/passwd")
    with pytest.raises(OmnisendConfigError, match="not under an allowed import root"):
        _request(stores_path, str(root)).execute(_context({"path": str(root / "events.ndjson")}))  # type: ignore[arg-type]


def test_paths_under_a_root_and_url_prefixes_are_allowed(stores_path: str, tmp_path: Path) -> None:
    roots = f"{tmp_path}/imports, s3://aws@bucket/imports"
    inside = f"{tmp_path}/imports/sub/../events.ndjson"
    result = _request(stores_path, roots).execute(_context({"path": inside}))  # type: ignore[arg-type]
    assert result["path"] == f"{tmp_path}/imports/events.ndjson"
    url = "s3://aws@bucket/imports/2024/events.ndjson"
    assert _request(stores_path, roots).execute(_context({"path": url}))["path"] == url  # type: ignore[arg-type]
    with pytest.raises(OmnisendConfigError, match="climbs"):
        _request(stores_path, roots).execute(_context({"path": "s3://aws@bucket/imports/../x"}))  # type: ignore[arg-type]
    with pytest.raises(OmnisendConfigError, match="not under an allowed import root"):
        _request(stores_path, roots).execute(_context({"path": "s3://aws@bucket/importsx/e.ndjson"}))  # type: ignore[arg-type]


def test_default_root_is_under_airflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW__OMNISEND__IMPORT_ALLOWED_ROOTS", raising=False)
    assert import_allowed_roots() == (str(tmp_path.resolve() / "omnisend-imports"),)
    monkeypatch.setenv("AIRFLOW__OMNISEND__IMPORT_ALLOWED_ROOTS", "/a, s3://b/c")
    assert import_allowed_roots() == ("/a", "s3://b/c/")
    with pytest.raises(OmnisendConfigError, match="relative folder 'imports'"):
        import_allowed_roots("imports")


def test_an_import_stages_apart_from_the_store_of_the_same_id(stores_path: str) -> None:
    context = _context({"path": "/data/e.ndjson", "store_id": "demo", "partition": "2024-03-10"})
    result = _request(stores_path).execute(context)  # type: ignore[arg-type]
    imported = StagingRoot(result["staging"]).partition(result["store_id"], result["partition"])
    store_run = StagingRoot("/srv/staging").partition("demo", "2024-03-10")
    assert str(imported.dir) == "file:///srv/staging/file-imports/demo/2024-03-10"
    assert not str(imported.dir).startswith(str(store_run.dir))
    assert not str(store_run.dir).startswith(str(imported.dir))
