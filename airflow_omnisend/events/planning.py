"""Chunk planning: valid events -> the exact request bodies for ``POST /batches``, grouped into shards.

Every body costs one request of the brand's rate limit, so the planner packs events tightly, keeps an
order's events together and in lifecycle order, and writes each body once as the bytes that will be
sent (its sha256 is its identity across reruns). An index pass reads each event's sort keys and byte
range; bodies are then built from byte ranges of the (seekable) source, so the events are never all
in memory. Order rules, packing, guarantees, memory and determinism: docs/planning.md.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import tempfile
import zlib
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from airflow_omnisend.checks import check_int
from airflow_omnisend.events.body_format import ENVELOPE_BYTES, encode_body
from airflow_omnisend.events.chunk_plan import (
    AIRFLOW_MAX_MAP_LENGTH,
    DEFAULT_MAX_SHARDS,
    DEFAULT_MIN_BODIES_PER_SHARD,
    MAX_MIN_BODIES_PER_SHARD,
    BatchLimits,
    BodyPlan,
    ChunkPlan,
    ShardPlan,
)
from airflow_omnisend.events.names import lifecycle_rank
from airflow_omnisend.events.packing import Packing, lower_bound, pack_groups
from airflow_omnisend.events.timefmt import try_parse_instant
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendError, OmnisendInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["plan_batches"]

log = logging.getLogger(__name__)

#: sort key of an event whose eventTime is not a usable time: after every real time
_NO_TIME = 2**62
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------
# index pass


class _Texts:
    """Many short strings in one buffer: ``texts[i]`` decodes the i-th (an eventID costs its UTF-8 bytes
    and one offset instead of a str object)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends: array[int] = array("q")

    def append(self, text: str) -> None:
        self._data += text.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._data))

    def __getitem__(self, number: int) -> str:
        start = self._ends[number - 1] if number else 0
        return self._data[start : self._ends[number]].decode("utf-8", "surrogatepass")

    def __len__(self) -> int:
        return len(self._ends)


@dataclass
class _Index:
    """Per event: where its bytes are, how it sorts and its order, in typed arrays (no object per event).

    An order's events are a linked list: ``group_heads[g]`` is the last event indexed of the order
    numbered ``g`` in ``order_names``, ``next_in_group[e]`` the one indexed before ``e`` (-1: none).
    """

    offsets: array[int] = field(default_factory=lambda: array("q"))
    lengths: array[int] = field(default_factory=lambda: array("q"))
    ranks: array[int] = field(default_factory=lambda: array("b"))
    times: array[int] = field(default_factory=lambda: array("q"))
    crcs: array[int] = field(default_factory=lambda: array("I"))
    event_ids: _Texts = field(default_factory=_Texts)
    order_names: dict[str, int] = field(default_factory=dict)
    group_heads: array[int] = field(default_factory=lambda: array("q"))
    next_in_group: array[int] = field(default_factory=lambda: array("q"))
    lone: array[int] = field(default_factory=lambda: array("q"))
    oversized: array[int] = field(default_factory=lambda: array("q"))

    @property
    def events(self) -> int:
        return len(self.offsets)

    def add_to_order(self, key: str, event: int) -> None:
        group = self.order_names.setdefault(key, len(self.group_heads))
        if group == len(self.group_heads):
            self.group_heads.append(-1)
        self.next_in_group.append(self.group_heads[group])
        self.group_heads[group] = event


def _time_key(value: object) -> int:
    """eventTime as microseconds since the epoch (offsets honoured), so '+02:00' sorts correctly; a value
    that is not a time with a UTC offset (``timefmt``'s strict rule) sorts after every time."""
    moment = try_parse_instant(value)
    if moment is None:
        return _NO_TIME
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
    """One pass over the lines: each event's byte range and sort keys, its order group or the
    oversized list; ``spool`` (if given) receives a copy of the lines to read the bodies from."""
    index = _Index()
    max_event = limits.max_event_bytes
    position = spool.tell() if spool is not None else src.tell()
    add_offset, add_length = index.offsets.append, index.lengths.append
    add_rank, add_time, add_crc = index.ranks.append, index.times.append, index.crcs.append
    add_id, add_to_order, no_order = index.event_ids.append, index.add_to_order, index.next_in_group.append
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
        add_rank(lifecycle_rank(event.get("eventName")))
        add_time(_time_key(event.get("eventTime")))
        add_crc(zlib.crc32(memoryview(raw)[start:end]))
        event_id = event.get("eventID")
        add_id(event_id if isinstance(event_id, str) else "")
        key = _order_key(event) if length <= max_event else None
        if key is not None:
            add_to_order(key, number)
        else:
            no_order(-1)
            (index.oversized if length > max_event else index.lone).append(number)
        number += 1
    return index


# ---------------------------------------------------------------------------------------------------
# the planner


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
    check_int(
        "plan_batches.max_shards",
        max_shards,
        minimum=1,
        fix=f"use 1..{AIRFLOW_MAX_MAP_LENGTH - 1} (default 64)",
    )
    if max_shards >= AIRFLOW_MAX_MAP_LENGTH:
        raise OmnisendConfigError(
            f"plan_batches.max_shards must be below Airflow's max_map_length ({AIRFLOW_MAX_MAP_LENGTH}), "
            f"got {max_shards}; use at most {AIRFLOW_MAX_MAP_LENGTH - 1} (default {DEFAULT_MAX_SHARDS})"
        )
    check_int(
        "plan_batches.min_bodies_per_shard",
        min_bodies_per_shard,
        minimum=1,
        maximum=MAX_MIN_BODIES_PER_SHARD,
        fix=f"use a positive count (default {DEFAULT_MIN_BODIES_PER_SHARD})",
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
    """Dead letters, then the bodies' layout (groups, split orders, packing), then the shard files."""
    read = _event_reader(src, index)
    _write_dead_letters(index, limits, read, dead_letters)
    layout = _lay_out_bodies(index, limits)
    ranges = _shard_ranges(layout.follows, max_shards, min_bodies_per_shard)
    shards = [
        _write_shard(number, start, end, layout, index, limits, read, open_shard)
        for number, (start, end) in enumerate(ranges)
    ]
    plan = ChunkPlan(
        limits=limits,
        shards=tuple(shards),
        events=index.events,
        dead_lettered=len(index.oversized),
        lower_bound=layout.lower_bound,
        split_orders=layout.split_orders,
        packing=layout.strategy,
        max_shards=max_shards,
        min_bodies_per_shard=min_bodies_per_shard,
    )
    log.info("Planned %s", plan.describe())
    return plan


def _event_reader(src: BinaryIO, index: _Index) -> Callable[[int], bytes]:
    """``read(event)``: the event's line bytes, read back from ``src`` by offset and length."""
    offsets, lengths = index.offsets, index.lengths
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

    return read


def _dead_letter_line(event: bytes, reason: str) -> bytes:
    return b'{"event":' + event + b',"reason":' + orjson.dumps(reason) + b',"stage":"plan"}\n'


def _write_dead_letters(
    index: _Index, limits: BatchLimits, read: Callable[[int], bytes], dead_letters: BinaryIO
) -> None:
    """One dead letter per event too big for any body, in input order."""
    for event in index.oversized:
        reason = (
            f"event is {index.lengths[event]} bytes, over the {limits.max_payload_bytes}-byte body limit "
            f"(the batch envelope takes {ENVELOPE_BYTES} bytes, so one event can be at most "
            f"{limits.max_event_bytes} bytes)"
        )
        dead_letters.write(_dead_letter_line(read(event), reason))


@dataclass
class _Groups:
    """The indivisible groups (an order, or an event without one), sorted by their content names.

    Group ``g`` holds ``events[starts[g]:starts[g + 1]]`` in lifecycle order and costs ``costs[g]``
    bytes in a body. Because groups are numbered in name order, a group's number breaks packing ties by
    content, not by position in the file.
    """

    starts: array[int] = field(default_factory=lambda: array("q", [0]))
    events: array[int] = field(default_factory=lambda: array("q"))
    costs: array[int] = field(default_factory=lambda: array("q"))

    def __len__(self) -> int:
        return len(self.costs)

    def members(self, group: int) -> array[int]:
        return self.events[self.starts[group] : self.starts[group + 1]]

    def count(self, group: int) -> int:
        return self.starts[group + 1] - self.starts[group]

    def add(self, members: Sequence[int], lengths: Sequence[int]) -> None:
        self.events.extend(members)
        self.starts.append(len(self.events))
        self.costs.append(sum(lengths[e] for e in members) + len(members))


def _group_events(index: _Index) -> _Groups:
    """Each order's events in lifecycle order (rank, then eventTime, then content), groups by name.

    A group's name is ``"e<eventID>:<crc>:<length>"`` for an event without an order (ties broken by the
    event's rank, time and position) and ``"o<orderID>"`` for an order, so lone events come first.
    """
    lengths, ranks, times, crcs, ids = index.lengths, index.ranks, index.times, index.crcs, index.event_ids

    def event_key(event: int) -> tuple[int, int, str, int, int, int]:
        return (ranks[event], times[event], ids[event], crcs[event], lengths[event], event)

    def lone_key(event: int) -> tuple[str, int, int, int]:
        return (f"{ids[event]}:{crcs[event]:08x}:{lengths[event]}", ranks[event], times[event], event)

    groups = _Groups()
    for event in sorted(index.lone, key=lone_key):
        groups.add((event,), lengths)
    heads, before = index.group_heads, index.next_in_group
    for name in sorted(index.order_names):
        members = []
        event = heads[index.order_names[name]]
        while event >= 0:
            members.append(event)
            event = before[event]
        members.sort(key=event_key)
        groups.add(members, lengths)
    index.order_names, index.group_heads, index.next_in_group = {}, array("q"), array("q")
    return groups


def _pieces(members: Sequence[int], lengths: Sequence[int], limits: BatchLimits) -> list[list[int]]:
    """An order too big for one body, cut greedily in lifecycle order into as few pieces as possible."""
    capacity, max_items = limits.body_capacity, limits.max_items
    pieces: list[list[int]] = [[]]
    cost = 0
    for event in members:
        item = lengths[event] + 1
        if pieces[-1] and (cost + item > capacity or len(pieces[-1]) >= max_items):
            pieces.append([])
            cost = 0
        pieces[-1].append(event)
        cost += item
    return pieces


@dataclass
class _Split:
    """``chains[c]``: the pieces of split order ``c``; ``preloaded[c]``: (cost, items) of its last piece,
    a body other groups may still join; ``whole``: the groups that fit one body."""

    chains: list[list[list[int]]] = field(default_factory=list)
    preloaded: list[tuple[int, int]] = field(default_factory=list)
    whole: array[int] = field(default_factory=lambda: array("q"))


def _split_orders(groups: _Groups, lengths: Sequence[int], limits: BatchLimits) -> _Split:
    split = _Split()
    for group in range(len(groups)):
        if groups.costs[group] <= limits.body_capacity and groups.count(group) <= limits.max_items:
            split.whole.append(group)
            continue
        pieces = _pieces(groups.members(group), lengths, limits)
        split.chains.append(pieces)
        split.preloaded.append((sum(lengths[e] + 1 for e in pieces[-1]), len(pieces[-1])))
    return split


@dataclass
class _Layout:
    """Every body's events in send order: body ``b`` is ``body_events[body_starts[b]:body_starts[b + 1]]``;
    ``follows[b]``: body ``b`` continues the split order of body ``b - 1``."""

    body_starts: array[int]
    body_events: array[int]
    follows: list[bool]
    lower_bound: int
    split_orders: int
    strategy: str

    def events_of(self, body: int) -> array[int]:
        return self.body_events[self.body_starts[body] : self.body_starts[body + 1]]


def _lay_out_bodies(index: _Index, limits: BatchLimits) -> _Layout:
    """Group, split the orders too big for a body, pack the rest; bodies in send order."""
    groups = _group_events(index)
    split = _split_orders(groups, index.lengths, limits)
    bound = lower_bound(sum(groups.costs), len(groups.events), limits)
    fixed = sum(len(pieces) - 1 for pieces in split.chains)
    packing = pack_groups(
        array("q", (groups.costs[g] for g in split.whole)),
        array("q", (groups.count(g) for g in split.whole)),
        limits.body_capacity,
        limits.max_items,
        # the groups are in name order, so their order breaks packing ties by content
        preloaded=split.preloaded,
        target=bound - fixed,
    )
    starts, events, follows = _bodies_in_send_order(groups, split, packing)
    return _Layout(starts, events, follows, bound, len(split.chains), packing.strategy)


def _bodies_in_send_order(
    groups: _Groups, split: _Split, packing: Packing
) -> tuple[array[int], array[int], list[bool]]:
    """Each split order's pieces (its last piece shared with packed groups), then the other bodies."""
    whole = split.whole
    starts, events = array("q", [0]), array("q")
    follows: list[bool] = []
    for chain, pieces in enumerate(split.chains):
        for number, piece in enumerate(pieces):
            events.extend(piece)
            if number == len(pieces) - 1:
                for group in packing.bodies[chain]:
                    events.extend(groups.members(whole[group]))
            starts.append(len(events))
            follows.append(number > 0)
    for groups_in_body in packing.bodies[len(split.chains) :]:
        for group in groups_in_body:
            events.extend(groups.members(whole[group]))
        starts.append(len(events))
        follows.append(False)
    return starts, events, follows


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


def _write_shard(
    number: int,
    start: int,
    end: int,
    layout: _Layout,
    index: _Index,
    limits: BatchLimits,
    read: Callable[[int], bytes],
    open_shard: Callable[[int], BinaryIO] | None,
) -> ShardPlan:
    """Bodies ``start..end-1`` built from the events' bytes, written as shard ``number`` (one per line)."""
    ids = index.event_ids
    out = open_shard(number) if open_shard is not None else None
    plans: list[BodyPlan] = []
    try:
        for position, body_number in enumerate(range(start, end)):
            events = layout.events_of(body_number)
            body = encode_body([read(e) for e in events])
            if len(body) > limits.max_payload_bytes or len(events) > limits.max_items:  # cannot happen
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
                    follows=plans[-1].body_id if layout.follows[body_number] else None,
                )
            )
    finally:
        if out is not None:
            out.close()
    return ShardPlan(index=number, bodies=tuple(plans))
