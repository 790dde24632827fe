"""Chunk planning: valid events -> the exact request bodies for ``POST /batches``, grouped into shards.

Why plan at all: Omnisend limits a batch by items (100 in 2026-03-15, 1,000 in v5) and, by its own
advice, by size (1 MB). Every request counts against 400 requests/min per brand, so the number of
bodies *is* the cost of a partition. The planner therefore packs events tightly and writes each body
once, as the bytes that will be sent: a sender never re-serialises, a body's sha256 is its identity
(a rerun recognises finished bodies by it), and its size is known before it is sent.

Body format (exactly, no whitespace)::

    {"method":"POST","endpoint":"events","items":[<line>,<line>,...]}

where each ``<line>`` is an input line's bytes verbatim (without its line break). The envelope takes
:data:`ENVELOPE_BYTES` bytes, and every item adds its length plus one separator, so a body of items with
lengths ``l_i`` is ``ENVELOPE_BYTES - 1 + sum(l_i + 1)`` bytes. Planning works with the *cost*
``l_i + 1`` of an item and the *capacity* ``max_payload_bytes - ENVELOPE_BYTES + 1`` of a body
(:attr:`BatchLimits.body_capacity`); ``sum(cost) <= capacity`` is then exactly "the body is within the
byte limit".

Order rules. Events of one order (``properties.orderID``; an event without one is a group of its own)
are sorted into lifecycle order (placed order -> paid for order -> order fulfilled -> order canceled /
order refunded, then by eventTime) and kept together in one body, so parallel shards can never
reorder an order's events. An order that alone does not fit one body is *split*: its events, in
lifecycle order, fill as few consecutive bodies as possible (greedy, which is optimal for contiguous
pieces). Those bodies stay next to each other in the same shard, and each continuation body names the
body before it in :attr:`BodyPlan.follows`, so the sender can wait for it to finish first. The last
piece of a split order stays open for other groups. A single event that alone exceeds the byte limit
is dead-lettered with the reason, never dropped. (Its siblings are still sent.)

Packing. Bin packing with two limits (bytes and items) and indivisible groups. The main strategy is
first-fit decreasing done one body at a time: a body takes the largest remaining group that still
fits, again and again (in one dimension this is exactly FFD). Groups are split into byte-heavy ones
(more bytes per item than ``capacity / max_items``) and item-heavy ones, and a body whose byte share
runs ahead of its item share takes from the item-heavy side next, and vice versa. That matters when
both limits can bind (100 items / 128 KB, or 1,000 items / 1 MB with small events): a plain
decreasing order puts all the small events last, where they fill bodies by count and waste bytes
(plain best-fit decreasing measured 1.03-1.12 there, BENCHMARKS.md). "Largest group that fits" is
``bisect`` plus a segment tree, ``O(log n)`` per group. A best-fit-decreasing pass in the dominant
limit is the second opinion when the first does not reach the lower bound; the plan with fewer
bodies wins. Open bodies are metadata only (two integers and a member list), so nothing needs to
bound them.

What is guaranteed, and what is only measured. The lower bound is
``LB = max(ceil(sum(cost) / capacity), ceil(items / max_items))`` (no packing can do better).
The main strategy closes a body only when no remaining group fits it, and a split order's pieces
are cut only when its next event does not fit; so when the last body is opened, every other body
is filled beyond ``(1 - eps)`` of its capacity in bytes or in items, where ``eps`` is the largest
group relative to a body (for the pieces of a split order: its largest event). The second opinion
is used only when it needs fewer bodies, so what follows holds for the plan either way:

* if all events fit in one body, the plan is one body (optimal);
* in general ``bodies < (sum(cost)/capacity + items/max_items) / (1 - eps) + 1 <= 2 LB / (1 - eps) + 1``;
* when all bodies but the last are tight in the same limit (the usual case), ``bodies < LB / (1 - eps)
  + 1``; with orders of at most 5% of a body that is at most ``LB + 1`` while ``LB <= 19``.

``1.02 x LB`` cannot be *guaranteed* by any fast algorithm: bin packing is NP-hard, and the optimum
itself can be far above ``LB`` (groups just over half a body need one body each, ``OPT ~ 2 LB``).
For ``LB < 50``, ``1.02 x LB < LB + 1``, so the target then asks for the optimum. Measured on
realistic partitions (events 0.5-10 KB, orders of 1-5 events; 1,000 and 100 items per 1 MB, 256, 128
and 64 KB bodies): always ``LB`` or ``LB + 1``, and ``LB + 1`` only where ``LB`` needs the bodies
more than 99.8% full on average; ratio <= 1.005 for ``LB >= 50`` (BENCHMARKS.md, tests).

Memory: the event bytes are never all in memory. An index pass keeps per event its order group,
lifecycle rank, time, eventID, offset and length (with the packing's lists, 300-450 bytes per event:
200,000 events, 300 MB, plan in under 100 MB of RSS); bodies are then built by reading byte ranges
from the (seekable) source. A source that cannot seek is spooled to a temporary file first. Remote
staging hands the planner a local copy (``staging.local_copy``).

Determinism: the plan depends only on the lines' content, not their order. Ties are broken by
eventID, then a CRC of the line, then position (only identical-looking lines reach the last step), so
the same ``valid.ndjson`` - in any line order - gives the same bodies and body ids.

Nothing here imports Airflow.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import math
import os
import tempfile
import zlib
from array import array
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendError, OmnisendInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

log = logging.getLogger(__name__)

BODY_PREFIX = b'{"method":"POST","endpoint":"events","items":['
BODY_SUFFIX = b"]}"
#: bytes a body has besides its items and the commas between them
ENVELOPE_BYTES = len(BODY_PREFIX) + len(BODY_SUFFIX)
#: smallest byte limit accepted: room for the envelope and a few hundred bytes of event
MIN_PAYLOAD_BYTES = 256
#: Airflow's default ``[core] max_map_length``; a partition must map fewer tasks than this
AIRFLOW_MAX_MAP_LENGTH = 1024
DEFAULT_MAX_SHARDS = 64
#: small partitions get few shards: a mapped task costs seconds of scheduling, a body ~0.3 s of budget
DEFAULT_MIN_BODIES_PER_SHARD = 16
#: Omnisend's default rate limit per brand (requests per minute, all endpoints together)
DEFAULT_RATE_PER_MINUTE = 400.0

#: lifecycle rank of each order event; canceled and refunded share the last place (then eventTime)
LIFECYCLE_RANK: dict[str, int] = {
    "placed order": 0,
    "paid for order": 1,
    "order fulfilled": 2,
    "order canceled": 3,
    "order refunded": 3,
}
_UNKNOWN_RANK = 4
_INFINITY = 2**62
_NO_TIME = _INFINITY
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BIN_BITS = 32
_BIN_MASK = (1 << _BIN_BITS) - 1
_BFD_SCAN = 64
#: packing strategies, in the order they are tried
STRATEGIES = ("ffd-balanced", "bfd")


def _check_int(owner: str, name: str, value: object, minimum: int, fix: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise OmnisendConfigError(f"{owner}.{name} must be an integer, got {value!r}; {fix}")
    if value < minimum:
        raise OmnisendConfigError(f"{owner}.{name} must be >= {minimum}, got {value}; {fix}")
    return value


@dataclass(frozen=True)
class BatchLimits:
    """The two limits every ``POST /batches`` body must respect.

    :param max_items: most items in one batch (100 for API 2026-03-15, 1,000 for v5).
    :param max_payload_bytes: most bytes in one request body (Omnisend advises 1 MB).
    """

    max_items: int
    max_payload_bytes: int

    def __post_init__(self) -> None:
        _check_int(
            "BatchLimits", "max_items", self.max_items, 1, "use the API version's batch size (100 or 1000)"
        )
        _check_int(
            "BatchLimits",
            "max_payload_bytes",
            self.max_payload_bytes,
            MIN_PAYLOAD_BYTES,
            f"use Omnisend's advised 1000000 (1 MB) or another byte count of at least {MIN_PAYLOAD_BYTES}",
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
    :param lower_bound: fewest bodies any packing could use for the items (see module docstring).
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
    _check_int("estimate_requests", "bodies", bodies, 0, "pass a ChunkPlan or a body count")
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


def encode_body(lines: Sequence[bytes]) -> bytes:
    """The body for these item lines (compact JSON objects), exactly as the planner writes it."""
    return BODY_PREFIX + b",".join(lines) + BODY_SUFFIX


def lower_bound(total_cost: int, items: int, limits: BatchLimits) -> int:
    """Fewest bodies any packing needs for ``items`` events whose costs (length + 1) sum to ``total_cost``."""
    if items == 0:
        return 0
    return max(-(-total_cost // limits.body_capacity), -(-items // limits.max_items))


# ---------------------------------------------------------------------------------------------------
# index pass


@dataclass
class _Index:
    """Per event: where its bytes are and how it sorts (typed arrays; the eventID string costs most)."""

    offsets: array[int] = field(default_factory=lambda: array("q"))
    lengths: array[int] = field(default_factory=lambda: array("q"))
    ranks: array[int] = field(default_factory=lambda: array("b"))
    times: array[int] = field(default_factory=lambda: array("q"))
    crcs: array[int] = field(default_factory=lambda: array("L"))
    event_ids: list[str] = field(default_factory=list)
    orders: dict[str, list[int]] = field(default_factory=dict)
    lone: list[int] = field(default_factory=list)
    oversized: list[int] = field(default_factory=list)


def _time_key(value: object) -> int:
    """eventTime as microseconds since the epoch (offsets honoured), so '+02:00' sorts correctly."""
    if not isinstance(value, str):
        return _NO_TIME
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return _NO_TIME
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _order_key(event: dict[str, Any]) -> str | None:
    properties = event.get("properties")
    if not isinstance(properties, dict):
        return None
    order_id = properties.get("orderID")
    if order_id is None or order_id == "":
        return None
    # 5 and "5" name the same order for Omnisend: keep them together
    return order_id if isinstance(order_id, str) else orjson.dumps(order_id).decode()


def _content_span(raw: bytes) -> tuple[int, int]:
    """Start and end of a line's content without surrounding whitespace, without copying it."""
    end = len(raw)
    if end and raw[end - 1] == 0x0A:  # the usual case: one compact object and "\n"
        end -= 1
        if end and raw[end - 1] == 0x0D:
            end -= 1
    start = 0
    if raw[:1] == b"{" and raw[end - 1 : end] == b"}":
        return start, end
    line = raw.strip()
    if not line:
        return 0, 0
    start = raw.index(line)
    return start, start + len(line)


def _index_events(src: BinaryIO, spool: BinaryIO | None, limits: BatchLimits) -> _Index:
    index = _Index()
    max_event = limits.max_event_bytes
    position = spool.tell() if spool is not None else src.tell()
    add_offset, add_length = index.offsets.append, index.lengths.append
    add_rank, add_time, add_crc = index.ranks.append, index.times.append, index.crcs.append
    add_id, orders, lone = index.event_ids.append, index.orders, index.lone
    number = 0
    for lineno, raw in enumerate(src, 1):
        if not isinstance(raw, bytes):
            raise OmnisendInputError("the events file must be opened in binary mode ('rb'), not text mode")
        if spool is not None:
            spool.write(raw)
        line_start = position
        position += len(raw)
        start, end = _content_span(raw)
        if start == end:
            continue
        try:
            event = orjson.loads(raw)  # surrounding whitespace is fine for the parser
        except orjson.JSONDecodeError as exc:
            raise OmnisendInputError(
                f"line {lineno} of the valid-events file is not JSON ({exc}); the planner reads the "
                "validator's valid.ndjson - re-run the validate step to rewrite it"
            ) from exc
        if not isinstance(event, dict):
            raise OmnisendInputError(
                f"line {lineno} of the valid-events file is a JSON {type(event).__name__}, not an event "
                "object; re-run the validate step to rewrite valid.ndjson"
            )
        length = end - start
        add_offset(line_start + start)
        add_length(length)
        name = event.get("eventName")
        add_rank(LIFECYCLE_RANK.get(name, _UNKNOWN_RANK) if isinstance(name, str) else _UNKNOWN_RANK)
        add_time(_time_key(event.get("eventTime")))
        add_crc(zlib.crc32(memoryview(raw)[start:end]))
        event_id = event.get("eventID")
        add_id(event_id if isinstance(event_id, str) else "")
        if length > max_event:
            index.oversized.append(number)
        else:
            key = _order_key(event)
            if key is None:
                lone.append(number)
            else:
                members = orders.get(key)
                if members is None:
                    orders[key] = [number]
                else:
                    members.append(number)
        number += 1
    return index


# ---------------------------------------------------------------------------------------------------
# packing (sizes only: usable on its own, e.g. to test the packing on millions of synthetic sizes)


@dataclass(frozen=True)
class Packing:
    """Result of :func:`pack_groups`: ``assignment[g]`` is the body of group ``g``, ``bodies[b]`` the
    groups of body ``b`` in placement order. Bodies ``0..len(preloaded)-1`` are the preloaded ones."""

    assignment: list[int]
    bodies: list[list[int]]
    strategy: str


def _best_fit_decreasing(
    costs: Sequence[int],
    counts: Sequence[int],
    capacity: int,
    max_items: int,
    tie: Sequence[str],
    preloaded: Sequence[tuple[int, int]],
) -> list[list[int]]:
    """Best-fit decreasing in the partition's dominant limit (the second opinion).

    Groups go largest first into the open body with the least room left in the dominant limit that
    also fits the other limit: a sorted list of ``room << 32 | body`` and ``bisect``. The scan past
    bodies that fail the other limit is capped, so a pathological input costs time linear in groups.
    """
    total_cost = sum(costs) + sum(c for c, _ in preloaded)
    total_count = sum(counts) + sum(c for _, c in preloaded)
    by_bytes = total_cost * max_items >= total_count * capacity
    if by_bytes:
        order = sorted(range(len(costs)), key=lambda g: (-costs[g], -counts[g], tie[g]))
    else:
        order = sorted(range(len(costs)), key=lambda g: (-counts[g], -costs[g], tie[g]))
    rem_b = [capacity - cost for cost, _ in preloaded]
    rem_c = [max_items - count for _, count in preloaded]
    bodies: list[list[int]] = [[] for _ in preloaded]
    fit_rem, other_rem = (rem_b, rem_c) if by_bytes else (rem_c, rem_b)
    fit_size, other_size = (costs, counts) if by_bytes else (counts, costs)
    n = len(order)
    # suffix minima: a body that cannot take the smallest remaining group can leave the search for good
    min_b = [_INFINITY] * (n + 1)
    min_c = [_INFINITY] * (n + 1)
    for k in range(n - 1, -1, -1):
        group = order[k]
        min_b[k] = min(min_b[k + 1], costs[group])
        min_c[k] = min(min_c[k + 1], counts[group])
    keys = sorted(
        (fit_rem[i] << _BIN_BITS) | i
        for i in range(len(preloaded))
        if n and rem_b[i] >= min_b[0] and rem_c[i] >= min_c[0]
    )
    for k, group in enumerate(order):
        need = fit_size[group]
        other_need = other_size[group]
        pos = bisect_left(keys, need << _BIN_BITS)
        chosen = -1
        scan = pos + _BFD_SCAN
        while pos < len(keys) and pos < scan:
            body = keys[pos] & _BIN_MASK
            if other_rem[body] >= other_need:
                chosen = body
                del keys[pos]
                break
            if rem_b[body] < min_b[k] or rem_c[body] < min_c[k]:
                del keys[pos]  # can take no remaining group: never look at it again
            else:
                pos += 1
        if chosen < 0:
            chosen = len(bodies)
            bodies.append([])
            rem_b.append(capacity)
            rem_c.append(max_items)
        bodies[chosen].append(group)
        rem_b[chosen] -= costs[group]
        rem_c[chosen] -= counts[group]
        if rem_b[chosen] >= min_b[k + 1] and rem_c[chosen] >= min_c[k + 1]:
            insort(keys, (fit_rem[chosen] << _BIN_BITS) | chosen)
    return bodies


class _FitIndex:
    """Groups sorted ascending by ``(primary, secondary, tie)``; :meth:`take` removes and returns the
    largest group with ``primary <= a`` and ``secondary <= b`` in ``O(log n)``: ``bisect`` bounds the
    primary, a segment tree of secondary minima finds the rightmost position under the bound."""

    def __init__(
        self, groups: Sequence[int], primary: Sequence[int], secondary: Sequence[int], tie: Sequence[str]
    ) -> None:
        ordered = sorted(groups, key=lambda g: (primary[g], secondary[g], tie[g]))
        self.groups = ordered
        self.keys = [primary[g] for g in ordered]
        size = 1
        while size < len(ordered):
            size *= 2
        tree = [_INFINITY] * (2 * size)
        for i, group in enumerate(ordered):
            tree[size + i] = secondary[group]
        for i in range(size - 1, 0, -1):
            tree[i] = min(tree[2 * i], tree[2 * i + 1])
        self.size = size
        self.tree = tree

    def take(self, a: int, b: int) -> int:
        position = bisect_right(self.keys, a) - 1
        if position < 0:
            return -1
        tree, size = self.tree, self.size
        node = position + size
        if tree[node] > b:
            node = -1
            i = position + size
            while i > 1:
                if i & 1 and tree[i - 1] <= b:
                    node = i - 1
                    while node < size:
                        node = 2 * node + 1 if tree[2 * node + 1] <= b else 2 * node
                    break
                i >>= 1
            if node < 0:
                return -1
        found = node - size
        tree[node] = _INFINITY
        node >>= 1
        while node:
            value = min(tree[2 * node], tree[2 * node + 1])
            if tree[node] == value:
                break
            tree[node] = value
            node >>= 1
        return self.groups[found]


def _ffd_balanced(
    costs: Sequence[int],
    counts: Sequence[int],
    capacity: int,
    max_items: int,
    tie: Sequence[str],
    preloaded: Sequence[tuple[int, int]],
) -> list[list[int]]:
    """First-fit decreasing, one body at a time, with the two limits kept in balance.

    A body is filled by repeatedly taking the largest remaining group that still fits (in one
    dimension this is exactly first-fit decreasing). Groups are split into byte-heavy ones (more
    bytes per item than ``capacity / max_items``) and item-heavy ones; a body whose byte share runs
    ahead of its item share takes from the item-heavy side next, and vice versa, so both limits fill
    together instead of the small events piling up, item-bound, in the last bodies.
    """
    heavy_groups = [g for g in range(len(costs)) if costs[g] * max_items > counts[g] * capacity]
    light_groups = [g for g in range(len(costs)) if costs[g] * max_items <= counts[g] * capacity]
    heavy = _FitIndex(heavy_groups, costs, counts, tie)
    light = _FitIndex(light_groups, counts, costs, tie)
    left = len(costs)
    bodies: list[list[int]] = []
    loads = list(preloaded)
    number = 0
    while number < len(loads) or left:
        load_b, load_c = loads[number] if number < len(loads) else (0, 0)
        members: list[int] = []
        while left:
            room_b, room_c = capacity - load_b, max_items - load_c
            if load_b * max_items > load_c * capacity:
                group = light.take(room_c, room_b)
                if group < 0:
                    group = heavy.take(room_b, room_c)
            else:
                group = heavy.take(room_b, room_c)
                if group < 0:
                    group = light.take(room_c, room_b)
            if group < 0:
                break
            members.append(group)
            load_b += costs[group]
            load_c += counts[group]
            left -= 1
        bodies.append(members)
        number += 1
    return bodies


def pack_groups(
    costs: Sequence[int],
    counts: Sequence[int],
    capacity: int,
    max_items: int,
    *,
    tie_keys: Sequence[str] | None = None,
    preloaded: Sequence[tuple[int, int]] = (),
    target: int = 0,
    strategies: Sequence[str] = STRATEGIES,
) -> Packing:
    """Pack indivisible groups (byte cost, item count) into as few bodies as the heuristics find.

    Every group must fit an empty body. ``preloaded`` are partly filled bodies (cost, count) that
    groups may join (the last pieces of split orders). ``tie_keys`` order equal-sized groups (content
    keys make the result independent of input order). Strategies run in turn and the fewest bodies
    win; the search stops at the first whose body count is ``<= target`` (pass the lower bound).
    """
    tie: Sequence[str] = tie_keys if tie_keys is not None else [""] * len(costs)
    best: list[list[int]] | None = None
    best_name = ""
    for name in strategies:
        if name == "ffd-balanced":
            bodies = _ffd_balanced(costs, counts, capacity, max_items, tie, preloaded)
        elif name == "bfd":
            bodies = _best_fit_decreasing(costs, counts, capacity, max_items, tie, preloaded)
        else:
            raise OmnisendConfigError(
                f"unknown packing strategy {name!r}; use one of {', '.join(STRATEGIES)}"
            )
        if best is None or len(bodies) < len(best):
            best, best_name = bodies, name
        if len(best) <= target:
            break
    if best is None:
        raise OmnisendConfigError("pack_groups needs at least one strategy")
    assignment = [-1] * len(costs)
    for body, members in enumerate(best):
        for group in members:
            assignment[group] = body
    return Packing(assignment=assignment, bodies=best, strategy=best_name)


# ---------------------------------------------------------------------------------------------------
# the planner


def _shard_ranges(follows: Sequence[bool], max_shards: int, min_bodies: int) -> list[tuple[int, int]]:
    """Split bodies 0..n-1 into at most ``max_shards`` near-equal runs, never inside a split order."""
    n = len(follows)
    if n == 0:
        return []
    shards = min(max_shards, -(-n // min_bodies))
    cuts = [0]
    for i in range(1, shards):
        cut = (i * n) // shards
        while cut < n and follows[cut]:
            cut += 1
        if cut > cuts[-1] and cut < n:
            cuts.append(cut)
    cuts.append(n)
    return list(itertools.pairwise(cuts))


def _dead_letter_line(event: bytes, reason: str) -> bytes:
    return b'{"event":' + event + b',"reason":' + orjson.dumps(reason) + b',"stage":"plan"}\n'


def plan_batches(
    src: BinaryIO,
    limits: BatchLimits,
    *,
    open_shard: Callable[[int], BinaryIO] | None,
    dead_letters: BinaryIO,
    max_shards: int = DEFAULT_MAX_SHARDS,
    min_bodies_per_shard: int = DEFAULT_MIN_BODIES_PER_SHARD,
) -> ChunkPlan:
    """Plan and write the request bodies for the valid events in ``src`` (NDJSON, binary).

    :param src: one compact JSON event per line, read from its current position; seekable is best (a
        stream that cannot seek is spooled to a temporary file).
    :param open_shard: ``open_shard(i)`` returns the binary file for shard ``i``; each body is written
        there as one line and the file is closed afterwards. ``None`` writes no bodies (dry run: the
        plan, body ids and sizes are still exact).
    :param dead_letters: receives one ``{"event", "reason", "stage": "plan"}`` line per event that
        alone exceeds the byte limit (not closed).
    :param max_shards: most shards (mapped send tasks); must stay below Airflow's max_map_length.
    :param min_bodies_per_shard: fewer bodies than this never get a shard of their own.
    """
    if not isinstance(limits, BatchLimits):
        raise OmnisendConfigError(f"limits must be a BatchLimits, got {type(limits).__name__}")
    _check_int(
        "plan_batches", "max_shards", max_shards, 1, f"use 1..{AIRFLOW_MAX_MAP_LENGTH - 1} (default 64)"
    )
    if max_shards >= AIRFLOW_MAX_MAP_LENGTH:
        raise OmnisendConfigError(
            f"plan_batches.max_shards must be below Airflow's max_map_length ({AIRFLOW_MAX_MAP_LENGTH}), "
            f"got {max_shards}; use at most {AIRFLOW_MAX_MAP_LENGTH - 1} (default {DEFAULT_MAX_SHARDS})"
        )
    _check_int(
        "plan_batches",
        "min_bodies_per_shard",
        min_bodies_per_shard,
        1,
        f"use a positive count (default {DEFAULT_MIN_BODIES_PER_SHARD})",
    )
    seekable = False
    try:
        seekable = src.seekable()
    except (AttributeError, OSError):
        seekable = False
    if seekable:
        index = _index_events(src, None, limits)
        return _write_plan(src, index, limits, open_shard, dead_letters, max_shards, min_bodies_per_shard)
    with tempfile.TemporaryFile(prefix="omnisend-plan-") as spool:
        index = _index_events(src, spool, limits)
        spool.flush()
        return _write_plan(
            spool,
            index,
            limits,
            open_shard,
            dead_letters,
            max_shards,
            min_bodies_per_shard,
        )


def _write_plan(
    src: BinaryIO,
    index: _Index,
    limits: BatchLimits,
    open_shard: Callable[[int], BinaryIO] | None,
    dead_letters: BinaryIO,
    max_shards: int,
    min_bodies_per_shard: int,
) -> ChunkPlan:
    capacity, max_items = limits.body_capacity, limits.max_items
    lengths, ranks, times, crcs, ids = index.lengths, index.ranks, index.times, index.crcs, index.event_ids

    offsets = index.offsets
    # plain OS files only: a wrapper's fileno() (gzip, ...) would name the wrong bytes
    fileno = src.fileno() if isinstance(src, io.BufferedReader | io.BufferedRandom | io.FileIO) else -1

    def read(event: int) -> bytes:
        if fileno >= 0:  # one system call, no buffer to refill and throw away
            data = os.pread(fileno, lengths[event], offsets[event])
        else:
            src.seek(offsets[event])
            data = src.read(lengths[event])
        if len(data) != lengths[event]:
            raise OmnisendInputError(
                "the valid-events file got shorter while it was planned; plan again from a stable copy"
            )
        return data

    # dead letters first, in input order
    for event in index.oversized:
        reason = (
            f"event is {lengths[event]} bytes, over the {limits.max_payload_bytes}-byte body limit "
            f"(the batch envelope takes {ENVELOPE_BYTES} bytes, so one event can be at most "
            f"{limits.max_event_bytes} bytes)"
        )
        dead_letters.write(_dead_letter_line(read(event), reason))

    def event_key(event: int) -> tuple[int, int, str, int, int, int]:
        return (ranks[event], times[event], ids[event], crcs[event], lengths[event], event)

    # groups in lifecycle order, named by content (not by position) so that line order never matters
    keyed: list[tuple[str, list[int]]] = []
    for key, members in index.orders.items():
        members.sort(key=event_key)
        keyed.append(("o" + key, members))
    for event in index.lone:
        keyed.append((f"e{ids[event]}:{crcs[event]:08x}:{lengths[event]}", [event]))
    index.orders = {}
    keyed.sort(key=lambda pair: (pair[0], event_key(pair[1][0])))
    tie_keys = [key for key, _ in keyed]
    members_of = [members for _, members in keyed]
    del keyed
    costs = [sum(lengths[e] for e in members) + len(members) for members in members_of]

    # split orders that do not fit one body: greedy pieces in lifecycle order
    chains: list[list[list[int]]] = []
    preloaded: list[tuple[int, int]] = []
    whole: list[int] = []
    for group, members in enumerate(members_of):
        if costs[group] <= capacity and len(members) <= max_items:
            whole.append(group)
            continue
        pieces: list[list[int]] = [[]]
        cost = 0
        for event in members:
            item = lengths[event] + 1
            if pieces[-1] and (cost + item > capacity or len(pieces[-1]) >= max_items):
                pieces.append([])
                cost = 0
            pieces[-1].append(event)
            cost += item
        chains.append(pieces)
        preloaded.append((cost, len(pieces[-1])))
    total_items = sum(len(m) for m in members_of)
    bound = lower_bound(sum(costs), total_items, limits)
    fixed = sum(len(pieces) - 1 for pieces in chains)
    packing = pack_groups(
        [costs[g] for g in whole],
        [len(members_of[g]) for g in whole],
        capacity,
        max_items,
        tie_keys=[tie_keys[g] for g in whole],
        preloaded=preloaded,
        target=bound - fixed,
    )

    # bodies in send order: each split order's pieces (its last piece shared), then the rest
    body_events: list[list[int]] = []
    follows: list[bool] = []
    for chain, pieces in enumerate(chains):
        for number, piece in enumerate(pieces):
            events = list(piece)
            if number == len(pieces) - 1:
                for group in packing.bodies[chain]:
                    events.extend(members_of[whole[group]])
            body_events.append(events)
            follows.append(number > 0)
    for groups_in_body in packing.bodies[len(chains) :]:
        body_events.append([e for group in groups_in_body for e in members_of[whole[group]]])
        follows.append(False)
    strategy = packing.strategy
    del members_of, costs, packing

    shards: list[ShardPlan] = []
    for shard_index, (start, end) in enumerate(_shard_ranges(follows, max_shards, min_bodies_per_shard)):
        out = open_shard(shard_index) if open_shard is not None else None
        plans: list[BodyPlan] = []
        try:
            for position, body_number in enumerate(range(start, end)):
                events = body_events[body_number]
                body = encode_body([read(e) for e in events])
                if len(body) > limits.max_payload_bytes or len(events) > max_items:  # cannot happen
                    raise OmnisendError(
                        f"planner bug: body {body_number} has {len(events)} items and {len(body)} bytes, "
                        f"over the limits {limits}; please report it with the plan's input"
                    )
                if out is not None:
                    out.write(body)
                    out.write(b"\n")
                plans.append(
                    BodyPlan(
                        body_id=hashlib.sha256(body).hexdigest(),
                        index=position,
                        items=len(events),
                        size=len(body),
                        first_event_id=ids[events[0]] or None,
                        last_event_id=ids[events[-1]] or None,
                        follows=plans[-1].body_id if follows[body_number] else None,
                    )
                )
        finally:
            if out is not None:
                out.close()
        shards.append(ShardPlan(index=shard_index, bodies=tuple(plans)))

    plan = ChunkPlan(
        limits=limits,
        shards=tuple(shards),
        events=len(ids),
        dead_lettered=len(index.oversized),
        lower_bound=bound,
        split_orders=len(chains),
        packing=strategy,
        max_shards=max_shards,
        min_bodies_per_shard=min_bodies_per_shard,
    )
    log.info("Planned %s", plan.describe())
    return plan
