"""Approval in Airflow's UI, for real: the scheduler parks the approval task, the UI's REST call
answers it, and one approval covers a backfill until an automation changes.

A store with ``approval: ui`` and an enabled "Order confirmation" automation on ``placed order``:

1. a backfill of three days, one run at a time: the first day's ``automation_approval`` waits in
   ``awaiting_input``; "Send anyway" with a reason (``PATCH .../hitlDetails``, what the UI sends) lets it
   finish, the reason and the person in its report; the two later days find the kept approval and ask
   nothing;
2. the automation changes (a new ``updatedAt``): a backfill of the two other days asks again; "Stop"
   fails the first of them, "Send anyway" sends the second;
3. ``--reprocess-behavior failed`` reruns the stopped day alone, which the fresh approval covers.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from e2e_deployment import SHOP_START, E2EWorld, dag_id, diagnosed, e2e_world, emulator_config, store_entry

from airflow_omnisend.operators.approval import SEND_ANYWAY, STOP
from airflow_omnisend.testing.emulator import OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_omnisend.testing.local_airflow import DagRunInfo

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STORE = "e2e_approval"
DAYS = tuple(f"2024-03-0{SHOP_START.day + i}" for i in range(5))
REASON = "The confirmation flow skips orders older than a week (checked by Ann, 2026-12-02)"
CONFIRMATION: dict[str, Any] = {
    "id": "65f0000000000000000000e7",
    "name": "Order confirmation",
    "isEnabled": True,
    "updatedAt": "2026-10-01T08:00:00Z",
    "trigger": {"condition": {"event": "placed order", "origin": "api"}},
}
RUN_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(emulator_config([STORE], processing_delay=0.05)) as emu:
        emu.set_automations([CONFIRMATION])
        yield emu


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, emulator: OmnisendEmulator) -> Iterator[E2EWorld]:
    root = tmp_path_factory.mktemp("approval")
    with e2e_world(root, emulator, [store_entry(STORE, approval="ui")]) as built:
        yield built


def _run_of(world: E2EWorld, day: str) -> DagRunInfo | None:
    runs = [r for r in world.airflow.dag_runs(dag_id(STORE)) if r.partition_key == day]
    return max(runs, key=lambda r: r.run_id) if runs else None


def _parked(world: E2EWorld, run_id: str) -> bool:
    """The scheduler has taken in the park itself (its executor event): an answer before that races
    Airflow 3.3.2's scheduler, which then sees a resumed task "changed externally" and retries it."""
    log = (world.airflow.logs_dir / "scheduler.log").read_text(errors="replace")
    return any(
        "TaskInstance Finished" in line
        and "task_id=automation_approval" in line
        and f"run_id={run_id}," in line
        and "state=awaiting_input" in line
        for line in log.splitlines()
    )


def _awaiting(world: E2EWorld, day: str) -> str:
    """The run id of ``day`` once its approval task waits for a person (and the scheduler knows it)."""

    def probe() -> str | None:
        run = _run_of(world, day)
        if run is None:
            return None
        tis = world.airflow.task_instances(dag_id(STORE), run.run_id)
        waiting = [t for t in tis if t["task_id"] == "automation_approval" and t["state"] == "awaiting_input"]
        return run.run_id if waiting and _parked(world, run.run_id) else None

    return world.airflow.wait_until(f"{day}'s approval to wait", probe, timeout=RUN_TIMEOUT)


def _answer(world: E2EWorld, run_id: str, option: str, reason: str | None = REASON) -> dict[str, Any]:
    """What the UI's form sends: ``PATCH .../taskInstances/<task>/<map index>/hitlDetails``."""
    path = f"/api/v2/dags/{dag_id(STORE)}/dagRuns/{run_id}/taskInstances/automation_approval/-1/hitlDetails"
    answered: dict[str, Any] = world.airflow.api(
        "PATCH", path, {"chosen_options": [option], "params_input": {"reason": reason}}
    )
    return answered


def _report(world: E2EWorld, day: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((world.staging / STORE / day / "report.json").read_text())
    return report


def _states(world: E2EWorld, days: tuple[str, ...]) -> dict[str, str]:
    runs = world.airflow.wait_for_runs(
        dag_id(STORE), count=len(days), predicate=lambda r: r.partition_key in days, timeout=RUN_TIMEOUT
    )
    latest: dict[str, Any] = {}
    for run in runs:
        if run.partition_key not in latest or run.run_id > latest[run.partition_key].run_id:
            latest[str(run.partition_key)] = run
    return {day: run.state for day, run in latest.items()}


def test_one_approval_covers_a_backfill_until_an_automation_changes(
    world: E2EWorld, emulator: OmnisendEmulator
) -> None:
    airflow, dag = world.airflow, dag_id(STORE)
    with diagnosed(world, STORE):
        first = airflow.backfill(dag, DAYS[0], DAYS[2], max_active_runs=1)
        run_id = _awaiting(world, DAYS[0])
        assert not world.batches(STORE)  # nothing sent while it waits
        answered = _answer(world, run_id, SEND_ANYWAY)
        assert answered["chosen_options"] == [SEND_ANYWAY]
        assert _states(world, DAYS[:3]) == dict.fromkeys(DAYS[:3], "success")
        check = _report(world, DAYS[0])["automation_check"]
        assert check["outcome"] == "approved"
        assert REASON in check["reason"]
        for later in DAYS[1:3]:
            assert _report(world, later)["automation_check"]["outcome"] == "approved"
            assert "kept until" in _report(world, later)["automation_check"]["reason"]
        airflow.wait_for_backfill(first, timeout=RUN_TIMEOUT)

        emulator.set_automations([{**CONFIRMATION, "updatedAt": "2026-12-01T00:00:00Z"}])
        second = airflow.backfill(dag, DAYS[3], DAYS[4], max_active_runs=1)
        _answer(world, _awaiting(world, DAYS[3]), STOP)
        _answer(world, _awaiting(world, DAYS[4]), SEND_ANYWAY)
        assert _states(world, DAYS[3:]) == {DAYS[3]: "failed", DAYS[4]: "success"}
        airflow.wait_for_backfill(second, timeout=RUN_TIMEOUT)

        airflow.backfill(dag, DAYS[3], DAYS[4], reprocess_behavior="failed")

        airflow.wait_until(f"{DAYS[3]} rerun", lambda: _report_outcome(world, DAYS[3]), timeout=RUN_TIMEOUT)
        assert _report(world, DAYS[3])["automation_check"]["outcome"] == "approved"
        accepted = world.accepted(world.batches(STORE))
        assert len(accepted) == len(set(accepted))  # nothing twice
        valid = world.valid_events(STORE, DAYS)
        assert set(accepted) == set().union(*valid.values())


def _report_outcome(world: E2EWorld, day: str) -> str | None:
    path = world.staging / STORE / day / "report.json"
    return "done" if path.exists() else None
