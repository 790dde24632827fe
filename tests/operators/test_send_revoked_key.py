"""A store's key revoked mid-send (401): the send task fails at once, without retries, naming the
connection and the fix - in the worker's own sending and polling, after the triggerer's polling, and in
real Airflow (``dag.test()``: the try number stays 1 although the task has retries)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from send_helpers import DAY, STORE, make_events, stage_valid
from test_send_batches import plan, run_deferrable, sender

from airflow_omnisend.exceptions import OmnisendAuthError
from airflow_omnisend.operators.receipts import PartitionReceipts
from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

STORE_B_KEY = "store-b-key-7f3a"
CONN = "omnisend_store_b"


@pytest.fixture
def emu() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.05, extra_keys=(STORE_B_KEY,))) as emulator:
        yield emulator


def _connect_store_b(monkeypatch: pytest.MonkeyPatch, emu: OmnisendEmulator) -> None:
    conn = {"conn_type": "omnisend", "host": emu.base_url, "password": STORE_B_KEY,
            "extra": {"max_items_per_batch": 50}}  # fmt: skip
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))


def _assert_fails_fast(error: BaseException, emu: OmnisendEmulator) -> None:
    assert isinstance(error, AirflowFailException)  # the task runner fails it before looking at retries
    assert isinstance(error, OmnisendAuthError)  # and it is still the typed provider error
    text = str(error)
    assert f"connection {CONN!r}" in text
    assert "revoked" in text
    assert "a new one" in text
    assert "--reprocess-behavior failed" in text
    assert STORE_B_KEY not in text
    assert emu.store.request_count(status=401) == 1  # refused once, never retried


def test_a_key_revoked_between_two_submissions_fails_the_task_at_once(
    tmp_path: Path, emu: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect_store_b(monkeypatch, emu)
    stage_valid(tmp_path, make_events(60))
    shards = plan(tmp_path, CONN)
    original = PartitionReceipts.write

    def revoke_after_first(self: PartitionReceipts, receipt: Any) -> Any:
        path = original(self, receipt)
        emu.set_keys(revoke=[STORE_B_KEY])  # the user deleted the key while the task was sending
        return path

    monkeypatch.setattr(PartitionReceipts, "write", revoke_after_first)
    with pytest.raises(AirflowFailException) as failed:
        sender(tmp_path, CONN, shards[0])().execute({})
    _assert_fails_fast(failed.value, emu)
    assert emu.store.request_count(method="POST", status=201) == 1


def test_a_key_revoked_while_the_triggerer_polls_fails_the_resumed_task(
    tmp_path: Path, emu: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect_store_b(monkeypatch, emu)
    stage_valid(tmp_path, make_events(60))
    shards = plan(tmp_path, CONN)
    make = sender(tmp_path, CONN, shards[0], deferrable=True)
    with pytest.raises(TaskDeferred):
        make().execute({})
    emu.set_keys(revoke=[STORE_B_KEY])
    with pytest.raises(AirflowFailException) as failed:
        run_deferrable(make, {})
    _assert_fails_fast(failed.value, emu)
    assert emu.store.request_log()[-1].path.startswith("/v5/batches")  # the trigger's list read


def test_a_connection_with_a_new_key_finishes_the_shard(
    tmp_path: Path, emu: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented recovery: a new key in the connection, the failed task run again."""
    _connect_store_b(monkeypatch, emu)
    events = make_events(60)
    stage_valid(tmp_path, events)
    shards = plan(tmp_path, CONN)
    emu.set_keys(revoke=[STORE_B_KEY])
    with pytest.raises(AirflowFailException):
        sender(tmp_path, CONN, shards[0])().execute({})
    emu.set_keys(grant=["store-b-key-new"])
    conn = json.loads(os.environ[f"AIRFLOW_CONN_{CONN.upper()}"])
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps({**conn, "password": "store-b-key-new"}))
    for shard in shards:
        sender(tmp_path, CONN, shard)().execute({})
    assert sorted(e.event_id for e in emu.store.accepted_events()) == sorted(e["eventID"] for e in events)


AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "omnisend_revoked_key"
DAG_FILE = f"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator

LOGICAL = datetime(2024, 3, 11, tzinfo=UTC)

with DAG("{DAG_ID}", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC)) as dag:
    shards = OmnisendPlanBatchesOperator(
        task_id="plan", store_id="{STORE}", partition="{DAY}", omnisend_conn_id="{CONN}",
    )
    OmnisendSendBatchesOperator.partial(
        task_id="send", store_id="{STORE}", partition="{DAY}", omnisend_conn_id="{CONN}",
        poll_interval=0.05, max_poll_interval=0.2, deferrable=False, retries=3,
        retry_delay=timedelta(seconds=0), retry_policy=None,
    ).expand(shard=shards.output)

if __name__ == "__main__":
    dag.test(logical_date=LOGICAL, run_after=LOGICAL)
"""


@pytest.mark.e2e
def test_in_airflow_the_send_task_fails_on_its_first_try_naming_the_connection(
    tmp_path: Path, emu: OmnisendEmulator
) -> None:
    """``retries=3`` and no retry policy: only the fail-fast exception keeps the try number at 1."""
    home = tmp_path / "airflow-home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    dag_file = dags / f"{DAG_ID}.py"
    dag_file.write_text(DAG_FILE)
    staging = tmp_path / "staging"
    stage_valid(staging, make_events(30))
    emu.set_keys(revoke=[STORE_B_KEY])
    conn = {"conn_type": "omnisend", "host": emu.base_url, "password": STORE_B_KEY}
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_OMNISEND_STAGING": str(staging),
        f"AIRFLOW_CONN_{CONN.upper()}": json.dumps(conn),
    }
    migrate = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    run = subprocess.run(
        [sys.executable, str(dag_file)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = run.stdout + run.stderr
    with sqlite3.connect(home / "airflow.db") as db:
        tries = dict(
            db.execute(
                "SELECT task_id, state || ':' || try_number FROM task_instance WHERE dag_id = ?", (DAG_ID,)
            ).fetchall()
        )
    assert tries == {"plan": "success:1", "send": "failed:1"}, output[-5000:]
    assert f"Omnisend rejected the API key of connection {CONN!r} (401) on POST /v5/batches" in output
    assert STORE_B_KEY not in output
    assert emu.store.request_count(status=401) == 1
