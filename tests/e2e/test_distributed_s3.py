"""The distributed set-up of ``test_distributed`` (CeleryExecutor, Redis broker, PostgreSQL metadata DB,
two Celery workers, a triggerer) with the store's staging in an S3 bucket: the stores file says
``staging: s3://<conn>@<bucket>/<prefix>``, and every worker reaches the bucket (moto_server, a real
process on 127.0.0.1) through one Airflow AWS connection.

The three-day backfill passes with both workers running tasks; every file of the days is an object in
the bucket (nothing in the deployment's local staging folder), every planned body has a ``finished``
receipt there, and what the emulator accepted is exactly the valid events read back from the bucket,
each once. The test skips, saying which server is missing, where PostgreSQL, Redis or moto_server are
not available.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

import pytest
from e2e_deployment import DAYS, E2EWorld, dag_id, diagnosed, e2e_world, emulator_config, store_entry

from airflow_omnisend.events.chunk_plan import ChunkPlan
from airflow_omnisend.testing.emulator import OmnisendEmulator
from airflow_omnisend.testing.local_airflow import ExecutorProfile
from airflow_omnisend.testing.local_servers import (
    S3Server,
    ServerUnavailableError,
    free_redis_database,
    fresh_postgres_database,
    moto_s3_server,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.distributed, pytest.mark.postgres]

STORE = "e2e_s3"
WORKERS = 2
RUN_TIMEOUT = 300.0
PREFIX = "staging"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[E2EWorld, S3Server]]:
    root = tmp_path_factory.mktemp("distributed-s3")
    with contextlib.ExitStack() as stack:
        try:
            metadata_db = stack.enter_context(fresh_postgres_database())
            broker = stack.enter_context(free_redis_database())
            s3 = stack.enter_context(moto_s3_server())
        except ServerUnavailableError as exc:
            pytest.skip(f"distributed e2e on s3 needs PostgreSQL, Redis and moto_server: {exc}")
        profile = ExecutorProfile.celery(metadata_db, broker, workers=WORKERS, worker_concurrency=2)
        emulator = stack.enter_context(OmnisendEmulator(emulator_config([STORE], processing_delay=0.5)))
        env = {"AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True", **s3.env}
        store = store_entry(STORE, staging=s3.staging_url(PREFIX))
        world = stack.enter_context(e2e_world(root, emulator, [store], profile=profile, extra_env=env))
        yield world, s3


def day_key(day: str, name: str = "") -> str:
    return f"{PREFIX}/{STORE}/{day}/{name}"


def valid_events(s3: S3Server, day: str) -> set[tuple[str, str]]:
    """``(eventID, eventTime)`` of the day's valid events, read from the bucket."""
    lines = s3.read(day_key(day, "valid.ndjson")).splitlines()
    return {(e["eventID"], e["eventTime"]) for e in map(json.loads, filter(None, lines))}


def test_backfill_passes_with_celery_workers_sharing_staging_in_a_bucket(
    world: tuple[E2EWorld, S3Server],
) -> None:
    e2e, s3 = world
    airflow, dag = e2e.airflow, dag_id(STORE)
    with diagnosed(e2e, STORE):
        airflow.backfill(dag, DAYS[0], DAYS[-1])
        runs = airflow.wait_for_runs(dag, count=len(DAYS), timeout=RUN_TIMEOUT)
        assert {r.partition_key: r.state for r in runs} == dict.fromkeys(DAYS, "success")
        tis = airflow.task_instances(dag)
        assert {t["state"] for t in tis} == {"success"}
        workers = {f"worker{i}-{airflow.deployment_id[:8]}" for i in range(1, WORKERS + 1)}
        assert {t["hostname"] for t in tis} == workers

        # the days live in the bucket only
        assert not (e2e.staging / STORE).exists()
        keys = s3.keys(f"{PREFIX}/")
        assert not [k for k in keys if k.endswith(".tmp")]
        accepted_everywhere: set[tuple[str, str]] = set()
        for day in DAYS:
            for name in ("events.ndjson", "valid.ndjson", "plan.json", "report.json"):
                assert day_key(day, name) in keys, f"{day}: no {name} in the bucket"
            plan = ChunkPlan.from_dict(json.loads(s3.read(day_key(day, "plan.json"))))
            bodies = {b.body_id for _, b in plan.iter_bodies()}
            assert bodies, f"{day}: nothing planned"
            receipts = {k for k in keys if k.startswith(day_key(day, "receipts/")) and "/followups/" not in k}
            assert receipts == {day_key(day, f"receipts/{b}.json") for b in bodies}
            for key in receipts:
                assert json.loads(s3.read(key))["status"] == "finished", key
            valid = valid_events(s3, day)
            assert valid, f"{day}: no valid event"
            accepted_everywhere |= valid

        sent = e2e.accepted(e2e.batches(STORE))
        assert len(sent) == len(set(sent))
        assert set(sent) == accepted_everywhere
        assert e2e.emulator.store.duplicate_count() == 0
