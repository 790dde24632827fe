"""Bin packing of indivisible groups (byte cost, item count) into bodies with two limits.

Sizes only, no event data, so it can be tested and benchmarked on millions of synthetic sizes. The
strategies, the lower bound and the guarantees are explained in docs/planning.md.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow_omnisend.events.chunk_plan import BatchLimits

_INFINITY = 2**62
_BIN_BITS = 32
_BIN_MASK = (1 << _BIN_BITS) - 1
_BFD_SCAN = 64
#: packing strategies, in the order they are tried
STRATEGIES = ("ffd-balanced", "bfd")


def lower_bound(total_cost: int, items: int, limits: BatchLimits) -> int:
    """Fewest bodies any packing needs for ``items`` events whose costs (length + 1) sum to ``total_cost``."""
    if items == 0:
        return 0
    return max(-(-total_cost // limits.body_capacity), -(-items // limits.max_items))


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
    first, then = (costs, counts) if by_bytes else (counts, costs)
    order = _sorted_groups(range(len(costs)), first, then, descending=True)
    rem_b = [capacity - cost for cost, _ in preloaded]
    rem_c = [max_items - count for _, count in preloaded]
    bodies: list[list[int]] = [[] for _ in preloaded]
    fit_rem, other_rem = (rem_b, rem_c) if by_bytes else (rem_c, rem_b)
    fit_size, other_size = (costs, counts) if by_bytes else (counts, costs)
    n = len(order)
    # suffix minima: a body that cannot take the smallest remaining group can leave the search for good
    min_b = array("q", [_INFINITY]) * (n + 1)
    min_c = array("q", [_INFINITY]) * (n + 1)
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


def _sorted_groups(
    groups: Iterable[int], primary: Sequence[int], secondary: Sequence[int], *, descending: bool = False
) -> array[int]:
    """Groups sorted by ``(primary, secondary)``, equal ones in their given order: two stable sorts
    on one int each, which keeps no key tuple per group."""
    by_secondary = sorted(groups, key=secondary.__getitem__, reverse=descending)
    return array("q", sorted(by_secondary, key=primary.__getitem__, reverse=descending))


class _FitIndex:
    """Groups sorted ascending by ``(primary, secondary)``, then by number; :meth:`take` removes and
    returns the largest group with ``primary <= a`` and ``secondary <= b`` in ``O(log n)``: ``bisect``
    bounds the primary, a segment tree of secondary minima finds the rightmost position under the bound.
    """

    def __init__(self, groups: Iterable[int], primary: Sequence[int], secondary: Sequence[int]) -> None:
        ordered = _sorted_groups(groups, primary, secondary)
        self.groups = ordered
        self.keys = array("q", (primary[g] for g in ordered))
        size = 1
        while size < len(ordered):
            size *= 2
        tree = array("q", [_INFINITY]) * (2 * size)
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
    preloaded: Sequence[tuple[int, int]],
) -> list[list[int]]:
    """First-fit decreasing, one body at a time, with the two limits kept in balance.

    A body is filled by repeatedly taking the largest remaining group that still fits (in one
    dimension this is exactly first-fit decreasing). Groups are split into byte-heavy ones (more
    bytes per item than ``capacity / max_items``) and item-heavy ones; a body whose byte share runs
    ahead of its item share takes from the item-heavy side next, and vice versa, so both limits fill
    together instead of the small events piling up, item-bound, in the last bodies.
    """
    heavy = _FitIndex(
        (g for g in range(len(costs)) if costs[g] * max_items > counts[g] * capacity), costs, counts
    )
    light = _FitIndex(
        (g for g in range(len(costs)) if costs[g] * max_items <= counts[g] * capacity), counts, costs
    )
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
    preloaded: Sequence[tuple[int, int]] = (),
    target: int = 0,
    strategies: Sequence[str] = STRATEGIES,
) -> Packing:
    """Pack indivisible groups (byte cost, item count) into as few bodies as the heuristics find.

    Every group must fit an empty body. ``preloaded`` are partly filled bodies (cost, count) that
    groups may join (the last pieces of split orders). Equal-sized groups keep their given order (give
    them in a content order for a result independent of input order). Strategies run in turn and the
    fewest bodies win; the search stops at the first whose body count is ``<= target`` (pass the lower
    bound).
    """
    best: list[list[int]] | None = None
    best_name = ""
    for name in strategies:
        if name == "ffd-balanced":
            bodies = _ffd_balanced(costs, counts, capacity, max_items, preloaded)
        elif name == "bfd":
            bodies = _best_fit_decreasing(costs, counts, capacity, max_items, preloaded)
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
