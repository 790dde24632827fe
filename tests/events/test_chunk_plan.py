"""The plan model: batch limits checked on construction, plan.json round trips without event data,
the request estimate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plan_helpers import event_line, run_plan

from airflow_omnisend.events.body_format import ENVELOPE_BYTES
from airflow_omnisend.events.chunk_plan import BatchLimits, ChunkPlan, estimate_requests
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_items": 0, "max_payload_bytes": 1_000_000}, "BatchLimits.max_items must be >= 1, got 0"),
        (
            {"max_items": True, "max_payload_bytes": 1_000_000},
            r"max_items must be an integer \(a whole number\), got True",
        ),
        ({"max_items": 100, "max_payload_bytes": 100}, "max_payload_bytes must be >= 256, got 100; use"),
        ({"max_items": 100, "max_payload_bytes": "1MB"}, "max_payload_bytes must be an integer"),
    ],
)
def test_batch_limits_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(OmnisendConfigError, match=message):
        BatchLimits(**kwargs)


def test_limits_round_trip_and_capacity() -> None:
    limits = BatchLimits(100, 1_000_000)
    assert BatchLimits.from_dict(limits.to_dict()) == limits
    assert limits.body_capacity == 1_000_000 - ENVELOPE_BYTES + 1
    assert limits.max_event_bytes == 1_000_000 - ENVELOPE_BYTES


def test_plan_dict_is_small_and_json_friendly() -> None:
    lines = [event_line(n, order=f"o{n % 150}", pad=200) for n in range(300)]
    plan = run_plan(lines, BatchLimits(10, 4000)).plan
    data = plan.to_dict()
    text = json.dumps(data)
    assert "x" * 50 not in text  # no event data
    assert "example.com" not in text
    assert data["totals"] == {
        "events": 300,
        "items": 300,
        "bodies": plan.bodies,
        "shards": len(plan.shards),
        "dead_lettered": 0,
        "bytes": plan.total_bytes,
        "split_orders": 0,
    }
    assert data["lower_bound"] == plan.lower_bound
    assert data["packing_ratio"] == round(plan.packing_ratio, 6)
    assert ChunkPlan.from_dict(json.loads(text)) == plan
    assert "300 events ->" in plan.describe()
    with pytest.raises(OmnisendInputError, match="not a chunk plan"):
        ChunkPlan.from_dict({"limits": {"max_items": 1, "max_payload_bytes": 1000}})


def test_request_estimate() -> None:
    estimate = estimate_requests(2000, 400)
    assert (estimate.submit_requests, estimate.poll_requests, estimate.total_requests) == (2000, 2000, 4000)
    assert estimate.minutes == 10.0
    assert "4000 requests, about 10.0 min at 400 requests/min" in estimate.describe()
    assert estimate_requests(3, 400, polls_per_body=2.5).poll_requests == 8
    plan = run_plan([event_line(1)], BatchLimits(100, 1_000_000)).plan
    assert estimate_requests(plan).to_dict()["total_requests"] == 2
    with pytest.raises(OmnisendConfigError, match="rate_per_minute must be > 0"):
        estimate_requests(10, 0)
    with pytest.raises(OmnisendConfigError, match="bodies must be >= 0"):
        estimate_requests(-1)
