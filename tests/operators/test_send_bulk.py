"""Bulk reconciliation against the emulator over loopback: one POST per body, batch outcomes read from
paged ``GET /batches`` and their counters, ``/items`` only where the counters do not prove success."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from send_helpers import connect, order_events, stage_valid
from test_send_batches import body_ids, dead_letters, plan, send_all

from airflow_omnisend.operators.receipts import PartitionReceipts
from airflow_omnisend.testing.emulator import EmulatorConfig, FaultConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration


def single_event_orders(orders: int, first: int = 0) -> list[dict[str, Any]]:
    """One event per order, so bodies of two events never split an order (no chained bodies)."""
    rng = random.Random(7)
    return [order_events(first + o, rng, events=1)[0] for o in range(orders)]


def gets(emu: OmnisendEmulator) -> dict[str, int]:
    """GET requests by kind: list pages, item reads, single-batch reads."""
    kinds = {"list": 0, "items": 0, "batch": 0, "other": 0}
    for record in emu.store.request_log():
        if record.method != "GET":
            continue
        path = record.path.rstrip("/")
        if path.endswith("/batches"):
            kinds["list"] += 1
        elif path.endswith("/items"):
            kinds["items"] += 1
        elif "/batches/" in path:
            kinds["batch"] += 1
        else:
            kinds["other"] += 1
    return kinds


@pytest.fixture
def faulty() -> Iterator[OmnisendEmulator]:
    """Some items refused (400), some failing for a retryable reason (503), the first batch stopped,
    the next batches answered without counters."""
    faults = FaultConfig(
        seed=3, item_400_rate=0.02, item_5xx_rate=0.02, stop_next_batches=1, omit_counters_next_batches=3
    )
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.02, faults=faults)) as emu:
        yield emu


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_bulk_reconciliation_accounts_for_every_event_exactly_once(
    faulty: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deferrable: bool
) -> None:
    conn_id = connect(monkeypatch, faulty, max_items_per_batch=2)
    events = single_event_orders(250)
    partition = stage_valid(tmp_path, events)
    shards = plan(tmp_path, conn_id)
    assert len(body_ids(partition)) == 125  # more than one page of GET /batches

    manifests = send_all(tmp_path, conn_id, shards, deferrable=deferrable)

    accepted = {e.event_id for e in faulty.store.accepted_events()}
    dead = [line["event"]["eventID"] for line in dead_letters(partition)]
    assert dead, "the seeded 400s dead-lettered some events"
    assert len(dead) == len(set(dead))
    assert accepted.isdisjoint(dead)
    assert accepted | set(dead) == {e["eventID"] for e in events}
    assert faulty.store.duplicate_count() == 0
    receipts = PartitionReceipts(partition).all()
    assert all(r.status == "finished" and r.accepted + r.dead_lettered == r.items for r in receipts)
    assert sum(r.accepted for r in receipts) == len(accepted)
    assert sum(m["dead_lettered"] for m in manifests) == len(dead)
    assert sum(m["retried_items"] for m in manifests) > 0  # the 503s and the stop were sent again

    batches = faulty.store.batches()
    assert any(b.status == "stopped" for b in batches)
    needing_items = [
        b for b in batches if b.status == "stopped" or b.errors_count > 0 or batches.index(b) in (0, 1, 2)
    ]
    kinds = gets(faulty)
    # items were read for exactly the batches whose counters do not prove success
    assert kinds["items"] == len(needing_items)
    assert kinds["items"] < len(batches) // 3
    # every outcome came from the list pages: no batch was read on its own
    assert kinds["batch"] == 0
    assert faulty.store.request_count(method="POST") == len(batches)


@pytest.mark.parametrize("where", ["connection", "operator"])
def test_strict_mode_reads_every_batchs_items(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.02)) as emu:
        extra = {"strict_reconciliation": "true"} if where == "connection" else {}
        conn_id = connect(monkeypatch, emu, max_items_per_batch=5, **extra)
        events = single_event_orders(40)
        partition = stage_valid(tmp_path, events)
        shards = plan(tmp_path, conn_id)
        kwargs = {"strict_reconciliation": True} if where == "operator" else {}
        send_all(tmp_path, conn_id, shards, deferrable=False, **kwargs)

        assert {e.event_id for e in emu.store.accepted_events()} == {e["eventID"] for e in events}
        assert gets(emu)["items"] == len(body_ids(partition)) == len(emu.store.batches())


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
@pytest.mark.parametrize("api_version", ["v5", "2026-03-15"])
def test_a_clean_send_costs_one_post_per_body_and_a_few_gets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deferrable: bool, api_version: str
) -> None:
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.05)) as emu:
        conn_id = connect(monkeypatch, emu, max_items_per_batch=10, api_version=api_version)
        events = single_event_orders(300)
        partition = stage_valid(tmp_path, events)
        shards = plan(tmp_path, conn_id, max_shards=1)
        manifests = send_all(
            tmp_path, conn_id, shards, deferrable=deferrable, poll_interval=0.5, max_poll_interval=0.5
        )

        bodies = len(body_ids(partition))
        assert bodies == 30
        assert {e.event_id for e in emu.store.accepted_events()} == {e["eventID"] for e in events}
        assert emu.store.request_count(method="POST") == bodies
        kinds = gets(emu)
        assert kinds["items"] == 0
        assert kinds["batch"] == 0
        # a round or two of one list page each, whatever the number of bodies
        assert 1 <= kinds["list"] <= 4
        assert sum(m["requests"] for m in manifests) == emu.store.request_count()


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_shards_sent_at_once_share_the_list_pages_of_one_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deferrable: bool
) -> None:
    """Six mapped shards of a run, each in its own thread as in its own task process, polling at the
    same time: the list pages stay a small constant of the run, not a few per shard."""
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.05)) as emu:
        conn_id = connect(monkeypatch, emu, max_items_per_batch=5)
        events = single_event_orders(300)
        partition = stage_valid(tmp_path, events)
        shards = plan(tmp_path, conn_id, max_shards=6, min_bodies_per_shard=1)
        assert len(shards) == 6
        with ThreadPoolExecutor(len(shards)) as pool:
            manifests = list(
                pool.map(
                    lambda shard: send_all(
                        tmp_path,
                        conn_id,
                        [shard],
                        deferrable=deferrable,
                        poll_interval=0.5,
                        max_poll_interval=1,
                    )[0],
                    shards,
                )
            )

        bodies = len(body_ids(partition))
        assert bodies == 60
        accepted = [e.event_id for e in emu.store.accepted_events()]
        assert sorted(accepted) == sorted(e["eventID"] for e in events)
        assert emu.store.duplicate_count() == 0
        receipts = PartitionReceipts(partition).all()
        assert len(receipts) == bodies
        assert all(r.status == "finished" and r.accepted == r.items for r in receipts)
        assert emu.store.request_count(method="POST") == bodies
        kinds = gets(emu)
        assert kinds["items"] == kinds["batch"] == 0
        assert 1 <= kinds["list"] <= 3  # one round, two or three when the youngest batches still ran
        assert sum(m["requests"] for m in manifests) == emu.store.request_count()
