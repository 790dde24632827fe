"""OmnisendBatchesTrigger: serialization round-trip and run() against the emulator over loopback."""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.exceptions import (
    OmnisendAuthError,
    OmnisendBatchStoppedError,
    OmnisendConfigError,
    OmnisendError,
    OmnisendNotFoundError,
    OmnisendRateLimitError,
)
from airflow_omnisend.hooks.omnisend import OmnisendHook
from airflow_omnisend.testing.emulator import EmulatorConfig, FaultConfig, OmnisendEmulator
from airflow_omnisend.triggers._shared_listing import shared_listing
from airflow_omnisend.triggers.batches import (
    OmnisendBatchesTrigger,
    error_event,
    exception_from_event,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration


def _event(n: int) -> dict[str, Any]:
    when = datetime(2024, 3, 10, tzinfo=UTC) + timedelta(seconds=n)
    return {
        "eventName": "placed order",
        "eventID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"trigger:{n}")),
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"email": f"t{n}@example.com"},
        "properties": {"orderID": f"o{n}", "currency": "EUR", "totalPrice": 1.5},
    }


def _connect(monkeypatch: pytest.MonkeyPatch, emu: OmnisendEmulator, password: str | None = None) -> str:
    conn = {"conn_type": "omnisend", "host": emu.base_url, "password": password or emu.api_key}
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_TRIGGER", json.dumps(conn))
    return "omnisend_trigger"


@pytest.fixture
def slow_emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.4)) as emu:
        yield emu


def test_serialize_round_trips_through_json() -> None:
    trigger = OmnisendBatchesTrigger(
        batch_ids=["b1", "b2"], omnisend_conn_id="omnisend_acme", poll_interval=2, max_poll_interval=30
    )
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    assert cls is OmnisendBatchesTrigger
    again = cls(**json.loads(json.dumps(kwargs)))
    assert again.serialize() == (classpath, kwargs)
    assert kwargs == {
        "batch_ids": ["b1", "b2"],
        "date_from": None,
        "omnisend_conn_id": "omnisend_acme",
        "poll_interval": 2.0,
        "max_poll_interval": 30.0,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_ids": "b1"},
        {"batch_ids": ["b1", ""]},
        {"batch_ids": ["b1"], "poll_interval": 0},
        {"batch_ids": ["b1"], "poll_interval": 9, "max_poll_interval": 3},
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(OmnisendConfigError):
        OmnisendBatchesTrigger(**kwargs)


async def test_run_yields_one_done_event_polling_all_batches_in_bulk(
    slow_emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = _connect(monkeypatch, slow_emulator)
    hook = OmnisendHook(conn_id)
    batch_ids = [hook.create_batch([_event(n), _event(n + 100)]) for n in range(4)]
    trigger = OmnisendBatchesTrigger(
        batch_ids=batch_ids,
        date_from=datetime.now(UTC).date().isoformat(),
        omnisend_conn_id=conn_id,
        poll_interval=0.05,
        max_poll_interval=0.2,
    )
    events = trigger.run()
    event = await anext(events)
    with pytest.raises(StopAsyncIteration):  # exactly one event
        await anext(events)

    assert event.payload["status"] == "done"
    assert set(event.payload["batches"]) == set(batch_ids)
    for summary in event.payload["batches"].values():
        assert summary == {"status": "finished", "totalCount": 2, "finishedCount": 2, "errorsCount": 0}
    json.dumps(event.payload)  # small and JSON-friendly
    gets = [r for r in slow_emulator.store.request_log() if r.method == "GET"]
    assert event.payload["polls"] == len(gets)
    # every poll is one list page for all four batches, never a read of one batch
    assert all(r.path.endswith("/batches") for r in gets)
    # back-off: ~0.4 s of processing cost a handful of rounds, not one every 50 ms
    assert len(gets) <= 6


async def test_run_pages_through_more_than_a_hundred_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.01)) as emu:
        conn_id = _connect(monkeypatch, emu)
        hook = OmnisendHook(conn_id)
        batch_ids = [hook.create_batch([_event(n)]) for n in range(130)]
        emu.wait_until_idle()
        trigger = OmnisendBatchesTrigger(batch_ids=batch_ids[::-1][:120], omnisend_conn_id=conn_id)
        event = await anext(trigger.run())
        gets = [r for r in emu.store.request_log() if r.method == "GET"]
    assert event.payload["status"] == "done"
    assert set(event.payload["batches"]) == set(batch_ids[::-1][:120])
    assert event.payload["polls"] == len(gets) == 2  # two pages of 100, one round
    assert all(r.path.endswith("/batches") for r in gets)


async def test_a_batch_without_counters_is_reported_with_none(monkeypatch: pytest.MonkeyPatch) -> None:
    with OmnisendEmulator(
        EmulatorConfig(processing_delay=0.01, faults=FaultConfig(omit_counters_next_batches=1))
    ) as emu:
        conn_id = _connect(monkeypatch, emu)
        batch_id = OmnisendHook(conn_id).create_batch([_event(n) for n in range(3)])
        trigger = OmnisendBatchesTrigger(batch_ids=[batch_id], omnisend_conn_id=conn_id, poll_interval=0.05)
        event = await anext(trigger.run())
    assert event.payload["batches"][batch_id] == {
        "status": "finished",
        "totalCount": None,
        "finishedCount": None,
        "errorsCount": None,
    }


async def test_a_stopped_batch_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    with OmnisendEmulator(
        EmulatorConfig(processing_delay=0.05, faults=FaultConfig(stop_next_batches=1))
    ) as emu:
        conn_id = _connect(monkeypatch, emu)
        batch_id = OmnisendHook(conn_id).create_batch([_event(n) for n in range(4)])
        trigger = OmnisendBatchesTrigger(batch_ids=[batch_id], omnisend_conn_id=conn_id, poll_interval=0.05)
        event = await anext(trigger.run())
    assert event.payload["status"] == "done"
    assert event.payload["batches"][batch_id]["status"] == "stopped"
    assert event.payload["batches"][batch_id]["finishedCount"] == 2


async def test_an_unknown_batch_yields_a_typed_error_event(
    omnisend_emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = _connect(monkeypatch, omnisend_emulator)
    trigger = OmnisendBatchesTrigger(batch_ids=["000000000000000000000000"], omnisend_conn_id=conn_id)
    event = await anext(trigger.run())
    assert event.payload["status"] == "error"
    assert event.payload["error"] == "OmnisendNotFoundError"
    assert event.payload["http_status"] == 404
    error = exception_from_event(event.payload)
    assert isinstance(error, OmnisendNotFoundError)
    assert error.status == 404


async def test_a_wrong_key_yields_an_auth_error_without_the_key(
    omnisend_emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = _connect(monkeypatch, omnisend_emulator, password="wrong-key-12345")
    event = await anext(OmnisendBatchesTrigger(batch_ids=["b1"], omnisend_conn_id=conn_id).run())
    assert event.payload["error"] == "OmnisendAuthError"
    assert event.payload["http_status"] == 401
    assert "wrong-key-12345" not in json.dumps(event.payload)
    assert isinstance(exception_from_event(event.payload), OmnisendAuthError)


def test_error_events_round_trip_to_the_same_exception_type() -> None:
    limited = OmnisendRateLimitError("slow down", status=429, retry_after=12.0)
    back = exception_from_event(json.loads(json.dumps(error_event(limited))))
    assert isinstance(back, OmnisendRateLimitError)
    assert (back.status, back.retry_after) == (429, 12.0)
    stopped = exception_from_event(error_event(OmnisendBatchStoppedError("stop", batch_id="b9")))
    assert isinstance(stopped, OmnisendBatchStoppedError)
    assert stopped.batch_id == "b9"
    unknown = exception_from_event({"status": "error", "error": "KeyError", "message": "'x'"})
    assert type(unknown) is OmnisendError
    assert "KeyError" in str(unknown)
    not_ours = exception_from_event({"status": "error", "error": "ValueError", "message": "m"})
    assert type(not_ours) is OmnisendError


async def test_concurrent_triggers_of_one_brand_share_one_listing_per_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six triggers (six deferred shards) waiting at once cost the list pages of one poller, not six."""
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.1)) as emu:
        conn_id = _connect(monkeypatch, emu)
        hook = OmnisendHook(conn_id)
        groups = [[hook.create_batch([_event(10 * g + n)]) for n in range(5)] for g in range(6)]
        today = datetime.now(UTC).date().isoformat()
        triggers = [
            OmnisendBatchesTrigger(
                batch_ids=ids,
                date_from=today,
                omnisend_conn_id=conn_id,
                poll_interval=0.5,
                max_poll_interval=1,
            )
            for ids in groups
        ]
        events = await asyncio.gather(*(anext(t.run()) for t in triggers))
        lists = [r for r in emu.store.request_log() if r.method == "GET"]
    for ids, event in zip(groups, events, strict=True):
        assert event.payload["status"] == "done"
        assert set(event.payload["batches"]) == set(ids)
        assert all(s["status"] == "finished" for s in event.payload["batches"].values())
    assert all(r.path.endswith("/batches") for r in lists)
    assert sum(e.payload["polls"] for e in events) == len(lists)
    assert 1 <= len(lists) <= 2  # one round, or two when the youngest batch was still running


async def test_another_pollers_vanished_batch_does_not_fail_this_trigger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.01)) as emu:
        conn_id = _connect(monkeypatch, emu)
        hook = OmnisendHook(conn_id)
        mine = [hook.create_batch([_event(n)]) for n in range(2)]
        today = datetime.now(UTC).date().isoformat()
        # another poller of the brand waits for a batch Omnisend no longer has (404 on its own read)
        shared_listing(hook.settings, emu.api_key, today).register(["ffffffffffffffffffffffff"])
        trigger = OmnisendBatchesTrigger(
            batch_ids=mine,
            date_from=today,
            omnisend_conn_id=conn_id,
            poll_interval=0.05,
            max_poll_interval=0.1,
        )
        event = await anext(trigger.run())
        tried = [r for r in emu.store.request_log() if r.path.endswith("/ffffffffffffffffffffffff")]
    assert tried  # the shared fetch read it, got a 404, and listed this trigger's batches alone
    assert event.payload["status"] == "done"
    assert set(event.payload["batches"]) == set(mine)
