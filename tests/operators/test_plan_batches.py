"""OmnisendPlanBatchesOperator: bodies, plan.json, dead letters, dry run, shard bounds."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import orjson
import pytest
from send_helpers import DAY, STORE, make_events, stage_valid

from airflow_omnisend.events.chunk_plan import ChunkPlan
from airflow_omnisend.exceptions import OmnisendAutomationRiskError, OmnisendConfigError, OmnisendInputError
from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
from airflow_omnisend.staging import StagingRoot

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection read for its limits only: planning makes no HTTP call (nothing listens there)."""
    extra = {"max_items_per_batch": 50, "max_payload_bytes": 40_000}
    conn = {"conn_type": "omnisend", "host": "http://127.0.0.1:9", "password": "k-123456", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_PLAN", json.dumps(conn))
    return "omnisend_plan"


def _plan(root: Path, conn: str, **kwargs: object) -> OmnisendPlanBatchesOperator:
    return OmnisendPlanBatchesOperator(
        task_id="plan", store_id=STORE, partition=DAY, omnisend_conn_id=conn, staging=str(root), **kwargs
    )


def test_writes_bodies_plan_and_dead_letters_and_returns_shards(tmp_path: Path, conn: str) -> None:
    events = make_events(300)
    huge = make_events(1, first_order=9999)[0]
    huge["properties"]["note"] = "x" * 50_000  # alone over the 40,000-byte body limit
    partition = stage_valid(tmp_path, [*events, huge])

    shards = _plan(tmp_path, conn, min_bodies_per_shard=3, max_shards=4).execute({})

    plan = ChunkPlan.from_dict(partition.read_json("plan"))
    assert shards == [s.index for s in plan.shards]
    assert 1 < len(shards) <= 4
    assert plan.events == len(events) + 1
    assert plan.items == len(events)
    assert plan.dead_lettered == 1
    seen = []
    for shard in plan.shards:
        lines = partition.shard(shard.index).read_bytes().splitlines()
        assert [hashlib.sha256(line).hexdigest() for line in lines] == [b.body_id for b in shard.bodies]
        for line in lines:
            body = orjson.loads(line)
            assert len(line) <= 40_000
            assert len(body["items"]) <= 50
            seen.extend(e["eventID"] for e in body["items"])
    assert sorted(seen) == sorted(e["eventID"] for e in events)
    (dead,) = partition.dead_letters("plan").read_bytes().splitlines()
    assert orjson.loads(dead)["event"]["eventID"] == huge["eventID"]
    assert "40000-byte body limit" in orjson.loads(dead)["reason"]


def test_replanning_gives_the_same_bodies_and_drops_stale_shards(tmp_path: Path, conn: str) -> None:
    partition = stage_valid(tmp_path, make_events(300))
    first = _plan(tmp_path, conn, min_bodies_per_shard=2).execute({})
    ids = [body.body_id for _, body in ChunkPlan.from_dict(partition.read_json("plan")).iter_bodies()]
    assert len(first) > 2
    assert _plan(tmp_path, conn, min_bodies_per_shard=2).execute({}) == first
    again = [body.body_id for _, body in ChunkPlan.from_dict(partition.read_json("plan")).iter_bodies()]
    assert again == ids
    assert _plan(tmp_path, conn, min_bodies_per_shard=1000).execute({}) == [0]  # one shard now
    assert sorted(p.name for p in partition.bodies_dir.iterdir()) == ["shard-00000.ndjson"]


@pytest.mark.parametrize("dry_run", [True, "true", "True"])
def test_dry_run_writes_only_the_preview_and_maps_nothing(tmp_path: Path, conn: str, dry_run: object) -> None:
    partition = stage_valid(tmp_path, make_events(100))
    assert _plan(tmp_path, conn, dry_run=dry_run).execute({}) == []
    assert not partition.plan.exists()
    assert not partition.bodies_dir.exists()
    assert not partition.dead_letters_dir.exists()
    preview = partition.read_json("plan_preview")
    real = _plan(tmp_path, conn).execute({})
    plan = ChunkPlan.from_dict(partition.read_json("plan"))
    # The preview announces exactly what the real run then plans.
    assert (preview["events"], preview["bodies"], preview["shards"]) == (plan.events, plan.bodies, len(real))
    assert preview["estimate"]["total_requests"] >= 2 * plan.bodies
    assert preview["estimate"]["minutes"] == pytest.approx(
        preview["estimate"]["total_requests"] / 400, abs=1e-3
    )


def test_nothing_to_send_maps_nothing(tmp_path: Path, conn: str) -> None:
    partition = stage_valid(tmp_path, [])
    assert _plan(tmp_path, conn).execute({}) == []
    assert ChunkPlan.from_dict(partition.read_json("plan")).bodies == 0


def test_limits_come_from_the_connections_api_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "omnisend", "host": "http://127.0.0.1:9", "password": "k-123456",
            "extra": {"api_version": "2026-03-15"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_2026", json.dumps(conn))
    partition = stage_valid(tmp_path, make_events(200))
    _plan(tmp_path, "omnisend_2026").execute({})
    plan = ChunkPlan.from_dict(partition.read_json("plan"))
    assert plan.limits.max_items == 100
    assert all(b.items <= 100 for _, b in plan.iter_bodies())


def test_max_shards_must_stay_below_max_map_length(
    tmp_path: Path, conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "10")
    with pytest.raises(OmnisendConfigError, match=r"max_shards=10 is not below .*max_map_length=10"):
        _plan(tmp_path, conn, max_shards=10)
    operator = _plan(tmp_path, conn, max_shards=9)
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "5")  # the worker's config is checked again
    stage_valid(tmp_path, make_events(10))
    with pytest.raises(OmnisendConfigError, match="max_map_length=5"):
        operator.execute({})
    with pytest.raises(OmnisendConfigError, match="max_shards must be an integer"):
        _plan(tmp_path, conn, max_shards=0)


def test_missing_valid_events_name_the_step_to_run(tmp_path: Path, conn: str) -> None:
    with pytest.raises(OmnisendInputError, match="the validate step writes it"):
        _plan(tmp_path, conn).execute({})


def test_templated_fields() -> None:
    assert set(OmnisendPlanBatchesOperator.template_fields) == {
        "store_id", "partition", "omnisend_conn_id", "staging", "dry_run_mode", "validated",
    }  # fmt: skip


def test_default_staging_root_is_the_environment(
    tmp_path: Path, conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_OMNISEND_STAGING", str(tmp_path / "env-root"))
    partition = stage_valid(tmp_path / "env-root", make_events(20))
    OmnisendPlanBatchesOperator(task_id="plan", store_id=STORE, partition=DAY, omnisend_conn_id=conn).execute(
        {}
    )
    assert StagingRoot.from_env().partition(STORE, DAY).plan.exists()
    assert partition.plan.exists()


def test_plans_the_valid_events_the_validate_manifest_names(tmp_path: Path, conn: str) -> None:
    """In the DAG plan reads validate's returned manifest: its folder, even under another root."""
    partition = stage_valid(tmp_path / "written", make_events(20))
    validated = partition.manifest(files={"valid": "valid"}).to_dict()
    shards = _plan(tmp_path / "elsewhere", conn, validated=validated).execute({})
    assert shards == [s.index for s in ChunkPlan.from_dict(partition.read_json("plan")).shards]
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("min_bodies_per_shard", 10**20, r"min_bodies_per_shard must be from 1 to 100000"),
        ("rate_limit_per_minute", 1e20, r"rate_limit_per_minute must be > 0 and <= 100000"),
    ],
)
def test_integer_and_rate_arguments_are_bounded(
    tmp_path: Path, conn: str, argument: str, value: object, message: str
) -> None:
    """A typo such as ``1e20`` is refused where it is set, naming the range, not overflowing later."""
    with pytest.raises(OmnisendConfigError, match=message):
        _plan(tmp_path, conn, **{argument: value})


@pytest.mark.parametrize("outcome", ["blocked", "awaiting_approval"])
def test_a_partition_held_by_the_automation_check_is_not_planned(
    tmp_path: Path, conn: str, outcome: str
) -> None:
    partition = stage_valid(tmp_path, make_events(20))
    partition.write_json("automation_check", {"outcome": outcome, "reason": "an automation could fire"})

    with pytest.raises(OmnisendAutomationRiskError, match=f"outcome is '{outcome}'.*nothing is planned"):
        _plan(tmp_path, conn).execute({})

    assert not partition.file("plan").exists()
    assert not partition.bodies_dir.exists() or not any(partition.bodies_dir.iterdir())


@pytest.mark.parametrize("outcome", ["passed", "acknowledged", "approved"])
def test_a_cleared_partition_is_planned(tmp_path: Path, conn: str, outcome: str) -> None:
    partition = stage_valid(tmp_path, make_events(20))
    partition.write_json("automation_check", {"outcome": outcome})

    assert _plan(tmp_path, conn).execute({})
    assert partition.file("plan").exists()


def test_a_dry_run_previews_a_held_partition(tmp_path: Path, conn: str) -> None:
    partition = stage_valid(tmp_path, make_events(20))
    partition.write_json("automation_check", {"outcome": "blocked"})

    assert _plan(tmp_path, conn, dry_run=True).execute({}) == []
    assert partition.file("plan_preview").exists()
