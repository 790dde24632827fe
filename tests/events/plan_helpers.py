"""Shared by the planning tests: event lines, a planner run that keeps its shard files, the check of
every invariant the planner promises, and realistic partition sizes."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from airflow_omnisend.events.body_format import BODY_PREFIX, BODY_SUFFIX, ENVELOPE_BYTES
from airflow_omnisend.events.chunk_plan import BatchLimits, ChunkPlan
from airflow_omnisend.events.names import LIFECYCLE_RANK
from airflow_omnisend.events.planning import plan_batches

NAMES = list(LIFECYCLE_RANK)
NS = uuid.UUID("0b5e4a52-2f0c-4e7e-9a55-4b1f4c8a7d10")


def event_line(
    number: int,
    name: str = "placed order",
    order: object = "1001",
    when: str = "2026-03-01T10:00:00Z",
    pad: int = 0,
) -> bytes:
    properties: dict[str, Any] = {"currency": "EUR", "totalPrice": 19.99}
    if order is not None:
        properties["orderID"] = order
    if pad:
        properties["note"] = "x" * pad
    return orjson.dumps(
        {
            "eventName": name,
            "eventID": str(uuid.uuid5(NS, str(number))),
            "eventTime": when,
            "eventVersion": "v2",
            "origin": "api",
            "contact": {"email": f"c{number}@example.com"},
            "properties": properties,
        }
    )


class KeptBytes(io.BytesIO):
    """A shard file that remembers what was written after the planner closes it."""

    def __init__(self, sink: dict[int, bytes], index: int) -> None:
        super().__init__()
        self.sink, self.index = sink, index

    def close(self) -> None:
        self.sink[self.index] = self.getvalue()
        super().close()


@dataclass
class Run:
    plan: ChunkPlan
    shards: dict[int, bytes]
    dead: bytes
    opened: list[int] = field(default_factory=list)

    def bodies(self) -> list[tuple[int, int, bytes]]:
        """(shard, index, body bytes) in send order."""
        out = []
        for shard in sorted(self.shards):
            lines = self.shards[shard].split(b"\n")
            assert lines[-1] == b""
            out.extend((shard, i, body) for i, body in enumerate(lines[:-1]))
        return out

    def dead_letters(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.dead.splitlines()]


def run_plan(data: bytes | list[bytes], limits: BatchLimits, **kwargs: Any) -> Run:
    if isinstance(data, list):
        data = b"".join(line + b"\n" for line in data)
    shards: dict[int, bytes] = {}
    opened: list[int] = []
    dead = io.BytesIO()

    def open_shard(i: int) -> KeptBytes:
        opened.append(i)
        return KeptBytes(shards, i)

    plan = plan_batches(io.BytesIO(data), limits, open_shard=open_shard, dead_letters=dead, **kwargs)
    return Run(plan, shards, dead.getvalue(), opened)


def time_of(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["eventTime"])


def check_run(lines: list[bytes], limits: BatchLimits, run: Run) -> None:
    """Every invariant the planner promises, for any input."""
    plan = run.plan
    by_id = {orjson.loads(line)["eventID"]: line for line in lines}
    sent: list[bytes] = []
    where: dict[str, list[tuple[int, int]]] = defaultdict(list)  # orderID -> [(body seq, position)]
    order_events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    bodies = run.bodies()
    assert [(s.index, len(s.bodies)) for s in plan.shards] == [
        (i, sum(1 for b in bodies if b[0] == i)) for i in range(len(plan.shards))
    ]
    assert run.opened == list(range(len(plan.shards)))
    plans = [body for _, body in plan.iter_bodies()]
    for seq, ((_, index, body), body_plan) in enumerate(zip(bodies, plans, strict=True)):
        # within both limits, exactly the bytes the plan describes
        assert len(body) <= limits.max_payload_bytes
        parsed = orjson.loads(body)
        items = parsed["items"]
        assert (parsed["method"], parsed["endpoint"], len(parsed)) == ("POST", "events", 3)
        assert 1 <= len(items) <= limits.max_items
        item_lines = [by_id[item["eventID"]] for item in items]
        assert body == BODY_PREFIX + b",".join(item_lines) + BODY_SUFFIX  # verbatim, no re-serialising
        assert body_plan.body_id == hashlib.sha256(body).hexdigest()
        assert (body_plan.index, body_plan.items, body_plan.size) == (index, len(items), len(body))
        assert body_plan.first_event_id == items[0]["eventID"]
        assert body_plan.last_event_id == items[-1]["eventID"]
        sent.extend(item_lines)
        for position, item in enumerate(items):
            order = item["properties"].get("orderID")
            if order is not None:
                key = order if isinstance(order, str) else json.dumps(order)
                where[key].append((seq, position))
                order_events[key].append(item)

    # nothing lost, nothing doubled: bodies + dead letters == input, as a multiset of lines
    dead = run.dead_letters()
    for letter in dead:
        assert letter["stage"] == "plan"
        size = len(orjson.dumps(letter["event"]))
        assert letter["reason"].startswith(
            f"event is {size} bytes, over the {limits.max_payload_bytes}-byte body limit"
        )
        assert size + ENVELOPE_BYTES > limits.max_payload_bytes
    dead_lines = [orjson.dumps(letter["event"]) for letter in dead]
    assert Counter(sent) + Counter(dead_lines) == Counter(lines)
    assert all(len(line) + ENVELOPE_BYTES <= limits.max_payload_bytes for line in sent)
    assert plan.events == len(lines)
    assert plan.dead_lettered == len(dead)
    assert plan.items == len(sent)
    assert plan.total_bytes == sum(len(b) for _, _, b in bodies)

    # an order's events: together (or split over consecutive bodies of one shard), lifecycle order
    for key, events in order_events.items():
        ranks = [(LIFECYCLE_RANK[e["eventName"]], time_of(e)) for e in events]
        assert ranks == sorted(ranks), key
        seqs = sorted({seq for seq, _ in where[key]})
        if len(seqs) > 1:
            assert seqs == list(range(seqs[0], seqs[-1] + 1)), "split order not in consecutive bodies"
            assert len({bodies[s][0] for s in seqs}) == 1, "split order crosses shards"
            for s in seqs[1:]:
                assert plans[s].follows == plans[s - 1].body_id
            size = sum(len(by_id[e["eventID"]]) + 1 for e in events)
            assert size > limits.body_capacity or len(events) > limits.max_items, "needless split"
        else:
            positions = [p for _, p in where[key]]
            assert positions == list(range(positions[0], positions[0] + len(positions)))

    # shards: bounded, never empty
    if plan.bodies:
        assert (
            1 <= len(plan.shards) <= min(plan.max_shards, math.ceil(plan.bodies / plan.min_bodies_per_shard))
        )
    else:
        assert plan.shards == ()
    assert all(shard.bodies for shard in plan.shards)
    assert plan.bodies >= plan.lower_bound
    assert ChunkPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


LIFECYCLE_MIX = [(0.22, 1), (0.30, 2), (0.30, 3), (0.13, 4), (0.05, 5)]
PROFILES = {
    "1000 items / 1 MB": BatchLimits(1000, 1_000_000),
    "100 items / 1 MB": BatchLimits(100, 1_000_000),
    "1000 items / 256 KB": BatchLimits(1000, 262_144),
    "100 items / 128 KB": BatchLimits(100, 131_072),
    "1000 items / 64 KB": BatchLimits(1000, 65_536),
    "100 items / 64 KB": BatchLimits(100, 65_536),
}


@functools.cache
def realistic_sizes(n_events: int, seed: int, median: int = 1200) -> list[list[int]]:
    """Event sizes per order: 1-5 events of 0.5-10 KB, similar within an order (same line items)."""
    rng = random.Random(seed)
    groups: list[list[int]] = []
    total = 0
    while total < n_events:
        count = min(
            rng.choices([c for _, c in LIFECYCLE_MIX], [w for w, _ in LIFECYCLE_MIX])[0], n_events - total
        )
        base = min(10_000, max(500, int(rng.lognormvariate(math.log(median), 0.6))))
        groups.append([min(10_000, max(500, int(base * rng.uniform(0.95, 1.1)))) for _ in range(count)])
        total += count
    return groups


def allowed(bound: int) -> int:
    """The target: 1.02 x LB; below LB 50 that means LB itself, and the planner may be one over."""
    return max(math.floor(1.02 * bound), bound + 1)


def write_realistic_events(n_events: int, seed: int) -> list[bytes]:
    """Event lines with :func:`realistic_sizes`, an order's events spread over the file."""
    lines = []
    for number, sizes in enumerate(realistic_sizes(n_events, seed)):
        for step, size in enumerate(sizes):
            fields = {
                "name": NAMES[min(step, 4)],
                "order": f"order-{number}",
                "when": f"2026-03-01T{10 + step:02d}:{number % 60:02d}:00Z",
            }
            bare = len(event_line(len(lines), **fields)) + len(',"note":""')
            lines.append(event_line(len(lines), **fields, pad=max(0, size - bare)))
    random.Random(seed).shuffle(lines)
    return lines
