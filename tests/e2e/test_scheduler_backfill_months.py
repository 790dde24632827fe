"""The real scheduler (LocalExecutor, SQLite) backfills a ``period: month`` store by months, and reruns
exactly the failed month.

One local deployment runs ``dags/omnisend_orders.py`` with one store, ``e2e_months``, over a sample shop
of 2024-01..2024-03 (the Europe/Vilnius DST change of 2024-03-31 included). ``airflow backfill create
--from-date 2024-01-01 --to-date 2024-03-31`` must create one run per month, keyed ``YYYY-MM``; the
emulator refuses (persistent 503) every batch with an event in February's store-local window, so that
month fails after its retries while January and March succeed. With the fault removed,
``--reprocess-behavior failed`` runs February again - and only February - and in the end every valid
event of the three months is in the emulator exactly once.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pytest
from e2e_deployment import E2EWorld, by_partition, dag_id, diagnosed, e2e_world, emulator_config, store_entry

from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.testing.emulator import FaultConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_omnisend.testing.local_airflow import DagRunInfo

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STORE, MONTHS, BAD_MONTH = "e2e_months", ("2024-01", "2024-02", "2024-03"), "2024-02"
TIMEZONE = "Europe/Vilnius"
RUN_TIMEOUT = 480.0  # a failing month: 2 tries x the hook's own ~1 minute of 503 retries, plus scheduling


@pytest.fixture(scope="module")
def emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(emulator_config([STORE], processing_delay=0.2)) as emu:
        yield emu


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, emulator: OmnisendEmulator) -> Iterator[E2EWorld]:
    root = tmp_path_factory.mktemp("scheduler-backfill-months")
    entry = store_entry(STORE, period="month", start_date="2024-01-01", end_date="2024-03-31")
    with e2e_world(root, emulator, [entry], shop_span=(date(2024, 1, 1), 91, 450)) as built:
        yield built


def _unchanged(run: DagRunInfo) -> tuple[str, str | None, str | None]:
    return run.state, run.start_date, run.end_date


def test_a_backfill_by_months_reruns_the_failed_month_alone(world: E2EWorld) -> None:
    airflow, dag, emulator = world.airflow, dag_id(STORE), world.emulator
    february = PartitionWindow.for_period(BAD_MONTH, "month", TIMEZONE)
    emulator.set_faults(FaultConfig(refuse_event_windows=((february.start_utc, february.end_utc),)))
    with diagnosed(world, STORE):
        backfill = airflow.backfill(dag, "2024-01-01", "2024-03-31")
        runs = airflow.wait_for_runs(dag, count=len(MONTHS), timeout=RUN_TIMEOUT)
        assert {r.partition_key: r.state for r in runs} == {
            "2024-01": "success",
            BAD_MONTH: "failed",
            "2024-03": "success",
        }
        assert {r.run_type for r in runs} == {"backfill"}
        valid = world.valid_events(STORE, MONTHS)
        assert all(valid[m] for m in MONTHS), "a month without valid events: the shop should fill each"
        first_batches = world.batches(STORE)
        assert set(world.accepted(first_batches)) == valid["2024-01"] | valid["2024-03"]

        emulator.set_faults(FaultConfig())
        airflow.wait_for_backfill(backfill, timeout=120)
        before = {r.run_id: _unchanged(r) for r in airflow.dag_runs(dag)}
        airflow.backfill(dag, "2024-01-01", "2024-03-31", reprocess_behavior="failed")

        def rerun_finished() -> list[DagRunInfo] | None:
            found = airflow.dag_runs(dag)
            fresh = [r for r in found if before.get(r.run_id) != _unchanged(r)]
            return found if fresh and all(r.terminal for r in found) else None

        after = airflow.wait_until("the failed month's rerun", rerun_finished, timeout=RUN_TIMEOUT)
        fresh = [r for r in after if before.get(r.run_id) != _unchanged(r)]
        assert [(r.partition_key, r.state) for r in fresh] == [(BAD_MONTH, "success")]
        assert sorted(by_partition(after)) == sorted(MONTHS)
        rerun_batches = world.batches(STORE) - first_batches
        assert set(world.accepted(rerun_batches)) == valid[BAD_MONTH]

        sent = world.accepted(first_batches | rerun_batches)
        assert len(sent) == len(set(sent))
        assert set(sent) == set().union(*valid.values())
        assert emulator.store.duplicate_count() == 0
