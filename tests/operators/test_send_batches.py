"""OmnisendSendBatchesOperator against the emulator over loopback, sync and deferrable."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from airflow.sdk.definitions.retry_policy import RetryAction
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.module_loading import import_string
from send_helpers import DAY, STORE, connect, make_events, refused_event, stage_valid

from airflow_omnisend.events.chunk_plan import ChunkPlan
from airflow_omnisend.exceptions import (
    OmnisendConfigError,
    OmnisendInputError,
    OmnisendResponseLostError,
    OmnisendValidationError,
)
from airflow_omnisend.operators._shard_sender import ROOT_KEY, STATE_RETENTION
from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
from airflow_omnisend.operators.receipts import PartitionReceipts
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
from airflow_omnisend.testing.emulator import EmulatorConfig, FaultConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from airflow_omnisend.staging import PartitionStaging
    from airflow_omnisend.triggers.batches import OmnisendBatchesTrigger

pytestmark = pytest.mark.integration

FAST = {"poll_interval": 0.02, "max_poll_interval": 0.2}


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[OmnisendEmulator]:
    """An emulator; a test may pass ``(FaultConfig, EmulatorConfig kwargs)`` by indirect parametrization."""
    faults, extra = getattr(request, "param", (FaultConfig(), {}))
    config = EmulatorConfig(**{"processing_delay": 0.02, "faults": faults, **extra})
    with OmnisendEmulator(config) as emu:
        yield emu


class FakeTaskStateStore:
    """What ``context["task_state_store"]`` offers: get/set, values JSON, kept across tries."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.retentions: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(json.dumps(self.values[key])) if key in self.values else default

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.values[key] = json.loads(json.dumps(value))
        self.retentions[key] = retention


def plan(root: Path, conn_id: str, **kwargs: Any) -> list[int]:
    operator = OmnisendPlanBatchesOperator(
        task_id="plan", store_id=STORE, partition=DAY, omnisend_conn_id=conn_id, staging=str(root), **kwargs
    )
    return operator.execute({})


def sender(root: Path, conn_id: str, shard: int, **kwargs: Any) -> Callable[[], OmnisendSendBatchesOperator]:
    """A factory: every resume gets a fresh operator, as in Airflow (nothing on self survives)."""

    def make() -> OmnisendSendBatchesOperator:
        return OmnisendSendBatchesOperator(
            task_id="send",
            store_id=STORE,
            partition=DAY,
            shard=shard,
            omnisend_conn_id=conn_id,
            staging=str(root),
            **{**FAST, **kwargs},
        )

    return make


async def _first_event(trigger: OmnisendBatchesTrigger) -> dict[str, Any]:
    events = trigger.run()
    try:
        event = await anext(events)
    finally:
        await events.aclose()
    return dict(event.payload)


def run_deferrable(
    make: Callable[[], OmnisendSendBatchesOperator], context: dict[str, Any]
) -> dict[str, Any]:
    """execute -> TaskDeferred -> the trigger's real event -> execute_complete, until it returns."""
    with pytest.raises(TaskDeferred) as first:
        make().execute(context)
    defer = first.value
    for _ in range(50):
        assert defer.method_name == "execute_complete"
        classpath, kwargs = defer.trigger.serialize()
        kwargs = json.loads(json.dumps(kwargs))  # what the triggerer stores
        assert len(json.dumps(kwargs)) < 4000
        trigger = import_string(classpath)(**kwargs)
        event = asyncio.run(_first_event(trigger))
        try:
            return make().execute_complete(context, event=event, **(defer.kwargs or {}))
        except TaskDeferred as again:
            defer = again
    raise AssertionError("the operator kept deferring")


def send_all(
    root: Path, conn_id: str, shards: list[int], *, deferrable: bool, **kwargs: Any
) -> list[dict[str, Any]]:
    manifests = []
    for shard in shards:
        make = sender(root, conn_id, shard, deferrable=deferrable, **kwargs)
        manifests.append(run_deferrable(make, {}) if deferrable else make().execute({}))
    return manifests


def dead_letters(partition: PartitionStaging) -> list[dict[str, Any]]:
    folder = partition.dead_letters_dir
    if not folder.exists():
        return []
    return [
        orjson.loads(line)
        for path in sorted(folder.iterdir(), key=lambda p: p.name)
        if path.name.startswith("send-")
        for line in path.read_bytes().splitlines()
    ]


def body_ids(partition: PartitionStaging) -> list[str]:
    return [body.body_id for _, body in ChunkPlan.from_dict(partition.read_json("plan")).iter_bodies()]


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_every_event_is_accepted_once_and_receipts_finish(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deferrable: bool
) -> None:
    conn_id = connect(monkeypatch, emulator, max_items_per_batch=100)
    events = make_events(400)
    partition = stage_valid(tmp_path, events)
    shards = plan(tmp_path, conn_id, min_bodies_per_shard=4)
    assert len(shards) >= 2

    manifests = send_all(tmp_path, conn_id, shards, deferrable=deferrable)

    accepted = [e.event_id for e in emulator.store.accepted_events()]
    assert sorted(accepted) == sorted(e["eventID"] for e in events)
    assert emulator.store.duplicate_count() == 0
    receipts = PartitionReceipts(partition).all()
    assert sorted(r.body_id for r in receipts) == sorted(body_ids(partition))
    assert all(r.status == "finished" and r.accepted == r.items and r.dead_lettered == 0 for r in receipts)
    assert all(r.attempts == 1 and r.finished_at for r in receipts)
    assert sum(m["accepted"] for m in manifests) == len(events)
    assert sum(m["events_sent"] for m in manifests) == len(events)
    assert sum(m["batches_submitted"] for m in manifests) == len(receipts)
    for manifest in manifests:
        assert set(manifest) == {
            "shard", "bodies", "bodies_skipped", "batches_submitted", "events_sent", "accepted",
            "dead_lettered", "retried_items", "requests",
        }  # fmt: skip
        assert manifest["bodies_skipped"] == 0
        assert len(json.dumps(manifest)) < 300  # counts only, never events
    # polls spent little of the budget: about one read per batch besides its POST
    assert emulator.store.request_count() <= 3 * len(receipts) + 2 * len(shards)
    assert sum(m["requests"] for m in manifests) >= emulator.store.request_count() - len(shards)


def test_a_rerun_of_a_finished_partition_sends_nothing(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = connect(monkeypatch, emulator, max_items_per_batch=100)
    stage_valid(tmp_path, make_events(150))
    shards = plan(tmp_path, conn_id, min_bodies_per_shard=2)
    send_all(tmp_path, conn_id, shards, deferrable=False)
    posts = emulator.store.request_count(method="POST")

    assert plan(tmp_path, conn_id, min_bodies_per_shard=2) == shards  # same bodies, same ids
    again = send_all(tmp_path, conn_id, shards, deferrable=False)
    assert emulator.store.request_count(method="POST") == posts
    assert all(m["bodies_skipped"] == m["bodies"] and m["batches_submitted"] == 0 for m in again)
    assert all(m["requests"] == 0 for m in again)


def test_refused_items_are_dead_lettered_with_omnisends_reason(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = connect(monkeypatch, emulator)
    good = make_events(60)
    bad = [refused_event(n) for n in range(3)]
    partition = stage_valid(tmp_path, [*good, *bad])
    [manifest] = send_all(tmp_path, conn_id, plan(tmp_path, conn_id), deferrable=False)

    assert manifest["dead_lettered"] == 3
    assert manifest["accepted"] == len(good)
    letters = dead_letters(partition)
    assert sorted(d["event"]["eventID"] for d in letters) == sorted(e["eventID"] for e in bad)
    (receipt,) = PartitionReceipts(partition).all()
    for letter in letters:
        assert letter["stage"] == "send"
        assert letter["response_code"] == 400
        assert letter["batch_id"] == receipt.batch_id
        assert "eventTime" in letter["reason"]  # Omnisend's field error, verbatim
        assert letter["event"] in bad  # the event exactly as sent
    assert (receipt.accepted, receipt.dead_lettered, receipt.retried_items) == (len(good), 3, 0)


@pytest.mark.parametrize(
    "emulator", [(FaultConfig(seed=4, item_5xx_rate=0.3), {})], indirect=True, ids=["item-5xx"]
)
def test_retryable_item_failures_are_sent_again_in_follow_up_bodies(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = connect(monkeypatch, emulator, max_items_per_batch=100)
    events = make_events(100)
    partition = stage_valid(tmp_path, events)
    [manifest] = send_all(
        tmp_path, conn_id, plan(tmp_path, conn_id), deferrable=False, max_item_retry_rounds=8
    )

    accepted = [e.event_id for e in emulator.store.accepted_events()]
    assert sorted(accepted) == sorted(e["eventID"] for e in events)
    assert emulator.store.duplicate_count() == 0
    assert manifest["retried_items"] > 0
    assert dead_letters(partition) == []
    for receipt in PartitionReceipts(partition).all():
        assert receipt.status == "finished"
        assert receipt.accepted == receipt.items
        for number, batch_id in enumerate(receipt.retry_batch_ids, start=1):
            follow = PartitionReceipts(partition).read_followup(receipt.body_id, number)
            assert follow is not None
            assert (follow.root_body_id, follow.batch_id, follow.status) == (
                receipt.body_id,
                batch_id,
                "finished",
            )
            body = partition.followup_body_path(receipt.body_id, number).read_bytes()
            assert hashlib.sha256(body).hexdigest() == follow.body_id
            assert len(orjson.loads(body)["items"]) == follow.items


@pytest.mark.parametrize(
    "emulator",
    [(FaultConfig(seed=1, item_5xx_rate=1.0), {"stop_error_ratio": 1.0})],
    indirect=True,
    ids=["always-5xx"],
)
def test_items_still_failing_after_the_last_round_are_dead_lettered(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = connect(monkeypatch, emulator)
    events = make_events(10)
    partition = stage_valid(tmp_path, events)
    [manifest] = send_all(
        tmp_path, conn_id, plan(tmp_path, conn_id), deferrable=False, max_item_retry_rounds=1
    )

    assert manifest["accepted"] == 0
    assert manifest["dead_lettered"] == len(events)
    assert manifest["retried_items"] == len(events)
    letters = dead_letters(partition)
    assert sorted(d["event"]["eventID"] for d in letters) == sorted(e["eventID"] for e in events)
    assert all(d["response_code"] == 503 for d in letters)
    assert all(d["reason"].startswith("still failing after 1 follow-up rounds") for d in letters)
    (receipt,) = PartitionReceipts(partition).all()
    assert {d["batch_id"] for d in letters} == {receipt.retry_batch_ids[-1]}


@pytest.mark.parametrize(
    "emulator", [(FaultConfig(stop_next_batches=1), {})], indirect=True, ids=["one-stopped"]
)
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_events_left_unprocessed_by_a_stopped_batch_are_sent_again(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deferrable: bool
) -> None:
    conn_id = connect(monkeypatch, emulator)
    events = make_events(40)
    partition = stage_valid(tmp_path, events)
    [manifest] = send_all(tmp_path, conn_id, plan(tmp_path, conn_id), deferrable=deferrable)

    assert [b.status for b in emulator.store.batches()] == ["stopped", "finished"]
    accepted = [e.event_id for e in emulator.store.accepted_events()]
    assert sorted(accepted) == sorted(e["eventID"] for e in events)
    (receipt,) = PartitionReceipts(partition).all()
    assert receipt.retried_items == len(events) - len(events) // 2
    assert manifest["dead_lettered"] == 0


@pytest.mark.parametrize(
    "emulator", [(FaultConfig(drop_next_responses=1), {})], indirect=True, ids=["one-lost"]
)
def test_a_lost_response_resubmits_the_same_bytes(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = connect(monkeypatch, emulator, max_items_per_batch=100)
    events = make_events(100)
    partition = stage_valid(tmp_path, events)
    send_all(tmp_path, conn_id, plan(tmp_path, conn_id), deferrable=False)

    emulator.wait_until_idle()
    accepted = [e.event_id for e in emulator.store.accepted_events()]
    assert sorted(accepted) == sorted(e["eventID"] for e in events)  # each once
    receipts = {r.body_id: r for r in PartitionReceipts(partition).all()}
    resent = [r for r in receipts.values() if r.attempts == 2]
    assert len(resent) == 1
    # duplicates only where a response was lost: the resent body's events, seen a second time
    dropped = [r.batch_id for r in emulator.store.request_log() if r.fault == "drop"]
    assert len(dropped) == 1
    duplicates = {d.event_id for d in emulator.store.duplicates()}
    assert duplicates
    assert {d.batch_id for d in emulator.store.duplicates()} == {resent[0].batch_id}
    resent_body = partition.shard(0).read_bytes().splitlines()
    first_ids = {
        e["eventID"]
        for line in resent_body
        if hashlib.sha256(line).hexdigest() == resent[0].body_id
        for e in orjson.loads(line)["items"]
    }
    assert duplicates <= first_ids


@pytest.mark.parametrize(
    "emulator", [(FaultConfig(drop_next_responses=2), {})], indirect=True, ids=["two-lost"]
)
def test_lost_responses_beyond_the_limit_fail_the_try_and_the_retry_completes(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = connect(monkeypatch, emulator)
    events = make_events(30)
    partition = stage_valid(tmp_path, events)
    [shard] = plan(tmp_path, conn_id)
    make = sender(tmp_path, conn_id, shard, max_lost_response_resubmits=1)
    with pytest.raises(OmnisendResponseLostError, match="lost 2 times") as failed:
        make().execute({})
    assert make().retry_policy.evaluate(failed.value, 1, 4).action is RetryAction.RETRY  # type: ignore[union-attr]
    assert PartitionReceipts(partition).all() == []

    manifest = make().execute({})  # the retry
    assert manifest["accepted"] == len(events)
    emulator.wait_until_idle()
    assert sorted(e.event_id for e in emulator.store.accepted_events()) == sorted(
        e["eventID"] for e in events
    )


def test_a_whole_body_400_dead_letters_its_events_and_fails_without_retry(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    v5 = connect(monkeypatch, emulator, "omnisend_v5")  # 1,000 items per batch
    events = make_events(80)  # ~200 events: one body of more than 100 items
    partition = stage_valid(tmp_path, events)
    [shard] = plan(tmp_path, v5)
    wrong = connect(monkeypatch, emulator, "omnisend_2026", api_version="2026-03-15")  # 100 items

    make = sender(tmp_path, wrong, shard)
    with pytest.raises(OmnisendValidationError) as refused:
        make().execute({})
    assert make().retry_policy.evaluate(refused.value, 1, 4).action is RetryAction.FAIL  # type: ignore[union-attr]
    # nothing finished: a rerun after the fix sends the body
    assert PartitionReceipts(partition).all() == []
    letters = dead_letters(partition)
    assert sorted(d["event"]["eventID"] for d in letters) == sorted(e["eventID"] for e in events)
    assert all(d["response_code"] == 400 and d["batch_id"] is None for d in letters)
    assert all("whole batch body" in d["reason"] and "items" in d["reason"] for d in letters)

    manifest = sender(tmp_path, v5, shard)().execute({})  # the fix: the connection the plan was made for
    assert manifest["accepted"] == len(events)
    assert dead_letters(partition) == []  # the stale dead letters are gone


@pytest.mark.parametrize(
    "emulator", [(FaultConfig(), {"processing_delay": 0.15})], indirect=True, ids=["slow"]
)
def test_a_split_order_waits_for_its_earlier_body(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = connect(monkeypatch, emulator, max_payload_bytes=2500)  # an order of 4 events > one body
    events = make_events(6)
    partition = stage_valid(tmp_path, events)
    [shard] = plan(tmp_path, conn_id)
    plan_bodies = ChunkPlan.from_dict(partition.read_json("plan")).shards[0].bodies
    followers = [b for b in plan_bodies if b.follows]
    assert followers, "the test needs an order split over bodies"
    send_all(tmp_path, conn_id, [shard], deferrable=False)

    receipts = {r.body_id: r for r in PartitionReceipts(partition).all()}
    batches = {b.batch_id: b for b in emulator.store.batches()}
    for body in followers:
        earlier = batches[receipts[body.follows].batch_id]  # type: ignore[index]
        later = batches[receipts[body.body_id].batch_id]
        assert earlier.ended_at is not None
        assert earlier.ended_at <= later.created_at
    accepted = [e.event_id for e in emulator.store.accepted_events()]
    assert sorted(accepted) == sorted(e["eventID"] for e in events)
    order_of = {e["eventID"]: (e["properties"]["orderID"], i) for i, e in enumerate(events)}
    per_order: dict[str, list[int]] = {}
    for event_id in accepted:
        order, position = order_of[event_id]
        per_order.setdefault(order, []).append(position)
    assert all(p == sorted(p) for p in per_order.values())  # lifecycle order kept


def test_the_task_state_store_reconnects_when_the_receipt_never_got_written(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = connect(monkeypatch, emulator, max_items_per_batch=100)
    events = make_events(120)
    partition = stage_valid(tmp_path, events)
    [shard] = plan(tmp_path, conn_id)
    store = FakeTaskStateStore()
    real_write = PartitionReceipts.write

    def dies_after_submit(self: PartitionReceipts, receipt: Any) -> Any:
        raise SystemExit("worker died before the receipt was written")

    monkeypatch.setattr(PartitionReceipts, "write", dies_after_submit)
    with pytest.raises(SystemExit):
        sender(tmp_path, conn_id, shard)().execute({"task_state_store": store})
    monkeypatch.setattr(PartitionReceipts, "write", real_write)
    (key,) = store.values
    first = body_ids(partition)[0]
    assert key == ROOT_KEY.format(body_id=first)
    assert store.retentions[key] == STATE_RETENTION
    assert PartitionReceipts(partition).read(first) is None
    assert emulator.store.request_count(method="POST") == 1

    manifest = sender(tmp_path, conn_id, shard)().execute({"task_state_store": store})
    assert manifest["accepted"] == len(events)
    assert emulator.store.request_count(method="POST") == len(body_ids(partition))  # no second POST
    reconnected = PartitionReceipts(partition).read(first)
    assert reconnected is not None
    assert reconnected.batch_id == store.values[key]["batch_id"]
    assert emulator.store.duplicate_count() == 0


def test_a_failing_task_state_store_never_fails_the_send(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class Broken:
        def get(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("no supervisor")

        def set(self, key: str, value: Any, **kwargs: Any) -> None:
            raise RuntimeError("no supervisor")

    conn_id = connect(monkeypatch, emulator)
    stage_valid(tmp_path, make_events(20))
    [shard] = plan(tmp_path, conn_id)
    manifest = sender(tmp_path, conn_id, shard)().execute({"task_state_store": Broken()})
    assert manifest["dead_lettered"] == 0
    assert manifest["accepted"] == manifest["events_sent"] > 0


def test_inputs_that_do_not_match_the_plan_are_refused(
    emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = connect(monkeypatch, emulator)
    partition = stage_valid(tmp_path, make_events(20))
    with pytest.raises(OmnisendInputError, match="the plan step writes it"):
        sender(tmp_path, conn_id, 0)().execute({})
    [shard] = plan(tmp_path, conn_id)
    with pytest.raises(OmnisendInputError, match="no shard 3"):
        sender(tmp_path, conn_id, 3)().execute({})
    body = partition.shard(shard).read_bytes()
    partition.write_bytes(partition.shard(shard), body.replace(b"buyer1@", b"buyer9@"))
    with pytest.raises(OmnisendInputError, match="does not match its id"):
        sender(tmp_path, conn_id, shard)().execute({})
    assert emulator.store.request_count() == 0


def test_templated_fields_and_defaults() -> None:
    assert set(OmnisendSendBatchesOperator.template_fields) == {
        "store_id", "partition", "omnisend_conn_id", "staging",
    }  # fmt: skip
    operator = OmnisendSendBatchesOperator(task_id="s", store_id=STORE, partition=DAY, shard=0)
    assert operator.deferrable is False  # [operators] default_deferrable
    assert (operator.poll_interval, operator.max_poll_interval) == (5.0, 60.0)
    assert (operator.max_item_retry_rounds, operator.max_lost_response_resubmits) == (3, 3)


@pytest.mark.parametrize("argument", ["max_item_retry_rounds", "max_lost_response_resubmits"])
def test_retry_counts_are_bounded(argument: str) -> None:
    """``1e20`` rounds of retries would never end a task: the range is named where it is set."""
    with pytest.raises(OmnisendConfigError, match=rf"{argument} must be from 0 to 20"):
        OmnisendSendBatchesOperator(task_id="s", store_id=STORE, partition=DAY, shard=0, **{argument: 10**20})
