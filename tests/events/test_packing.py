"""Packing: every group in exactly one body within both limits, the proved bound, and the packing
ratio on realistic partition sizes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_helpers import PROFILES, allowed, realistic_sizes

from airflow_omnisend.events.chunk_plan import BatchLimits
from airflow_omnisend.events.packing import _sorted_groups, lower_bound, pack_groups


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(2, 5000), st.integers(1, 12)), max_size=120),
    st.integers(5000, 20000),
    st.integers(12, 60),
    st.sampled_from([("ffd-balanced",), ("bfd",), ("ffd-balanced", "bfd")]),
)
def test_packing_is_valid_and_keeps_the_proved_bound(
    groups: list[tuple[int, int]], capacity: int, max_items: int, strategies: tuple[str, ...]
) -> None:
    """Any sizes: every group in exactly one body within both limits; and for the main strategy the
    bound of the module docstring: bodies < (sum(cost)/capacity + items/max_items) / (1 - eps) + 1,
    and one body whenever everything fits one."""
    costs = [c for c, _ in groups]
    counts = [n for _, n in groups]
    packing = pack_groups(costs, counts, capacity, max_items, strategies=strategies)
    assert sorted(g for body in packing.bodies for g in body) == list(range(len(groups)))
    assert all(body for body in packing.bodies)
    for body in packing.bodies:
        assert sum(costs[g] for g in body) <= capacity
        assert sum(counts[g] for g in body) <= max_items
    if not groups:
        assert packing.bodies == []
        return
    if sum(costs) <= capacity and sum(counts) <= max_items:
        assert len(packing.bodies) == 1
    eps = max(max(costs) / capacity, max(counts) / max_items)
    if strategies[0] == "ffd-balanced" and eps < 1:
        assert len(packing.bodies) < (sum(costs) / capacity + sum(counts) / max_items) / (1 - eps) + 1


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=60), st.booleans())
def test_two_stable_sorts_order_like_one_sort_on_pairs(
    sizes: list[tuple[int, int]], descending: bool
) -> None:
    """The packers' order without key tuples: by (primary, secondary), equal groups by number."""
    primary, secondary = [p for p, _ in sizes], [s for _, s in sizes]
    sign = -1 if descending else 1
    expected = sorted(range(len(sizes)), key=lambda g: (sign * primary[g], sign * secondary[g], g))
    assert list(_sorted_groups(range(len(sizes)), primary, secondary, descending=descending)) == expected


def test_lower_bound() -> None:
    limits = BatchLimits(100, 1_000_000)
    assert lower_bound(0, 0, limits) == 0
    assert lower_bound(limits.body_capacity + 1, 10, limits) == 2
    assert lower_bound(10, 201, limits) == 3


@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize(("n_events", "median"), [(60_000, 1200), (55_000, 600), (30_000, 3000)])
def test_packing_ratio_on_realistic_sizes(profile: str, n_events: int, median: int) -> None:
    limits = PROFILES[profile]
    groups = realistic_sizes(n_events, seed=n_events + median, median=median)
    costs = [sum(size + 1 for size in g) for g in groups]
    counts = [len(g) for g in groups]
    bound = lower_bound(sum(costs), sum(counts), limits)
    packing = pack_groups(costs, counts, limits.body_capacity, limits.max_items, target=bound)
    bodies = len(packing.bodies)
    assert bound >= 50
    assert bodies <= 1.02 * bound, f"{profile}: {bodies} bodies for a lower bound of {bound}"
    for members in packing.bodies:
        assert sum(costs[g] for g in members) <= limits.body_capacity
        assert sum(counts[g] for g in members) <= limits.max_items
    assert sorted(g for members in packing.bodies for g in members) == list(range(len(groups)))


@pytest.mark.parametrize("seed", range(12))
def test_small_realistic_partitions_are_optimal_or_one_over(seed: int) -> None:
    rng = random.Random(seed)
    groups = realistic_sizes(rng.choice([50, 300, 1000, 3000]), seed, rng.choice([600, 1200, 3000]))
    costs = [sum(size + 1 for size in g) for g in groups]
    counts = [len(g) for g in groups]
    for limits in PROFILES.values():
        bound = lower_bound(sum(costs), sum(counts), limits)
        bodies = len(pack_groups(costs, counts, limits.body_capacity, limits.max_items, target=bound).bodies)
        assert bound <= bodies <= allowed(bound)
