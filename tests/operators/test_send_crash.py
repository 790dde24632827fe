"""Crash safety in real Airflow: a send task killed with SIGKILL resumes without resubmitting.

Every attempt runs in its own process against a migrated SQLite metadata DB in this test's AIRFLOW_HOME,
through Airflow's own in-process task runner (the one ``dag.test()`` uses), so ``task_state_store``,
XCom and the task instance's tries are Airflow's real ones:

* attempt 1 is ``dag.test()`` of a plan -> mapped send DAG (it creates the DagRun);
* attempts 2 and 3 retry the killed task instance *in the same DagRun*, the way the scheduler does
  when a task's process has died: ``TaskInstance.handle_failure`` (try archived, ``up_for_retry``),
  next try number, then the task is run again with the runner ``dag.test()`` uses. (A second
  ``dag.test()`` cannot be the retry: it deletes and recreates the DagRun, and with it the task state
  store scope.)

The DAG file holds the task at a chosen point (after its Nth ``submitted`` / ``finished`` receipt), so
the kill lands exactly there and never while a POST is in flight; the test waits for that point, then
kills the task's process with SIGKILL.

Attempt 1 dies after submitting 3 of the shard's bodies; one of those receipts is then deleted, so only
the task state store knows its batch. Attempt 2 must reconnect to all 3 (no POST for them), submit the
rest, and dies after finishing its first body. Attempt 3 must skip the finished body and reconnect to
all the others: no POST at all. Every body is POSTed exactly once in total.

The same crash and resume runs with staging on ``s3://`` (moto_server on 127.0.0.1, an Airflow AWS
connection): the receipts are objects in the bucket, and the last attempt, with the task state store
emptied, knows the batches from them alone.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from send_helpers import DAY, STORE, make_events, stage_valid

from airflow_omnisend.events.chunk_plan import ChunkPlan
from airflow_omnisend.operators.receipts import PartitionReceipts
from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator
from airflow_omnisend.testing.local_servers import S3Server, ServerUnavailableError, moto_s3_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_omnisend.staging import PartitionStaging

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "omnisend_crash_send"
DAG_FILE = f'''
from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG

from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
from airflow_omnisend.operators.receipts import PartitionReceipts
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator

LOGICAL = datetime(2024, 3, 11, tzinfo=UTC)
HOLD = os.environ.get("OMNISEND_CRASH_HOLD")  # "<receipt status>:<count>"

if HOLD and not getattr(PartitionReceipts, "_crash_hold", False):
    # hold the task right after its Nth receipt with that status: the test kills it there
    status, count = HOLD.split(":")
    written = []
    original = PartitionReceipts.write

    def write_receipt(self, receipt):
        path = original(self, receipt)
        if receipt.status == status:
            written.append(receipt.body_id)
            if len(written) == int(count):
                Path(os.environ["OMNISEND_CRASH_MARKER"]).write_text(str(os.getpid()))
                while True:
                    time.sleep(60)
        return path

    PartitionReceipts.write = write_receipt
    PartitionReceipts._crash_hold = True

with DAG("{DAG_ID}", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC)) as dag:
    shards = OmnisendPlanBatchesOperator(
        task_id="plan", store_id="{STORE}", partition="{DAY}", omnisend_conn_id="omnisend_crash",
        min_bodies_per_shard=1000,
    )
    OmnisendSendBatchesOperator.partial(
        task_id="send", store_id="{STORE}", partition="{DAY}", omnisend_conn_id="omnisend_crash",
        poll_interval=0.05, max_poll_interval=0.2, deferrable=False, retry_delay=timedelta(seconds=0),
    ).expand(shard=shards.output)

if __name__ == "__main__":
    dag.test(logical_date=LOGICAL, run_after=LOGICAL)
'''
RETRY_SCRIPT = '''
"""Retry the killed send task of the existing DagRun as the scheduler would, then run it in-process."""
from __future__ import annotations

import importlib.util
import sys

from sqlalchemy import select

from airflow.models.dagrun import DagRun
from airflow.models.serialized_dag import SerializedDagModel
from airflow.sdk.definitions.dag import _run_task
from airflow.utils.session import create_session
from airflow.utils.state import TaskInstanceState

dag_file, dag_id, task_id = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("crash_dag", dag_file)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)

with create_session() as session:
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id))
    ti = run.get_task_instance(task_id, map_index=0, session=session)
    assert ti.state == TaskInstanceState.RUNNING, ti.state  # its process was killed mid-run
    ti.task = SerializedDagModel.get_dag(dag_id, session=session).get_task(task_id)
    ti.handle_failure("the task process was killed (SIGKILL)", session=session)
    assert ti.state == TaskInstanceState.UP_FOR_RETRY, ti.state
    ti.try_number += 1  # the scheduler picking the retry up (retry_delay 0)
    ti.state = TaskInstanceState.SCHEDULED
    session.merge(ti)
    session.commit()
    session.refresh(ti)

_run_task(ti=ti, task=module.dag.task_dict[task_id])
with create_session() as session:
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id))
    state = run.get_task_instance(task_id, map_index=0, session=session).state
sys.exit(0 if state == TaskInstanceState.SUCCESS else 1)
'''


def _wait_for(
    condition: Callable[[], bool], what: str, timeout: float, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the attempt ended ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_killed_send_task_resumes_without_resubmitting(tmp_path: Path) -> None:
    crash_and_resume(tmp_path, str(tmp_path / "staging"))


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    try:
        with moto_s3_server() as server:
            yield server
    except ServerUnavailableError as exc:
        pytest.skip(f"the s3 staging case needs moto_server: {exc}")


def test_a_killed_send_task_resumes_from_receipts_in_the_bucket(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging on s3:// (moto_server): the attempts read the receipts back from the bucket. Before the
    last attempt the task state store is emptied, so only the bucket's receipts know the batches."""
    for name, value in s3_server.env.items():  # this process reads the bucket through the connection too
        monkeypatch.setenv(name, value)
    partition = crash_and_resume(tmp_path, s3_server.staging_url("crash"), forget_task_state=True)
    assert not (tmp_path / "staging").exists()
    folder = f"crash/{STORE}/{DAY}"
    receipts = s3_server.keys(f"{folder}/receipts/")
    bodies = PartitionReceipts(partition).all()
    assert receipts == sorted(f"{folder}/receipts/{r.body_id}.json" for r in bodies)
    assert not [k for k in s3_server.keys("crash/") if k.endswith(".tmp")]  # no temporary key left


def crash_and_resume(tmp_path: Path, staging: str, *, forget_task_state: bool = False) -> PartitionStaging:
    """Three attempts of the send task (killed after 3 submits, killed after 1 finish, to success) with
    staging at ``staging``; every body POSTed once. Returns the partition."""
    home = tmp_path / "airflow-home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    dag_file = dags / f"{DAG_ID}.py"
    dag_file.write_text(DAG_FILE)
    retry_script = tmp_path / "retry_send.py"
    retry_script.write_text(RETRY_SCRIPT)
    events = make_events(300)
    partition = stage_valid(staging, events)

    with OmnisendEmulator(EmulatorConfig(processing_delay=0.2)) as emu:
        conn = {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key,
                "extra": {"max_items_per_batch": 100}}  # fmt: skip
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW_OMNISEND_STAGING": staging,
            "AIRFLOW_CONN_OMNISEND_CRASH": json.dumps(conn),
        }
        migrate = subprocess.run(
            [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr

        def attempt(number: int, hold: str | None) -> subprocess.Popen[bytes]:
            marker = tmp_path / f"held-{number}"
            extra = {"OMNISEND_CRASH_HOLD": hold, "OMNISEND_CRASH_MARKER": str(marker)} if hold else {}
            command = [sys.executable, str(dag_file)]
            if number > 1:
                command = [sys.executable, str(retry_script), str(dag_file), DAG_ID, "send"]
            with open(tmp_path / f"attempt-{number}.log", "wb") as log:
                proc = subprocess.Popen(
                    command,
                    env={**env, **extra},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if hold:
                _wait_for(marker.exists, f"attempt {number} to reach {hold}", 240, proc)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                assert proc.returncode == -signal.SIGKILL
            return proc

        def posts() -> int:
            return emu.store.request_count(method="POST")

        # attempt 1: killed after 3 bodies are submitted
        attempt(1, "submitted:3")
        bodies = [b.body_id for _, b in ChunkPlan.from_dict(partition.read_json("plan")).iter_bodies()]
        assert len(bodies) >= 6
        receipts = {r.body_id: r for r in PartitionReceipts(partition).all()}
        assert sorted(receipts) == sorted(bodies[:3])
        assert all(r.status == "submitted" for r in receipts.values())
        assert posts() == 3
        with sqlite3.connect(home / "airflow.db") as db:
            stored = dict(
                db.execute(
                    "SELECT key, value FROM task_state_store WHERE dag_id = ? AND task_id = 'send' "
                    "AND map_index = 0",
                    (DAG_ID,),
                ).fetchall()
            )
        assert {f"omnisend_batch:{b}" for b in bodies[:3]} == set(stored)
        for body_id, receipt in receipts.items():
            assert json.loads(stored[f"omnisend_batch:{body_id}"])["batch_id"] == receipt.batch_id
        # the worker died before this receipt reached staging: only the task state store knows the batch
        lost = bodies[1]
        partition.receipt_path(lost).unlink()

        # attempt 2: reconnects to all 3, submits the rest, killed after finishing one body
        attempt(2, "finished:1")
        assert posts() == len(bodies)  # the 3 submitted bodies were not POSTed again
        receipts = {r.body_id: r for r in PartitionReceipts(partition).all()}
        assert sorted(receipts) == sorted(bodies)
        assert receipts[lost].batch_id == json.loads(stored[f"omnisend_batch:{lost}"])["batch_id"]
        statuses = [receipts[b].status for b in bodies]
        assert statuses.count("finished") == 1
        assert statuses.count("submitted") == len(bodies) - 1

        if forget_task_state:
            with sqlite3.connect(home / "airflow.db") as db:
                db.execute("DELETE FROM task_state_store WHERE dag_id = ?", (DAG_ID,))

        # attempt 3: skips the finished body, reconnects to the others, runs to success
        final = attempt(3, None)
        assert final.wait(timeout=300) == 0, (tmp_path / "attempt-3.log").read_text()[-5000:]
        assert posts() == len(bodies)  # every body POSTed exactly once over three attempts
        receipts = {r.body_id: r for r in PartitionReceipts(partition).all()}
        assert all(r.status == "finished" and r.accepted == r.items for r in receipts.values())
        assert len({r.batch_id for r in receipts.values()}) == len(bodies)
        assert {r.batch_id for r in receipts.values()} == {b.batch_id for b in emu.store.batches()}
        accepted = [e.event_id for e in emu.store.accepted_events()]
        assert sorted(accepted) == sorted(e["eventID"] for e in events)
        assert emu.store.duplicate_count() == 0
        with sqlite3.connect(home / "airflow.db") as db:
            states = dict(
                db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ?", (DAG_ID,)).fetchall()
            )
        assert states == {"plan": "success", "send": "success"}
    return partition
