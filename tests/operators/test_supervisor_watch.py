"""An orphaned task child (its supervisor SIGKILLed) submits nothing more, and the retry sends each body
once. Real processes: a stand-in supervisor starts the sending child; the child stops after its first
receipt until told to go on (pipes and a FIFO are the signals, no sleeps), the test kills the supervisor,
lets the child go on, and reads the emulator's record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from send_helpers import make_events, stage_valid
from test_send_batches import plan, sender

from airflow_omnisend.events.chunk_plan import ChunkPlan
from airflow_omnisend.exceptions import OmnisendOrphanedTaskError
from airflow_omnisend.operators._supervisor_watch import SupervisorWatch
from airflow_omnisend.operators.receipts import PartitionReceipts
from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator

if TYPE_CHECKING:
    from pathlib import Path

CONN = "omnisend_orphan"
#: the task child: logs to the stand-in supervisor the way Airflow's does (``configure_logging`` over a
#: channel whose reader is the supervisor), sends shard 0, and once the response to its second POST has
#: arrived reports on fd ``report`` and blocks until the FIFO says go; its outcome goes to ``outcome``
CHILD = """
import os, sys
from pathlib import Path
from airflow.sdk.log import configure_logging, reset_logging
from airflow_omnisend.hooks.omnisend import OmnisendHook
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator

root, fifo, outcome = sys.argv[1], sys.argv[3], sys.argv[4]
report_fd, log_fd = int(sys.argv[2]), int(sys.argv[6])
reset_logging()
configure_logging(json_output=True, output=os.fdopen(log_fd, "wb", buffering=0), sending_to_supervisor=True)
original = OmnisendHook._send
posts = []

def send(self, prepared):
    response = original(self, prepared)
    if prepared.method == "POST":
        posts.append(response.status_code)
        if len(posts) == 2:  # the supervisor dies while this POST's answer is on its way in
            os.write(report_fd, f"{os.getppid()}\\n".encode())
            with open(fifo, "rb") as go:  # blocks until the test opens the FIFO and writes
                go.read()
    return response

OmnisendHook._send = send
try:
    OmnisendSendBatchesOperator(
        task_id="send", store_id="acme_store", partition="2024-03-10", shard=0,
        omnisend_conn_id="omnisend_orphan", staging=root, poll_interval=0.02, max_poll_interval=0.2,
        deferrable=False,
    ).execute({})
    Path(outcome).write_text("finished")
except BaseException as exc:
    Path(outcome).write_text(f"{type(exc).__name__}: {exc}")
"""
#: the stand-in supervisor: starts the child with the report and done fds and a log channel it reads
#: (so the channel breaks when it dies), then drains that channel until it is killed
SUPERVISOR = """
import os, subprocess, sys
read_logs, write_logs = os.pipe()
fds = (int(sys.argv[4]), int(sys.argv[7]), write_logs)
child = subprocess.Popen([*sys.argv[1:], str(write_logs)], pass_fds=fds)
os.close(write_logs)
while os.read(read_logs, 65536):
    pass
child.wait()
"""


def test_the_watch_sees_the_parent_change_only_when_it_does() -> None:
    watch = SupervisorWatch()
    assert watch.parent_pid == os.getppid()
    watch.check("body 1")  # the parent is still there
    gone = SupervisorWatch(parent_pid=os.getppid() + 100_000)
    assert gone.orphaned()
    with pytest.raises(OmnisendOrphanedTaskError, match="body 2 is not submitted"):
        gone.check("body 2")


def test_an_orphaned_child_submits_nothing_more_and_the_retry_sends_each_body_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = make_events(120)
    partition = stage_valid(tmp_path / "staging", events)
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.05)) as emu:
        conn = {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key,
                "extra": {"max_items_per_batch": 40}}  # fmt: skip
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
        assert plan(tmp_path / "staging", CONN, min_bodies_per_shard=1000) == [0]
        bodies = [b.body_id for _, b in ChunkPlan.from_dict(partition.read_json("plan")).iter_bodies()]
        assert len(bodies) >= 4
        fifo, outcome = tmp_path / "go.fifo", tmp_path / "outcome"
        os.mkfifo(fifo)
        report_r, report_w = os.pipe()
        done_r, done_w = os.pipe()  # the child holds done_w: EOF on done_r once it has exited
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        command = [sys.executable, str(script), str(tmp_path / "staging"), str(report_w), str(fifo),
                   str(outcome), str(done_w)]  # fmt: skip
        supervisor = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR, *command], pass_fds=(report_w, done_w), start_new_session=True
        )
        os.close(report_w)
        os.close(done_w)
        with os.fdopen(report_r, "rb") as report:
            parent = int(report.readline())  # the child holds with its second POST answered
        assert parent == supervisor.pid
        assert emu.store.request_count(method="POST") == 2
        supervisor.send_signal(signal.SIGKILL)
        assert supervisor.wait(timeout=30) == -signal.SIGKILL
        with open(fifo, "wb") as go:  # now let the orphan go on
            go.write(b"go")
        with os.fdopen(done_r, "rb") as done:
            assert done.read() == b""  # EOF: the child has exited
        assert outcome.read_text().startswith("OmnisendOrphanedTaskError: the task's supervisor process")
        assert emu.store.request_count(method="POST") == 2  # nothing more after the supervisor died
        submitted = PartitionReceipts(partition).all()
        # what it had submitted is recorded, the POST answered as the supervisor died included
        assert sorted(r.body_id for r in submitted) == sorted(bodies[:2])

        sender(tmp_path / "staging", CONN, 0)().execute({})  # the retry
        emu.wait_until_idle()
        assert emu.store.request_count(method="POST") == len(bodies)  # each body once
        assert len({b.batch_id for b in emu.store.batches()}) == len(bodies)
        assert emu.store.duplicate_count() == 0
        assert sorted(e.event_id for e in emu.store.accepted_events()) == sorted(e["eventID"] for e in events)
