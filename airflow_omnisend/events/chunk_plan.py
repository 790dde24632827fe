"""The plan model: the two batch limits, and what the planner wrote (shards of bodies, totals, packing
quality), as small JSON-friendly records that travel in ``plan.json`` and XCom. No event data.

Also the request estimate of a plan at a rate limit, for dry runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_omnisend.checks import check_int
from airflow_omnisend.events.body_format import ENVELOPE_BYTES
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError

if TYPE_CHECKING:
    from collections.abc import Iterator

#: smallest byte limit accepted: room for the envelope and a few hundred bytes of event
MIN_PAYLOAD_BYTES = 256
#: Airflow's default ``[core] max_map_length``; a partition must map fewer tasks than this
AIRFLOW_MAX_MAP_LENGTH = 1024
DEFAULT_MAX_SHARDS = 64
#: small partitions get few shards: a mapped task costs seconds of scheduling, a body ~0.3 s of budget
DEFAULT_MIN_BODIES_PER_SHARD = 16
#: the largest min_bodies_per_shard accepted (a partition of more bodies than this is rare)
MAX_MIN_BODIES_PER_SHARD = 100_000
#: Omnisend's default rate limit per brand (requests per minute, all endpoints together)
DEFAULT_RATE_PER_MINUTE = 400.0
#: the largest rate accepted: well above any Omnisend plan, low enough to catch a typo such as 1e20
MAX_RATE_PER_MINUTE = 100_000.0


@dataclass(frozen=True)
class BatchLimits:
    """The two limits every ``POST /batches`` body must respect.

    :param max_items: most items in one batch (100 for API 2026-03-15, 1,000 for v5).
    :param max_payload_bytes: most bytes in one request body (Omnisend advises 1 MB).
    """

    max_items: int
    max_payload_bytes: int

    def __post_init__(self) -> None:
        check_int(
            "BatchLimits.max_items",
            self.max_items,
            minimum=1,
            fix="use the API version's batch size (100 or 1000)",
        )
        check_int(
            "BatchLimits.max_payload_bytes",
            self.max_payload_bytes,
            minimum=MIN_PAYLOAD_BYTES,
            fix=(
                f"use Omnisend's advised 1000000 (1 MB) or another byte count of at least {MIN_PAYLOAD_BYTES}"
            ),
        )

    @property
    def body_capacity(self) -> int:
        """Sum of item costs (item length + 1 separator) that one body can hold."""
        return self.max_payload_bytes - ENVELOPE_BYTES + 1

    @property
    def max_event_bytes(self) -> int:
        """Largest event (bytes of its line) that fits a body on its own."""
        return self.max_payload_bytes - ENVELOPE_BYTES

    def to_dict(self) -> dict[str, int]:
        return {"max_items": self.max_items, "max_payload_bytes": self.max_payload_bytes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchLimits:
        return cls(max_items=data["max_items"], max_payload_bytes=data["max_payload_bytes"])


@dataclass(frozen=True)
class BodyPlan:
    """One request body: line ``index`` of its shard file.

    :param body_id: sha256 hex of the body's exact bytes (its identity across reruns).
    :param follows: body_id of the body that holds the earlier events of an order split across
        bodies; the sender should see that one finished before sending this one. ``None`` mostly.
    """

    body_id: str
    index: int
    items: int
    size: int
    first_event_id: str | None
    last_event_id: str | None
    follows: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "body_id": self.body_id,
            "index": self.index,
            "items": self.items,
            "size": self.size,
            "first_event_id": self.first_event_id,
            "last_event_id": self.last_event_id,
            "follows": self.follows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BodyPlan:
        return cls(
            body_id=data["body_id"],
            index=data["index"],
            items=data["items"],
            size=data["size"],
            first_event_id=data.get("first_event_id"),
            last_event_id=data.get("last_event_id"),
            follows=data.get("follows"),
        )


@dataclass(frozen=True)
class ShardPlan:
    """Consecutive bodies sent by one mapped task (one NDJSON file, one body per line)."""

    index: int
    bodies: tuple[BodyPlan, ...]

    @property
    def items(self) -> int:
        return sum(b.items for b in self.bodies)

    @property
    def size(self) -> int:
        return sum(b.size for b in self.bodies)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "items": self.items,
            "size": self.size,
            "bodies": [b.to_dict() for b in self.bodies],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardPlan:
        return cls(index=data["index"], bodies=tuple(BodyPlan.from_dict(b) for b in data["bodies"]))


@dataclass(frozen=True)
class ChunkPlan:
    """What the planner wrote: shards of bodies, totals and how good the packing is. No event data.

    :param events: non-blank input lines; ``items + dead_lettered == events``.
    :param lower_bound: fewest bodies any packing could use for the items (docs/planning.md).
    """

    limits: BatchLimits
    shards: tuple[ShardPlan, ...]
    events: int
    dead_lettered: int
    lower_bound: int
    split_orders: int = 0
    packing: str = ""
    max_shards: int = DEFAULT_MAX_SHARDS
    min_bodies_per_shard: int = DEFAULT_MIN_BODIES_PER_SHARD
    _body_count: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_body_count", sum(len(s.bodies) for s in self.shards))

    @property
    def bodies(self) -> int:
        return self._body_count

    @property
    def items(self) -> int:
        return sum(s.items for s in self.shards)

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in self.shards)

    @property
    def packing_ratio(self) -> float:
        """bodies / lower bound (1.0 for an empty plan)."""
        return self.bodies / self.lower_bound if self.lower_bound else 1.0

    def iter_bodies(self) -> Iterator[tuple[ShardPlan, BodyPlan]]:
        for shard in self.shards:
            for body in shard.bodies:
                yield shard, body

    def describe(self) -> str:
        return (
            f"{self.events} events -> {self.bodies} bodies in {len(self.shards)} shards "
            f"({self.items} items, {self.total_bytes} bytes, {self.dead_lettered} dead-lettered, "
            f"{self.split_orders} orders split); lower bound {self.lower_bound}, "
            f"packing ratio {self.packing_ratio:.4f}; limits {self.limits.max_items} items / "
            f"{self.limits.max_payload_bytes} bytes"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "limits": self.limits.to_dict(),
            "max_shards": self.max_shards,
            "min_bodies_per_shard": self.min_bodies_per_shard,
            "totals": {
                "events": self.events,
                "items": self.items,
                "bodies": self.bodies,
                "shards": len(self.shards),
                "dead_lettered": self.dead_lettered,
                "bytes": self.total_bytes,
                "split_orders": self.split_orders,
            },
            "lower_bound": self.lower_bound,
            "packing_ratio": round(self.packing_ratio, 6),
            "packing": self.packing,
            "shards": [s.to_dict() for s in self.shards],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkPlan:
        try:
            totals = data["totals"]
            return cls(
                limits=BatchLimits.from_dict(data["limits"]),
                shards=tuple(ShardPlan.from_dict(s) for s in data["shards"]),
                events=totals["events"],
                dead_lettered=totals["dead_lettered"],
                lower_bound=data["lower_bound"],
                split_orders=totals.get("split_orders", 0),
                packing=data.get("packing", ""),
                max_shards=data.get("max_shards", DEFAULT_MAX_SHARDS),
                min_bodies_per_shard=data.get("min_bodies_per_shard", DEFAULT_MIN_BODIES_PER_SHARD),
            )
        except (KeyError, TypeError) as exc:
            raise OmnisendInputError(
                f"not a chunk plan (missing or wrong field: {exc}); re-run the plan step to rewrite plan.json"
            ) from exc


@dataclass(frozen=True)
class RequestEstimate:
    """Requests and wall time a plan needs at a rate limit (a floor: retries and extra polls add)."""

    bodies: int
    submit_requests: int
    poll_requests: int
    rate_per_minute: float

    @property
    def total_requests(self) -> int:
        return self.submit_requests + self.poll_requests

    @property
    def minutes(self) -> float:
        return self.total_requests / self.rate_per_minute

    def describe(self) -> str:
        return (
            f"{self.bodies} bodies: {self.submit_requests} POST /batches + {self.poll_requests} polls = "
            f"{self.total_requests} requests, about {self.minutes:.1f} min at "
            f"{self.rate_per_minute:g} requests/min"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "bodies": self.bodies,
            "submit_requests": self.submit_requests,
            "poll_requests": self.poll_requests,
            "total_requests": self.total_requests,
            "rate_per_minute": self.rate_per_minute,
            "minutes": round(self.minutes, 3),
        }


def estimate_requests(
    plan: ChunkPlan | int,
    rate_per_minute: float = DEFAULT_RATE_PER_MINUTE,
    *,
    polls_per_body: float = 1.0,
) -> RequestEstimate:
    """How many requests and minutes sending ``plan`` (or that many bodies) takes at ``rate_per_minute``.

    Each body costs one ``POST /batches`` and, on average, ``polls_per_body`` reads of its status and
    results (a sender that waits until a batch should be done needs about one). For dry runs.
    """
    bodies = plan.bodies if isinstance(plan, ChunkPlan) else plan
    check_int("estimate_requests.bodies", bodies, minimum=0, fix="pass a ChunkPlan or a body count")
    if not rate_per_minute > 0:
        raise OmnisendConfigError(
            f"rate_per_minute must be > 0, got {rate_per_minute!r}; Omnisend's default is 400"
        )
    if not polls_per_body >= 0:
        raise OmnisendConfigError(f"polls_per_body must be >= 0, got {polls_per_body!r}; 1.0 is typical")
    return RequestEstimate(
        bodies=bodies,
        submit_requests=bodies,
        poll_requests=math.ceil(bodies * polls_per_body),
        rate_per_minute=float(rate_per_minute),
    )
