"""The pure parts of ``benchmarks/bench_backfill.py``: the whole-store bound, the targets, request kinds
and the per-task cost split. The benchmark itself (real Airflow) is not a test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_omnisend.events.chunk_plan import BatchLimits

if TYPE_CHECKING:
    from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_backfill.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_backfill", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_the_bound_is_byte_limited_for_large_events(bench: ModuleType) -> None:
    limits = BatchLimits(max_items=1000, max_payload_bytes=1_000_000)
    # 3,000 events of 999 bytes cost 3,000,000 bytes: three full bodies are not enough for the envelope
    bound = bench.store_bound([999] * 3000, limits)
    assert bound.events == 3000
    assert bound.total_cost == 3_000_000
    assert bound.bodies == 4
    assert bound.seconds == pytest.approx(4 * 60 / 400)


def test_the_bound_is_item_limited_for_small_events(bench: ModuleType) -> None:
    limits = BatchLimits(max_items=100, max_payload_bytes=1_000_000)
    bound = bench.store_bound([50] * 1001, limits)
    assert bound.bodies == 11
    assert bench.store_bound([], limits).bodies == 0


def test_line_lengths_skip_newlines_and_blank_lines(bench: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "valid.ndjson"
    path.write_bytes(b'{"a":1}\n\n{"bb":22}\r\n')
    assert list(bench.ndjson_line_lengths([path])) == [7, 9]


def test_targets_pass_and_fail_at_their_limits(bench: ModuleType) -> None:
    bound = bench.StoreBound(events=10, total_cost=100, bodies=100, seconds=15.0)
    passed = bench.targets(wall=48.75, bound=bound, bodies=102, requests=107 + 20, runs=10)
    assert [t.passed for t in passed] == [True, True, True]
    failed = bench.targets(wall=48.8, bound=bound, bodies=103, requests=200, runs=10)
    assert [t.passed for t in failed] == [False, False, False]
    assert failed[0].line().startswith("FAIL")


def test_request_kinds_fold_ids(bench: ModuleType) -> None:
    assert bench.request_kind("GET", "/v5/batches/65f1a2b3c4d5e6f7a8b9c0d1/items") == (
        "GET /v5/batches/{id}/items"
    )
    assert bench.request_kind("POST", "/v5/batches") == "POST /v5/batches"
    assert bench.request_kind("GET", "/api/automations?limit=100") == "GET /api/automations"


def test_task_costs_split_gap_queue_and_running(bench: ModuleType) -> None:
    tis = [
        {"dag_run_id": "r1", "task_id": "a", "queued_when": "2024-01-01T00:00:00Z",
         "start_date": "2024-01-01T00:00:01Z", "end_date": "2024-01-01T00:00:03Z"},
        {"dag_run_id": "r1", "task_id": "b", "queued_when": "2024-01-01T00:00:04Z",
         "start_date": "2024-01-01T00:00:06Z", "end_date": "2024-01-01T00:00:07Z"},
    ]  # fmt: skip
    costs = bench.task_costs(tis, ["a", "b"])
    assert (costs["a"].gap, costs["a"].queued, costs["a"].running) == ([], [1.0], [2.0])
    assert (costs["b"].gap, costs["b"].queued, costs["b"].running) == ([1.0], [2.0], [1.0])


def test_an_unknown_period_is_refused_clearly(bench: ModuleType) -> None:
    assert bench._check_period("day") is None
    assert "choose one of" in bench._check_period("year")
    problem = bench._check_period("month")
    assert problem is None or "no 'period' key" in problem


def test_month_cases_cover_whole_months(bench: ModuleType) -> None:
    for name in ("a", "b"):
        case = bench.CASES[name]
        assert case.first_day.day == 1
        assert (case.last_day + bench.timedelta(days=1)).day == 1, f"case {name} ends inside a month"


def test_the_stores_file_names_the_period_only_when_not_day(bench: ModuleType, tmp_path: Path) -> None:
    case = bench.CASES["c"]
    assert "period:" not in bench._stores_yaml(case, "day", tmp_path)
    assert "    period: month\n" in bench._stores_yaml(case, "month", tmp_path)
    assert f'end_date: "{case.last_day}"' in bench._stores_yaml(case, "day", tmp_path)
