"""The real scheduler (LocalExecutor, SQLite) backfills the store DAGs, and reruns exactly the failed day.

One local deployment (api-server, scheduler, dag-processor, triggerer) runs ``dags/omnisend_orders.py``
with two stores on the same sample shop, each sending to the in-process emulator with its own API key
(so the emulator's batches say which store sent them):

* ``e2e_fault``: the emulator refuses (persistent 503) every batch with an event in the store-local
  window of the middle day of its three, so that day's send task exhausts its retries (the hook's own
  503 retries take about a minute per try) while the other two days succeed. With the fault removed,
  ``--reprocess-behavior failed`` runs that day again - and only that day (run ids, start dates and
  the emulator's batches say so) - and in the end every valid event of the three days is in the
  emulator exactly once.
* ``e2e_ok``: ``airflow backfill create`` over three other days completes, every run succeeds and the
  emulator holds every valid event of those days, once. It runs while ``e2e_fault``'s first backfill is
  still exhausting its retries: the two stores' days differ on the refused day, the scheduler runs both
  DAGs at once, and the minutes overlap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from e2e_deployment import (
    E2EWorld,
    by_partition,
    dag_id,
    diagnosed,
    e2e_world,
    emulator_config,
    local_day_window,
    store_entry,
)

from airflow_omnisend.testing.emulator import FaultConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_omnisend.testing.local_airflow import DagRunInfo

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

OK_STORE, OK_DAYS = "e2e_ok", ("2024-03-04", "2024-03-05", "2024-03-06")
FAULT_STORE, FAULT_DAYS = "e2e_fault", ("2024-03-06", "2024-03-07", "2024-03-08")
BAD_DAY = FAULT_DAYS[1]
RUN_TIMEOUT = 420.0  # a failing day: 2 tries x the hook's own ~1 minute of 503 retries, plus scheduling


@pytest.fixture(scope="module")
def emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(emulator_config([OK_STORE, FAULT_STORE], processing_delay=0.2)) as emu:
        yield emu


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, emulator: OmnisendEmulator) -> Iterator[E2EWorld]:
    root = tmp_path_factory.mktemp("scheduler-backfill")
    with e2e_world(root, emulator, [store_entry(OK_STORE), store_entry(FAULT_STORE)]) as built:
        yield built


@pytest.fixture(scope="module")
def fault_backfill(world: E2EWorld) -> int:
    """The fault store's first backfill, started as soon as the deployment is up with its middle day
    refused (its retries take minutes; the other store's test runs meanwhile). Returns its id."""
    assert BAD_DAY not in OK_DAYS, "the refused window must not touch e2e_ok's days"
    world.emulator.set_faults(FaultConfig(refuse_event_windows=(local_day_window(BAD_DAY),)))
    return world.airflow.backfill(dag_id(FAULT_STORE), FAULT_DAYS[0], FAULT_DAYS[-1])


def test_backfill_of_three_days_completes(world: E2EWorld, fault_backfill: int) -> None:
    airflow, dag = world.airflow, dag_id(OK_STORE)
    with diagnosed(world, OK_STORE):
        airflow.backfill(dag, OK_DAYS[0], OK_DAYS[-1])
        runs = airflow.wait_for_runs(dag, count=len(OK_DAYS), timeout=RUN_TIMEOUT)

        assert {r.partition_key: r.state for r in runs} == dict.fromkeys(OK_DAYS, "success")
        assert {r.run_type for r in runs} == {"backfill"}
        for ti in airflow.task_instances(dag):
            assert (ti["state"], ti["try_number"]) == ("success", 1), ti

        valid = world.valid_events(OK_STORE, OK_DAYS)
        for day in OK_DAYS:
            assert valid[day], f"{day}: no valid event: the sample shop should have orders that day"
            assert world.extracted_count(OK_STORE, day) >= len(valid[day])
            assert (world.staging / OK_STORE / day / "report.json").is_file()
        sent = world.accepted(world.batches(OK_STORE))
        assert len(sent) == len(set(sent))
        assert set(sent) == set().union(*valid.values())
        assert world.emulator.store.duplicate_count() == 0


def _unchanged(run: DagRunInfo) -> tuple[str, str | None, str | None]:
    return run.state, run.start_date, run.end_date


def test_failed_day_reruns_alone_once_the_fault_is_gone(world: E2EWorld, fault_backfill: int) -> None:
    airflow, dag, emulator = world.airflow, dag_id(FAULT_STORE), world.emulator
    good_days = (FAULT_DAYS[0], FAULT_DAYS[2])
    with diagnosed(world, FAULT_STORE):
        # 1. three days, the middle one refused: it fails after its retries, the others succeed
        runs = airflow.wait_for_runs(dag, count=len(FAULT_DAYS), timeout=RUN_TIMEOUT)
        assert {r.partition_key: r.state for r in runs} == {
            good_days[0]: "success",
            BAD_DAY: "failed",
            good_days[1]: "success",
        }
        bad_run = by_partition(runs)[BAD_DAY][0]
        sends = [t for t in airflow.task_instances(dag, bad_run.run_id) if t["task_id"] == "send"]
        assert sends, "the failed day never reached its send task"
        assert {(t["state"], t["try_number"]) for t in sends} == {("failed", 2)}, "retries not exhausted"
        refused = [r for r in emulator.store.request_log() if r.fault == "refused-window"]
        assert len(refused) >= 2, "the emulator refused fewer POSTs than the send task had tries"
        valid = world.valid_events(FAULT_STORE, FAULT_DAYS)
        first_batches = world.batches(FAULT_STORE)
        sent_first = set(world.accepted(first_batches))
        assert sent_first == valid[good_days[0]] | valid[good_days[1]], "the good days were not sent whole"

        # 2. the fault is gone; Airflow allows one active backfill per DAG, so wait for this one to end
        emulator.set_faults(FaultConfig())
        airflow.wait_for_backfill(fault_backfill, timeout=120)
        before = {r.run_id: _unchanged(r) for r in airflow.dag_runs(dag)}
        airflow.backfill(dag, FAULT_DAYS[0], FAULT_DAYS[-1], reprocess_behavior="failed")

        def rerun_finished() -> list[DagRunInfo] | None:
            runs = airflow.dag_runs(dag)
            fresh = [r for r in runs if before.get(r.run_id) != _unchanged(r)]
            return runs if fresh and all(r.terminal for r in runs) else None

        after = airflow.wait_until("the failed day's rerun", rerun_finished, timeout=RUN_TIMEOUT)

        # 3. only the failed day ran again, and it succeeded; the good days' runs were not touched
        fresh = [r for r in after if before.get(r.run_id) != _unchanged(r)]
        assert [(r.partition_key, r.state) for r in fresh] == [(BAD_DAY, "success")]
        untouched = {r.run_id: _unchanged(r) for r in after if r.partition_key in good_days}
        assert untouched == {rid: s for rid, s in before.items() if rid in untouched}
        assert len(untouched) == len(good_days)
        rerun_batches = world.batches(FAULT_STORE) - first_batches
        assert rerun_batches, "the rerun sent nothing"
        assert set(world.accepted(rerun_batches)) == valid[BAD_DAY], "the rerun sent other days' events"

        # 4. every valid event of the three days reached Omnisend exactly once
        sent = world.accepted(first_batches | rerun_batches)
        assert len(sent) == len(set(sent))
        assert set(sent) == set().union(*valid.values())
        assert emulator.store.duplicate_count() == 0
