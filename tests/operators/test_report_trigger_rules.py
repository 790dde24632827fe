"""Real Airflow: the report's default trigger rule makes a partition DAG's run state honest.

``dag.test(run_conf=...)`` of a tiny partition DAG (extract -> validate -> safety -> plan ->
send.expand -> report), in a child process against the test session's migrated AIRFLOW_HOME, with the
sample shop behind an Airflow ``sqlite`` connection and the emulator on loopback:

* dry run: plan returns ``[]``, the mapped send is skipped, the report still runs (``none_failed``)
  and the run succeeds;
* a send that fails (a key without ``events.write``: 403, not retryable): the report is
  ``upstream_failed`` and the run fails - so ``backfill --reprocess-behavior failed`` reruns the day;
* a matching enabled automation: safety fails on its first try although it has ``retries=2``;
* a normal run: everything succeeds and the report accounts for every event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pipeline_helpers import SHOP, SHOP_DAY, TZ, automation, sample_shop

from airflow_omnisend.staging import StagingRoot
from airflow_omnisend.testing.emulator import ApiKeyGrant, EmulatorConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "omnisend_trigger_rules"
NO_WRITE_KEY = "automations-read-only-1"
DAG_FILE = f'''
from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
from airflow_omnisend.operators.report import OmnisendReportOperator
from airflow_omnisend.operators.safety import OmnisendAutomationSafetyOperator
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
from airflow_omnisend.operators.validate import OmnisendValidateEventsOperator

COMMON = {{"store_id": "{SHOP}", "partition": "{SHOP_DAY}"}}
CONN = "{{{{ params.conn }}}}"

with DAG(
    "{DAG_ID}",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    params={{"dry_run": False, "conn": "omnisend_ok"}},
) as dag:
    extract = OmnisendExtractOrdersOperator(
        task_id="extract", timezone="{TZ}", source_conn_id="shop_e2e", **COMMON
    )
    validate = OmnisendValidateEventsOperator(task_id="validate", max_reject_ratio=0.05, **COMMON)
    safety = OmnisendAutomationSafetyOperator(
        task_id="safety", omnisend_conn_id=CONN, retries=2, retry_delay=timedelta(0), **COMMON
    )
    plan = OmnisendPlanBatchesOperator(
        task_id="plan", omnisend_conn_id=CONN, dry_run="{{{{ params.dry_run }}}}", **COMMON
    )
    send = OmnisendSendBatchesOperator.partial(
        task_id="send", omnisend_conn_id=CONN, deferrable=False, poll_interval=0.05,
        max_poll_interval=0.2, retries=2, retry_delay=timedelta(0), **COMMON,
    ).expand(shard=plan.output)
    report = OmnisendReportOperator(task_id="report", dry_run="{{{{ params.dry_run }}}}", **COMMON)
    extract >> validate >> safety >> plan >> send >> report

if __name__ == "__main__":
    from sqlalchemy import select

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    results = {{}}
    for name, conf in json.loads(os.environ["OMNISEND_E2E_RUNS"]):
        run = dag.test(run_conf=conf)
        with create_session() as session:
            query = select(TaskInstance).where(
                TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id
            )
            tasks = {{}}
            for ti in session.scalars(query):
                key = ti.task_id if ti.map_index < 0 else f"{{ti.task_id}}[{{ti.map_index}}]"
                tasks[key] = [str(ti.state), ti.try_number]
            results[name] = {{"state": str(run.state), "tasks": tasks}}
    with open(os.environ["OMNISEND_E2E_RESULTS"], "w") as out:
        json.dump(results, out)
'''
RUNS = [
    ("dry_run", {"dry_run": True, "conn": "omnisend_ok"}),
    ("blocked", {"dry_run": False, "conn": "omnisend_blocked"}),
    ("failing_send", {"dry_run": False, "conn": "omnisend_no_write"}),
    ("sent", {"dry_run": False, "conn": "omnisend_ok"}),
]


@pytest.fixture(scope="module")
def migrated_env() -> dict[str, str]:
    """The test session's AIRFLOW_HOME (tests/conftest.py) with its metadata DB migrated."""
    env = dict(os.environ)
    result = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return env


@pytest.fixture
def emulators() -> Iterator[tuple[OmnisendEmulator, OmnisendEmulator]]:
    """One brand without automations (and a key that may not write events), one with a matching flow."""
    grant = ApiKeyGrant(NO_WRITE_KEY, frozenset({"automations.read"}))
    with (
        OmnisendEmulator(EmulatorConfig(processing_delay=0.02, extra_keys=(grant,))) as clean,
        OmnisendEmulator(EmulatorConfig(processing_delay=0.02)) as risky,
    ):
        risky.set_automations([automation("65f0000000000000000000e1", "Order confirmation", "placed order")])
        yield clean, risky


def _connection(emu: OmnisendEmulator, key: str) -> str:
    return json.dumps({"conn_type": "omnisend", "host": emu.base_url, "password": key})


def test_dry_run_skips_send_and_succeeds_a_failed_send_fails_the_run(
    tmp_path: Path, migrated_env: dict[str, str], emulators: tuple[OmnisendEmulator, OmnisendEmulator]
) -> None:
    clean, risky = emulators
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file = dags / f"{DAG_ID}.py"
    dag_file.write_text(DAG_FILE)
    staging = tmp_path / "staging"
    results_file = tmp_path / "results.json"
    env = {
        **migrated_env,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW_OMNISEND_STAGING": str(staging),
        "AIRFLOW_CONN_SHOP_E2E": json.dumps({"conn_type": "sqlite", "host": str(sample_shop(tmp_path))}),
        "AIRFLOW_CONN_OMNISEND_OK": _connection(clean, clean.api_key),
        "AIRFLOW_CONN_OMNISEND_NO_WRITE": _connection(clean, NO_WRITE_KEY),
        "AIRFLOW_CONN_OMNISEND_BLOCKED": _connection(risky, risky.api_key),
        "OMNISEND_E2E_RUNS": json.dumps(RUNS),
        "OMNISEND_E2E_RESULTS": str(results_file),
    }
    log_file = tmp_path / "dag-test.log"
    with open(log_file, "wb") as log:
        proc = subprocess.run(
            [sys.executable, str(dag_file)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=540,
            check=False,
        )
    output = log_file.read_text(errors="replace")
    assert proc.returncode == 0, output[-6000:]
    results: dict[str, Any] = json.loads(results_file.read_text())
    partition = StagingRoot(str(staging)).partition(SHOP, SHOP_DAY)

    dry = results["dry_run"]
    assert dry["state"] == "success", dry
    assert dry["tasks"]["send"] == ["skipped", 0], dry  # mapped over an empty list
    assert dry["tasks"]["report"][0] == "success"

    blocked = results["blocked"]
    assert blocked["state"] == "failed", blocked
    assert blocked["tasks"]["safety"] == ["failed", 1]  # retries=2, yet no second try
    assert blocked["tasks"]["plan"][0] == "upstream_failed"
    assert blocked["tasks"]["report"][0] == "upstream_failed"
    assert "Order confirmation" in output

    failing = results["failing_send"]
    assert failing["state"] == "failed", failing
    sends = {k: v for k, v in failing["tasks"].items() if k.startswith("send[")}
    assert sends
    assert all(state == "failed" and tries == 1 for state, tries in sends.values())  # 403: not retried
    assert failing["tasks"]["report"][0] == "upstream_failed"  # the run cannot end green

    sent = results["sent"]
    assert sent["state"] == "success", sent
    assert all(state == "success" for state, _ in sent["tasks"].values()), sent
    report = partition.read_json("report")
    assert report["dry_run"] is False
    assert report["accounted"] is True
    assert report["events_accepted"] == clean.store.accepted_count() > 0
    assert (
        report["events_accepted"] + report["events_rejected"] + report["events_dead_lettered"]
        == (report["events_extracted"])
    )
    assert risky.store.accepted_count() == 0  # the blocked brand never got an event
