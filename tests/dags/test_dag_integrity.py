"""Every DAG in dags/ imports cleanly; the store DAG's shape (tasks, order, pools, mapping, retries,
timetable, params); a broken stores entry is an import error naming it while the good store loads."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from airflow_omnisend.stores import STORES_ENV

if TYPE_CHECKING:
    from airflow.sdk import DAG

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS = REPO_ROOT / "dags"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
GOOD = """\
  - store_id: good
    omnisend_conn_id: omnisend_good
    source_conn_id: shop_good
    timezone: America/New_York
    start_date: "2024-03-01"
"""
BROKEN = """\
  - store_id: broken
    omnisend_conn_id: omnisend_broken
    source_conn_id: shop_broken
    timezone: Europe/Vilnus
    start_date: "2024-03-01"
"""


def dagbag(dag_folder: Path = DAGS) -> Any:
    from airflow.models import DagBag

    return DagBag(dag_folder=str(dag_folder))


@pytest.fixture
def stores_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def write(*entries: str) -> Path:
        path = tmp_path / "stores.yaml"
        path.write_text("stores:\n" + "".join(entries), encoding="utf-8")
        monkeypatch.setenv(STORES_ENV, str(path))
        return path

    return write


@pytest.fixture(scope="module")
def demo_bag() -> Any:
    saved = os.environ.pop(STORES_ENV, None)
    try:
        return dagbag()
    finally:
        if saved is not None:
            os.environ[STORES_ENV] = saved


def test_every_dag_in_dags_imports_without_errors(demo_bag: Any) -> None:
    assert demo_bag.import_errors == {}
    assert set(demo_bag.dag_ids) == {
        "omnisend_orders__demo",
        "omnisend_import_file",
        "omnisend_monthly__demo",
    }


def upstream_ids(dag: DAG, task_id: str) -> set[str]:
    return set(dag.get_task(task_id).upstream_task_ids)


def test_store_dag_tasks_and_order(demo_bag: Any) -> None:
    dag = demo_bag.dags["omnisend_orders__demo"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "extract",
        "validate",
        "automation_safety_check",
        "plan",
        "send",
        "report",
    ]
    chain = ["extract", "validate", "automation_safety_check", "plan", "send", "report"]
    for before, after in itertools.pairwise(chain):
        assert before in upstream_ids(dag, after), (before, after)
    # nothing skips a step: every task's upstreams are earlier steps only
    assert upstream_ids(dag, "extract") == set()  # it resolves the run's partition itself
    assert upstream_ids(dag, "report") >= {"send"}


def test_store_dag_pools_mapping_retries_and_trigger_rules(demo_bag: Any) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    from airflow_omnisend.operators.retry import OmnisendRetryPolicy

    dag = demo_bag.dags["omnisend_orders__demo"]
    pools = {t.task_id: t.pool for t in dag.tasks}
    assert pools == {
        "extract": "default_pool",
        "validate": "default_pool",
        "automation_safety_check": "omnisend_demo",  # calls Omnisend
        "plan": "default_pool",  # reads the connection's limits, no HTTP
        "send": "omnisend_demo",
        "report": "default_pool",
    }
    send = dag.get_task("send")
    assert isinstance(send, MappedOperator)
    assert send.expand_input.value["shard"].operator.task_id == "plan"
    for task in dag.tasks:
        assert task.retries == 3, task.task_id
        assert task.retry_delay == timedelta(seconds=60), task.task_id
        assert isinstance(task.retry_policy, OmnisendRetryPolicy), task.task_id
    assert dag.get_task("report").trigger_rule == "none_failed"
    assert {t.trigger_rule for t in dag.tasks if t.task_id != "report"} == {"all_success"}


def test_store_dag_timetable_params_and_limits(demo_bag: Any) -> None:
    dag = demo_bag.dags["omnisend_orders__demo"]
    timetable = dag.timetable
    assert type(timetable).__name__ == "CronPartitionTimetable"
    assert (timetable.expression, str(timetable.timezone)) == ("0 0 * * *", "Europe/Vilnius")
    assert (timetable.run_offset, timetable.key_format) == (-1, "%Y-%m-%d")
    assert dag.start_date == datetime(2024, 3, 4, tzinfo=ZoneInfo("Europe/Vilnius"))
    # end_date 2024-03-10: its run fires at the next local midnight, and no scheduled run after it
    assert dag.end_date == datetime(2024, 3, 11, tzinfo=ZoneInfo("Europe/Vilnius"))
    assert dag.catchup is False
    assert dag.max_active_runs == 4
    # the trigger form's Partition Key names a manual run's day: no field of its own for it
    params = dag.params.dump()
    assert params == {"dry_run": False, "acknowledge_automations": None}


def test_store_dag_serializes_like_the_dag_processor_does(demo_bag: Any) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id in demo_bag.dag_ids:
        dag = demo_bag.dags[dag_id]
        data = DagSerialization.to_dict(dag)
        restored = DagSerialization.from_dict(json.loads(json.dumps(data)))
        assert {t.task_id for t in restored.tasks} == {t.task_id for t in dag.tasks}
    restored = DagSerialization.from_dict(DagSerialization.to_dict(demo_bag.dags["omnisend_orders__demo"]))
    assert restored.timetable.serialize()["key_format"] == "%Y-%m-%d"


def test_import_file_dag(demo_bag: Any) -> None:
    dag = demo_bag.dags["omnisend_import_file"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "prepare",
        "validate",
        "automation_safety_check",
        "plan",
        "send",
        "report",
    ]
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert set(dag.params.dump()) == {
        "partition",
        "dry_run",
        "acknowledge_automations",
        "path",
        "store_id",
        "omnisend_conn_id",
    }
    assert dag.get_task("report").trigger_rule == "none_failed"


def test_optional_keys_change_the_dag(stores_file: Any, tmp_path: Path) -> None:
    stores_file(
        GOOD.replace('start_date: "2024-03-01"', 'start_date: "2024-03-01"\n    end_date: "2024-03-31"')
        + "    events: [placed order, order refunded]\n"
        "    pool: brand_x\n"
        "    max_active_runs: 1\n"
        "    retries: 1\n"
        "    retry_delay_seconds: 5\n"
        "    max_reject_ratio: 0.5\n",
        "  - store_id: manual\n    omnisend_conn_id: o\n    source_path: /data/orders.ndjson\n"
        "    timezone: UTC\n    start_date: 2024-01-01\n    schedule: null\n",
    )
    bag = dagbag()
    assert bag.import_errors == {}
    good = bag.dags["omnisend_orders__good"]
    order = [t.task_id for t in good.topological_sort()]
    assert order[:3] == ["extract", "select_events", "validate"]
    assert good.get_task("validate").max_reject_ratio == 0.5
    assert good.get_task("select_events").event_names == ("placed order", "order refunded")
    assert {good.get_task("send").pool, good.get_task("automation_safety_check").pool} == {"brand_x"}
    assert good.max_active_runs == 1
    assert {(t.retries, t.retry_delay) for t in good.tasks} == {(1, timedelta(seconds=5))}
    # the run for end_date fires at the next local midnight
    assert good.end_date == datetime(2024, 4, 1, tzinfo=ZoneInfo("America/New_York"))
    manual = bag.dags["omnisend_orders__manual"]
    assert type(manual.timetable).__name__ == "NullTimetable"
    assert manual.get_task("extract").source_path == "/data/orders.ndjson"


def test_broken_entry_is_an_import_error_naming_it_and_the_good_store_loads(stores_file: Any) -> None:
    path = stores_file(GOOD, BROKEN, "  - store_id: Bad-Id\n    omnisend_conn_id: x\n")
    bag = dagbag()
    assert "omnisend_orders__good" in bag.dag_ids
    assert "omnisend_import_file" in bag.dag_ids
    assert "omnisend_orders__broken" not in bag.dag_ids
    assert list(bag.import_errors) == [str(DAGS / "omnisend_orders.py")]
    (error,) = bag.import_errors.values()
    assert error.startswith("OmnisendConfigError: stores file " + str(path))
    assert "omnisend_orders__broken, omnisend_orders__entry_3 did not load" in error
    assert "entry 2 (store 'broken'): field 'timezone': timezone 'Europe/Vilnus'" in error
    assert "Europe/Vilnius" in error  # the fix
    assert "entry 3 (store_id 'Bad-Id', not usable)" in error
    assert "field 'timezone' is missing" in error


def test_unreadable_stores_file_is_one_import_error(stores_file: Any, tmp_path: Path) -> None:
    path = stores_file(GOOD)
    path.write_text("stores: [\n", encoding="utf-8")
    bag = dagbag()
    assert "omnisend_import_file" in bag.dag_ids
    assert not [d for d in bag.dag_ids if d.startswith("omnisend_orders__")]
    assert list(bag.import_errors) == [str(DAGS / "omnisend_orders.py")]  # the monthly example adds none
    assert f"stores file {path} is not valid YAML" in bag.import_errors[str(DAGS / "omnisend_orders.py")]


def test_dag_files_parse_without_db_network_or_other_files(tmp_path: Path) -> None:
    """Running a DAG file reads the stores file (and timezone data) and nothing else: no metadata DB, no
    socket, no connection look-up - what the DAG processor does on every loop."""
    script = f"""
import runpy, sys
import airflow_omnisend.dag_factory  # imports happen before watching
opened = []
def audit(event, args):
    if event == "open" and isinstance(args[0], str) and not args[0].endswith((".py", ".pyc")):
        opened.append(args[0])
    if event in ("socket.connect", "socket.bind", "sqlite3.connect"):
        raise RuntimeError(f"parse-time {{event}}: {{args!r}}")
sys.addaudithook(audit)
dags = runpy.run_path({str(DAGS / "omnisend_orders.py")!r})
dags.update(runpy.run_path({str(DAGS / "omnisend_import_file.py")!r}))
from airflow.sdk import DAG
ids = sorted(k for k, v in dags.items() if isinstance(v, DAG))
assert ids == ["dag", "omnisend_orders__demo"], ids
mine = [p for p in opened if not p.startswith("/usr/share/zoneinfo/")]
assert mine == [{str(DAGS / "stores.yaml")!r}], mine
print("ok")
"""
    env = dict(os.environ)
    env.pop(STORES_ENV, None)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{tmp_path / 'missing' / 'no.db'}"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")


@pytest.mark.e2e
def test_list_import_errors_cli_names_the_broken_store(tmp_path: Path) -> None:
    """What the UI shows: the DAG processor's record in the metadata DB (``airflow dags reserialize``)."""
    stores = tmp_path / "stores.yaml"
    stores.write_text("stores:\n" + GOOD + BROKEN, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            STORES_ENV: str(stores),
        }
    )

    def airflow(*args: str, rc: int = 0) -> str:
        result = subprocess.run(
            [AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == rc, result.stdout + result.stderr
        return result.stdout

    def json_out(text: str) -> Any:
        (line,) = [line for line in text.splitlines() if line.startswith(("[{", "[]"))]  # after log lines
        return json.loads(line)

    airflow("db", "migrate")
    airflow("dags", "reserialize")
    # the command exits 1 when there are import errors
    errors = json_out(airflow("dags", "list-import-errors", "-o", "json", rc=1))
    assert [e["filepath"] for e in errors] == ["omnisend_orders.py"]
    assert "entry 2 (store 'broken'): field 'timezone'" in errors[0]["error"]
    assert "omnisend_orders__broken" in errors[0]["error"]
    listed = {d["dag_id"] for d in json_out(airflow("dags", "list", "-o", "json"))}
    assert listed == {"omnisend_orders__good", "omnisend_import_file", "omnisend_monthly__good"}
    local = json_out(airflow("dags", "list-import-errors", "--local", "-o", "json", rc=1))
    assert "entry 2 (store 'broken')" in local[0]["error"]
