"""The mapped send task's name in Airflow's UI: the template, the label and where the send sets it."""

from __future__ import annotations

import hashlib

from airflow.sdk import DAG

from airflow_omnisend.events.chunk_plan import BodyPlan, ShardPlan
from airflow_omnisend.operators.labels import (
    SEND_MAP_INDEX_TEMPLATE,
    SHARD_LABEL_KEY,
    label_shard,
    shard_label,
)
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator


def _shard(index: int, *items: int) -> ShardPlan:
    bodies = tuple(
        BodyPlan(
            body_id=hashlib.sha256(f"{index}-{n}".encode()).hexdigest(),
            index=n,
            items=count,
            size=count * 900,
            first_event_id=None,
            last_event_id=None,
        )
        for n, count in enumerate(items)
    )
    return ShardPlan(index=index, bodies=bodies)


def test_the_label_names_the_shard_and_what_the_plan_puts_in_it() -> None:
    assert shard_label(_shard(3, *([900] * 15), 710)) == "shard 3: 16 bodies, 14,210 events"
    assert shard_label(_shard(0, 1)) == "shard 0: 1 body, 1 event"


def test_the_template_renders_the_label_once_set_and_the_index_before() -> None:
    """Rendered as Airflow's task runner does: the DAG's Jinja environment over the task's context."""
    with DAG("labels", schedule=None) as dag:
        send = OmnisendSendBatchesOperator(
            task_id="send", store_id="acme_store", partition="2024-03-10", shard=3, staging="/tmp/x"
        )
    template = dag.get_template_env().from_string(SEND_MAP_INDEX_TEMPLATE)
    context: dict[str, object] = {"task": send}
    assert template.render(context) == "shard 3"  # before execute: the plan is not read yet
    label_shard(context, _shard(3, 900, 900))
    assert context[SHARD_LABEL_KEY] == "shard 3: 2 bodies, 1,800 events"
    assert template.render(context) == "shard 3: 2 bodies, 1,800 events"
    label_shard(None, _shard(3, 1))  # an operator executed by hand without a context
