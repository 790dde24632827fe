"""The send path under every fault at once: 10% 5xx, 429 bursts, responses dropped after acceptance, a
stopped batch, per-item 5xx and per-item 400s. Whatever happens, every valid event ends accepted by
Omnisend or dead-lettered with a reason, none is accepted twice except where a response was lost, and
the receipts add up."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from send_helpers import connect, make_events, refused_event, stage_valid
from test_send_batches import plan, send_all

from airflow_omnisend.hooks.omnisend import OmnisendHook
from airflow_omnisend.operators.receipts import PartitionReceipts
from airflow_omnisend.testing.emulator import EmulatorConfig, FaultConfig, OmnisendEmulator

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_omnisend.staging import PartitionStaging

pytestmark = pytest.mark.integration

FAULTS = FaultConfig(
    seed=20,
    targets=frozenset({"create_batch", "get_batch", "get_batch_items"}),
    error_5xx_rate=0.10,
    burst_429_every=11,
    burst_429_length=2,
    burst_429_retry_after=0.2,
    drop_response_rate=0.10,
    stop_next_batches=1,
    item_5xx_rate=0.05,
)


def _dead_letters(partition: PartitionStaging) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in partition.dead_letters_dir.iterdir():
        if path.name.startswith("send-"):
            found[path.name[5:-7]] = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return found


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_every_event_is_accounted_for_under_faults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deferrable: bool
) -> None:
    config = EmulatorConfig(processing_delay=0.03, fractional_seconds=True, faults=FAULTS)
    with OmnisendEmulator(config) as emu:
        conn_id = connect(monkeypatch, emu, max_items_per_batch=100)
        valid = make_events(800) + [refused_event(n) for n in range(6)]
        refused_ids = {e["eventID"] for e in valid[-6:]}
        partition = stage_valid(tmp_path, valid)
        shards = plan(tmp_path, conn_id, min_bodies_per_shard=5)
        assert len(shards) >= 3

        manifests = send_all(tmp_path, conn_id, shards, deferrable=deferrable, max_item_retry_rounds=4)
        emu.wait_until_idle(timeout=60)
        store = emu.store
        log = store.request_log()
        # the faults really happened
        faults = Counter(r.fault for r in log)
        assert faults["5xx"] > 0, faults
        assert faults["429-burst"] > 0, faults
        assert faults["drop"] > 0, faults
        assert any(b.status == "stopped" for b in store.batches())
        assert sum(m["retried_items"] for m in manifests) > 0

        accepted = [e.event_id for e in store.accepted_events()]
        assert len(accepted) == len(set(accepted))  # Omnisend never took an event twice
        dead = _dead_letters(partition)
        dead_ids = [d["event"]["eventID"] for lines in dead.values() for d in lines]
        assert len(dead_ids) == len(set(dead_ids))
        valid_ids = {e["eventID"] for e in valid}
        assert set(accepted) | set(dead_ids) == valid_ids  # nothing lost
        assert not set(accepted) & set(dead_ids)  # nothing both
        assert refused_ids <= set(dead_ids)
        for lines in dead.values():
            for letter in lines:
                assert letter["stage"] == "send"
                assert letter["reason"]
                assert letter["batch_id"]
                assert isinstance(letter["response_code"], int)

        # duplicates only where a response was lost: the events of batches whose answer was dropped
        dropped = {r.batch_id for r in log if r.fault == "drop"}
        emu.set_faults(None)
        hook = OmnisendHook(conn_id)
        in_dropped = {i["request"]["eventID"] for b in dropped for i in hook.get_batch_items(b)}
        assert {d.event_id for d in store.duplicates()} <= in_dropped

        receipts = PartitionReceipts(partition).all()
        assert len(receipts) == sum(m["bodies"] for m in manifests)
        for receipt in receipts:
            assert receipt.status == "finished"
            assert receipt.accepted + receipt.dead_lettered == receipt.items
            assert len(dead.get(receipt.body_id, [])) == receipt.dead_lettered
        assert sum(r.accepted for r in receipts) == len(accepted)
        assert sum(r.items for r in receipts) == len(valid)
        followups = [
            PartitionReceipts(partition).read_followup(r.body_id, n)
            for r in receipts
            for n in range(1, len(r.retry_batch_ids) + 1)
        ]
        assert all(f is not None and f.status == "finished" for f in followups)
        attempts = [r.attempts for r in receipts] + [f.attempts for f in followups if f is not None]
        assert max(attempts) > 1  # a lost response was resubmitted
