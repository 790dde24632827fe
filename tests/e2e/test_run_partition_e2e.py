"""The period and the note of real runs: the scheduler, the REST calls the UI makes, the emulator.

* A run triggered with Airflow's Partition Key (what the trigger form's Advanced Options field sends)
  carries its day as its partition key; one triggered as the CLI does, with the conf's ``partition``
  and no key, processes that day too, and its note says the conf named it.
* An acknowledged run (conf ``acknowledge_automations``) and approved runs (``approval: ui``: "Send
  anyway", then the kept approval on the next day) get a note saying who and why
  (:mod:`airflow_omnisend.run_notes`, a DagRun listener in the scheduler).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pytest
from e2e_deployment import SHOP_START, E2EWorld, dag_id, diagnosed, e2e_world, emulator_config, store_entry

from airflow_omnisend.operators.approval import SEND_ANYWAY
from airflow_omnisend.run_notes import NOTE_MARK, OmnisendRunNotesPlugin
from airflow_omnisend.testing.emulator import OmnisendEmulator
from airflow_omnisend.testing.local_airflow import ADMIN_USER

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_omnisend.testing.local_airflow import DagRunInfo

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ACK = "e2e_notes_ack"
UI = "e2e_notes_ui"
DAY_KEY, DAY_CONF = (f"2024-03-0{SHOP_START.day + i}" for i in (1, 2))
REASON = "The confirmation flow skips orders older than a week (checked by Ann, 2026-12-02)"
CONFIRMATION: dict[str, Any] = {
    "id": "65f0000000000000000000e8",
    "name": "Order confirmation",
    "isEnabled": True,
    "updatedAt": "2026-10-01T08:00:00Z",
    "trigger": {"condition": {"event": "placed order", "origin": "api"}},
}
RUN_TIMEOUT = 300.0


def _install_plugin(home: Path) -> None:
    """The provider registers the plugin through its ``airflow.plugins`` entry point; a checkout whose
    installed metadata predates it gets the same class from the deployment's plugins folder."""
    names = {e.name for e in entry_points(group="airflow.plugins")}
    if OmnisendRunNotesPlugin.name in names:
        return
    plugins = home / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "omnisend_run_notes.py").write_text(
        "from airflow_omnisend.run_notes import OmnisendRunNotesPlugin  # noqa: F401\n"
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EWorld]:
    root = tmp_path_factory.mktemp("run-notes")
    _install_plugin(root / "airflow-home")
    with OmnisendEmulator(emulator_config([ACK, UI], processing_delay=0.05)) as emu:
        emu.set_automations([CONFIRMATION])
        stores = [store_entry(ACK), store_entry(UI, approval="ui")]
        with e2e_world(root, emu, stores) as built:
            yield built


def _trigger(world: E2EWorld, store: str, body: dict[str, Any]) -> str:
    """``POST /api/v2/dags/<dag>/dagRuns``, as the UI's trigger form (or ``dags trigger``) sends it."""
    run: dict[str, Any] = world.airflow.api(
        "POST", f"/api/v2/dags/{dag_id(store)}/dagRuns", {"logical_date": None, **body}
    )
    return str(run["dag_run_id"])


def _ended(world: E2EWorld, store: str, run_ids: set[str]) -> dict[str, DagRunInfo]:
    runs = world.airflow.wait_for_runs(
        dag_id(store), count=len(run_ids), predicate=lambda r: r.run_id in run_ids, timeout=RUN_TIMEOUT
    )
    return {r.run_id: r for r in runs}


def _note(world: E2EWorld, store: str, run_id: str) -> str:
    run = world.airflow.api("GET", f"/api/v2/dags/{dag_id(store)}/dagRuns/{run_id}")
    return str(run.get("note") or "")


def test_the_partition_key_names_the_day_and_the_conf_still_does(world: E2EWorld) -> None:
    conf = {"acknowledge_automations": REASON}
    with diagnosed(world, ACK):
        keyed = _trigger(world, ACK, {"partition_key": DAY_KEY, "conf": conf})
        named = _trigger(world, ACK, {"conf": {**conf, "partition": DAY_CONF}})
        runs = _ended(world, ACK, {keyed, named})
        assert {r.state for r in runs.values()} == {"success"}
        assert runs[keyed].partition_key == DAY_KEY
        assert runs[named].partition_key is None
        assert world.extracted_count(ACK, DAY_KEY) > 0
        assert world.extracted_count(ACK, DAY_CONF) > 0
        acknowledged = f"automations ACKNOWLEDGED by {ADMIN_USER} (conf acknowledge_automations): {REASON}"
        assert _note(world, ACK, keyed) == f"{NOTE_MARK} {acknowledged}"
        note = _note(world, ACK, named)
        assert note.startswith(f"{NOTE_MARK} period {DAY_CONF}, named by the run conf 'partition'")
        assert note.endswith(acknowledged)


def _answer_when_asked(world: E2EWorld, run_id: str) -> None:
    """Answer "Send anyway" once the approval task waits and the scheduler knows it (see
    tests/e2e/test_approval_e2e.py: an earlier answer races Airflow 3.3.2's scheduler)."""
    airflow = world.airflow

    def parked() -> bool:
        tis = airflow.task_instances(dag_id(UI), run_id)
        waiting = any(t["task_id"] == "automation_approval" and t["state"] == "awaiting_input" for t in tis)
        log = (airflow.logs_dir / "scheduler.log").read_text(errors="replace")
        return waiting and any(
            "TaskInstance Finished" in line
            and "task_id=automation_approval" in line
            and f"run_id={run_id}," in line
            and "state=awaiting_input" in line
            for line in log.splitlines()
        )

    airflow.wait_until(f"{run_id}'s approval to wait", parked, timeout=RUN_TIMEOUT)
    path = f"/api/v2/dags/{dag_id(UI)}/dagRuns/{run_id}/taskInstances/automation_approval/-1/hitlDetails"
    airflow.api("PATCH", path, {"chosen_options": [SEND_ANYWAY], "params_input": {"reason": REASON}})


def test_approved_days_say_who_approved_and_why(world: E2EWorld) -> None:
    with diagnosed(world, UI):
        first = _trigger(world, UI, {"partition_key": DAY_KEY})
        _answer_when_asked(world, first)
        assert _ended(world, UI, {first})[first].state == "success"
        second = _trigger(world, UI, {"partition_key": DAY_CONF})
        assert _ended(world, UI, {second})[second].state == "success"
        assert _note(world, UI, first) == f"{NOTE_MARK} APPROVED in the UI by {ADMIN_USER}: {REASON}"
        note = _note(world, UI, second)
        assert note.startswith(f"{NOTE_MARK} APPROVED by a kept approval ({ADMIN_USER}, 20")
        assert note.endswith(f"): {REASON}")


def test_a_person_s_note_stays_when_the_run_is_cleared(world: E2EWorld) -> None:
    """A rerun writes the note again at each state change, but never over what a person wrote."""
    airflow, dag = world.airflow, dag_id(ACK)
    (keyed,) = [r for r in airflow.dag_runs(dag) if r.partition_key == DAY_KEY]
    mine = "Checked by Ann: the batch receipts match the shop's totals"
    with diagnosed(world, ACK):
        airflow.api("PATCH", f"/api/v2/dags/{dag}/dagRuns/{keyed.run_id}", {"note": mine})
        airflow.api(
            "POST",
            f"/api/v2/dags/{dag}/clearTaskInstances",
            {"dag_run_id": keyed.run_id, "dry_run": False, "only_failed": False, "reset_dag_runs": True},
        )
        rerun = airflow.wait_for_runs(
            dag,
            count=1,
            predicate=lambda r: r.run_id == keyed.run_id and r.end_date != keyed.end_date,
            timeout=RUN_TIMEOUT,
        )
        assert rerun[0].state == "success"
        assert _note(world, ACK, keyed.run_id) == mine
