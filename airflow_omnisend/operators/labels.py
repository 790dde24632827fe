"""How a mapped send task is named in Airflow's UI: ``shard 3: 16 bodies, 14,210 events``.

Airflow shows a mapped task instance by its map index unless the task has a ``map_index_template``; it
renders that template with the task's context before ``execute`` (when the plan is not read yet) and
again after it. :data:`SEND_MAP_INDEX_TEMPLATE` names the shard from the start; the send task puts the
shard's counts from the plan into the context (:func:`label_shard`), so the name after the run - or
after a failure - says how much the shard holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from airflow.sdk import Context

    from airflow_omnisend.events.chunk_plan import ShardPlan

__all__ = ["SEND_MAP_INDEX_TEMPLATE", "SHARD_LABEL_KEY", "label_shard", "shard_label"]

#: the context key the send task sets and the template reads
SHARD_LABEL_KEY: Final = "omnisend_shard_label"
#: before the send task has read the plan, the shard index alone (``task.shard`` is the mapped value)
SEND_MAP_INDEX_TEMPLATE: Final = "{{ omnisend_shard_label | default('shard ' ~ task.shard) }}"


def shard_label(shard: ShardPlan) -> str:
    """``shard 3: 16 bodies, 14,210 events``: the shard's index and what the plan puts in it."""
    bodies = len(shard.bodies)
    events = shard.items
    return (
        f"shard {shard.index}: {bodies:,} bod{'y' if bodies == 1 else 'ies'}, "
        f"{events:,} event{'' if events == 1 else 's'}"
    )


def label_shard(context: Context | MutableMapping[str, Any] | None, shard: ShardPlan) -> None:
    """Put the shard's label into the task's context, where the ``map_index_template`` reads it."""
    if context is not None:  # a key of our own: not one of Context's declared keys
        cast("MutableMapping[str, Any]", context)[SHARD_LABEL_KEY] = shard_label(shard)
