from __future__ import annotations

import pytest

from airflow_omnisend.events import names


def test_event_names_in_lifecycle_order() -> None:
    assert names.EVENT_NAMES == (
        "placed order",
        "paid for order",
        "order fulfilled",
        "order canceled",
        "order refunded",
    )
    assert [names.LIFECYCLE_RANK[n] for n in names.EVENT_NAMES] == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError):
        names.LIFECYCLE_RANK["placed order"] = 9  # type: ignore[index]


@pytest.mark.parametrize("other", ["placed  order", "Placed Order", "", None, 3, ("placed order",)])
def test_anything_else_ranks_after_the_five(other: object) -> None:
    assert names.lifecycle_rank(other) == names.UNKNOWN_RANK
    assert max(names.LIFECYCLE_RANK.values()) < names.UNKNOWN_RANK


def test_rank_is_a_total_order_of_the_names() -> None:
    ranks = [names.lifecycle_rank(n) for n in names.EVENT_NAMES]
    assert ranks == sorted(set(ranks))
    assert names.lifecycle_rank(names.CANCELED) < names.lifecycle_rank(names.REFUNDED)
