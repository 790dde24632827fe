"""Omnisend (the emulator) restarted between the POSTs and their poll: the batches survive in its record,
so the resumed send task finds each one, and no body is sent twice."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.exceptions import TaskDeferred
from send_helpers import make_events, stage_valid
from test_send_batches import plan, run_deferrable, sender

from airflow_omnisend.operators.receipts import PartitionReceipts
from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

CONN = "omnisend_restart"


def test_batches_posted_before_a_restart_are_polled_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = str(tmp_path / "record.sqlite3")
    events = make_events(80)
    stage_valid(tmp_path / "staging", events)
    # a long processing delay: every batch is still pending when the emulator goes down
    first = OmnisendEmulator(EmulatorConfig(db_path=record, processing_delay=600)).start()
    port = first.port
    try:
        conn = {"conn_type": "omnisend", "host": first.base_url, "password": first.api_key,
                "extra": {"max_items_per_batch": 40}}  # fmt: skip
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
        shards = plan(tmp_path / "staging", CONN, min_bodies_per_shard=1000)
        make = sender(tmp_path / "staging", CONN, shards[0], deferrable=True)
        with pytest.raises(TaskDeferred):
            make().execute({})  # every body submitted, the task waits in the triggerer
        posted = first.store.request_count(method="POST")
        assert posted >= 3
    finally:
        first.stop()
    with OmnisendEmulator(EmulatorConfig(db_path=record, port=port, processing_delay=0.05)) as again:
        run_deferrable(make, {})
        assert again.store.request_count(method="POST") == posted  # the record spans both runs
        receipts = PartitionReceipts(make().partition_staging()).all()
        assert all(r.status == "finished" and r.accepted == r.items for r in receipts)
        assert len(receipts) == posted
        assert again.store.duplicate_count() == 0
        assert sorted(e.event_id for e in again.store.accepted_events()) == sorted(
            e["eventID"] for e in events
        )
