"""OmnisendHook against the emulator over loopback: the foundation issue's "done when" checks.

Real HTTP both ways (requests -> ThreadingHTTPServer on 127.0.0.1), faults injected by the emulator.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.exceptions import (
    OmnisendAuthError,
    OmnisendNotFoundError,
    OmnisendPayloadTooLargeError,
    OmnisendValidationError,
)
from airflow_omnisend.hooks._pacing import RetryConfig
from airflow_omnisend.hooks.omnisend import OmnisendHook
from airflow_omnisend.testing.emulator import EmulatorConfig, FaultConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

IN_FLIGHT = 0.05  # seconds: a request already on the wire when the 429 was answered
FAST_RETRY = RetryConfig(max_attempts=30, base_delay=0.01, max_delay=0.2, total_budget=120, jitter=0.2)


def _event(n: int) -> dict[str, Any]:
    when = datetime(2024, 3, 10, tzinfo=UTC) + timedelta(seconds=n)
    return {
        "eventName": "placed order",
        "eventID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"it:{n}")),
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"email": f"buyer{n}@example.com"},
        "properties": {"orderID": f"o{n}", "currency": "EUR", "totalPrice": 10.5},
    }


def _connect(monkeypatch: pytest.MonkeyPatch, emu: OmnisendEmulator, conn_id: str, **extra: Any) -> None:
    conn = {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key, "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.fixture
def faulty_emulator() -> Iterator[OmnisendEmulator]:
    faults = FaultConfig(
        seed=11,
        targets=frozenset({"create_batch", "get_batch"}),
        error_5xx_rate=0.10,
        burst_429_every=7,
        burst_429_length=3,
        burst_429_retry_after=1.0,
    )
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.01, faults=faults)) as emu:
        yield emu


@pytest.mark.parametrize("api_version", ["v5", "2026-03-15"])
def test_5000_events_with_5xx_and_429_bursts_are_accepted_exactly_once(
    faulty_emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch, api_version: str
) -> None:
    _connect(monkeypatch, faulty_emulator, "omnisend_it", api_version=api_version)
    hook = OmnisendHook("omnisend_it", retry=FAST_RETRY)
    events = [_event(n) for n in range(5000)]
    size = 100  # 50 requests, so the seeded faults hit several of them
    chunks = [events[i : i + size] for i in range(0, len(events), size)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        batch_ids = list(pool.map(hook.create_batch, chunks))
    assert len(set(batch_ids)) == len(chunks)
    for batch_id in batch_ids:
        assert faulty_emulator.wait_for_batch(batch_id, timeout=60).status == "finished"

    store = faulty_emulator.store
    accepted = [e.event_id for e in store.accepted_events()]
    assert sorted(accepted) == sorted(e["eventID"] for e in events)  # every event, each once
    assert store.duplicate_count() == 0  # 5xx were refused before acceptance: nothing was sent twice
    faulted = [r for r in store.request_log() if r.status in (429, 500, 503)]
    assert any(r.status == 429 for r in faulted)
    assert any(r.status >= 500 for r in faulted)
    # One hook paces all of its threads: once a 429 reached the hook, no thread started a request before
    # the time it named. Only requests the other 3 threads had already sent may arrive just after it.
    late = store.retry_after_violations()
    assert all(v.next_request_at - v.refused_at < IN_FLIGHT for v in late), late
    per_refusal = Counter(v.refused_at for v in late)
    assert all(n <= 3 for n in per_refusal.values()), per_refusal


def test_single_caller_never_requests_before_the_named_time(monkeypatch: pytest.MonkeyPatch) -> None:
    faults = FaultConfig(seed=5, burst_429_every=4, burst_429_length=2, burst_429_retry_after=0.5)
    with OmnisendEmulator(EmulatorConfig(processing_delay=0.0, faults=faults)) as emu:
        _connect(monkeypatch, emu, "omnisend_it")
        hook = OmnisendHook("omnisend_it", retry=FAST_RETRY)
        for n in range(12):
            hook.create_batch([_event(n)])
        assert emu.store.request_count(status=429) >= 4
        assert emu.store.retry_after_violations() == []


def test_items_of_a_finished_batch_are_read_back(
    omnisend_emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, omnisend_emulator, "omnisend_it")
    hook = OmnisendHook("omnisend_it", retry=FAST_RETRY)
    bad = _event(2)
    bad["eventTime"] = "2024-03-10 00:00:00"  # no offset: Omnisend refuses the item, not the batch
    batch_id = hook.create_batch([_event(1), bad])
    omnisend_emulator.wait_for_batch(batch_id, timeout=30)

    items = {i["request"]["eventID"]: i for i in hook.get_batch_items(batch_id)}
    assert set(items) == {_event(1)["eventID"], bad["eventID"]}
    assert 200 <= items[_event(1)["eventID"]]["responseCode"] < 300
    assert items[bad["eventID"]]["responseCode"] == 400
    assert hook.get_batch(batch_id)["status"] == "finished"


def test_4xx_errors_surface_typed_with_omnisends_detail(
    omnisend_emulator: OmnisendEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, omnisend_emulator, "omnisend_it")
    hook = OmnisendHook("omnisend_it", retry=FAST_RETRY)

    with pytest.raises(OmnisendValidationError) as bad_body:
        hook.submit_batch_body(b'{"method":"POST","endpoint":"events"}')  # no items
    assert bad_body.value.status == 400
    assert bad_body.value.field_errors, "a 400 carries Omnisend's field errors"

    with pytest.raises(OmnisendNotFoundError) as missing:
        hook.get_batch("0123456789abcdef01234567")
    assert missing.value.status == 404
    assert missing.value.problem

    # A connection allowing more than Omnisend takes: the server's 413 surfaces typed.
    _connect(monkeypatch, omnisend_emulator, "omnisend_lax", max_payload_bytes=2_000_000)
    too_big = b'{"method":"POST","endpoint":"events","items":[' + b'{"x":"' + b"y" * 1_100_000 + b'"}]}'
    with pytest.raises(OmnisendPayloadTooLargeError) as large:
        OmnisendHook("omnisend_lax", retry=FAST_RETRY).submit_batch_body(too_big)
    assert large.value.status == 413

    _connect(monkeypatch, omnisend_emulator, "omnisend_wrong")
    wrong = json.loads(os.environ["AIRFLOW_CONN_OMNISEND_WRONG"])
    wrong["password"] = "not-the-key"
    monkeypatch.setenv("AIRFLOW_CONN_OMNISEND_WRONG", json.dumps(wrong))
    with pytest.raises(OmnisendAuthError) as auth:
        OmnisendHook("omnisend_wrong", retry=FAST_RETRY).get_batch("0123456789abcdef01234567")
    assert auth.value.status == 401
    assert auth.value.detail
    # 4xx are final: each of these reached the server exactly once.
    assert omnisend_emulator.store.request_count(status=401) == 1


def test_api_key_never_appears_in_logs_or_errors(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-live-5c1cd54488ec24d9-do-not-log"
    faults = FaultConfig(seed=3, error_5xx_rate=0.3, burst_429_every=3, burst_429_retry_after=0.2)
    config = EmulatorConfig(api_key=secret, processing_delay=0.0, faults=faults)
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    with OmnisendEmulator(config) as emu:
        _connect(monkeypatch, emu, "omnisend_secret")
        hook = OmnisendHook("omnisend_secret", retry=FAST_RETRY)
        for n in range(10):
            hook.create_batch([_event(n)])
        errors.append(repr(hook))
        try:
            hook.get_batch("0123456789abcdef01234567")
        except OmnisendNotFoundError as exc:
            errors.append(str(exc))
            errors.append(repr(exc))
    out, err = capfd.readouterr()
    assert caplog.records, "the hook logged something, so the check below means something"
    for text in (caplog.text, out, err, *errors):
        assert secret not in text
