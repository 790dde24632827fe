"""The distributed set-up: CeleryExecutor, Redis broker, PostgreSQL metadata DB, two Celery workers and a
triggerer, with staging on a path every worker shares and ``[operators] default_deferrable = True``.

The same three-day backfill as the scheduler test passes; the send tasks deferred to the triggerer
(each send task's log has the triggerer's part, in which the trigger fired), and both workers ran
tasks (each worker reports its own hostname on the task instances it ran). The local PostgreSQL
(127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379) servers are used: a fresh database and a free
Redis database number per run, dropped/flushed afterwards; the test skips, saying which server is
missing, where they are not reachable.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest
from e2e_deployment import DAYS, E2EWorld, dag_id, diagnosed, e2e_world, emulator_config, store_entry

from airflow_omnisend.testing.emulator import OmnisendEmulator
from airflow_omnisend.testing.local_airflow import ExecutorProfile
from airflow_omnisend.testing.local_servers import (
    ServerUnavailableError,
    free_redis_database,
    fresh_postgres_database,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.distributed, pytest.mark.postgres]

STORE = "e2e_dist"
WORKERS = 2
RUN_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EWorld]:
    root = tmp_path_factory.mktemp("distributed")
    with contextlib.ExitStack() as stack:
        try:
            metadata_db = stack.enter_context(fresh_postgres_database())
            broker = stack.enter_context(free_redis_database())
        except ServerUnavailableError as exc:
            pytest.skip(f"distributed e2e needs the local PostgreSQL and Redis servers: {exc}")
        # two task slots per worker, one message prefetched per slot: the first wave of the three runs'
        # tasks cannot all land on one worker
        profile = ExecutorProfile.celery(metadata_db, broker, workers=WORKERS, worker_concurrency=2)
        emulator = stack.enter_context(OmnisendEmulator(emulator_config([STORE], processing_delay=0.5)))
        deferrable = {"AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True"}
        yield stack.enter_context(
            e2e_world(root, emulator, [store_entry(STORE)], profile=profile, extra_env=deferrable)
        )


def test_backfill_passes_with_celery_workers_and_sends_deferred_to_the_triggerer(world: E2EWorld) -> None:
    airflow, dag = world.airflow, dag_id(STORE)
    with diagnosed(world, STORE):
        airflow.backfill(dag, DAYS[0], DAYS[-1])
        runs = airflow.wait_for_runs(dag, count=len(DAYS), timeout=RUN_TIMEOUT)
        assert {r.partition_key: r.state for r in runs} == dict.fromkeys(DAYS, "success")

        tis = airflow.task_instances(dag)
        assert {t["state"] for t in tis} == {"success"}
        # both Celery workers ran tasks (and nothing else did)
        workers = {f"worker{i}-{airflow.deployment_id[:8]}" for i in range(1, WORKERS + 1)}
        assert {t["hostname"] for t in tis} == workers

        # every send task deferred: its log holds the triggerer's part, where the trigger fired
        sends = [t for t in tis if t["task_id"] == "send"]
        assert len(sends) >= len(DAYS)
        for ti in sends:
            run_dir = f"run_id={ti['dag_run_id']}/task_id=send"
            index = "" if ti["map_index"] < 0 else f"/map_index={ti['map_index']}"
            logs = world.airflow.home / "logs" / f"dag_id={dag}" / f"{run_dir}{index}"
            trigger_logs = sorted(logs.glob("attempt=*.log.trigger.*.log"))
            assert trigger_logs, f"{ti['dag_run_id']} send[{ti['map_index']}] never ran in the triggerer"
            triggered = "\n".join(p.read_text("utf-8", "replace") for p in trigger_logs)
            assert "Trigger fired event" in triggered
            task_log = "\n".join(p.read_text("utf-8", "replace") for p in logs.glob("attempt=*.log"))
            assert "DEFERRED" in task_log

        # the deployment's staging is one shared path: every day's files are there, and were sent whole
        valid = world.valid_events(STORE, DAYS)
        for day in DAYS:
            assert valid[day], f"{day}: no valid event"
        sent = world.accepted(world.batches(STORE))
        assert len(sent) == len(set(sent))
        assert set(sent) == set().union(*valid.values())
        assert world.emulator.store.duplicate_count() == 0
