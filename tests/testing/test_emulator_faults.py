"""Seeded fault injection: 5xx, 429 bursts, slow and dropped responses, stopped batches, item 503s,
refused eventTime windows; set at construction and at runtime."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
import requests
from emulator_http import Api, make_event

from airflow_omnisend.testing.emulator import FaultConfig

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_omnisend.testing.emulator import OmnisendEmulator

pytestmark = pytest.mark.integration


def _statuses(emu: OmnisendEmulator, count: int, start: int = 0) -> list[int]:
    api = Api(emu)
    return [api.post_batch([make_event(start + i)]).status_code for i in range(count)]


def test_5xx_rate_is_seeded_and_deterministic(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    faults = FaultConfig(seed=7, error_5xx_rate=0.3)
    first = _statuses(start_emulator(faults=faults), 40)
    second = _statuses(start_emulator(faults=faults), 40)
    other_seed = _statuses(start_emulator(faults=FaultConfig(seed=8, error_5xx_rate=0.3)), 40)
    assert first == second
    assert first != other_seed
    assert set(first) == {201, 500, 503}
    assert 5 <= sum(s >= 500 for s in first) <= 20


def test_a_5xx_comes_before_acceptance_with_a_problem_body(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    emu = start_emulator(faults=FaultConfig(error_5xx_rate=1.0, error_5xx_statuses=(503,)))
    resp = Api(emu).post_batch([make_event(0)])
    assert resp.status_code == 503
    assert resp.json()["status"] == 503
    assert emu.store.batches() == []
    assert emu.store.request_log()[0].fault == "5xx"
    # GETs are not targeted by default
    assert Api(emu).get("/batches", endpoint="events").status_code == 200


def test_every_nth_request_starts_a_burst_of_k_429s(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    faults = FaultConfig(burst_429_every=3, burst_429_length=2, burst_429_retry_after=2)
    emu = start_emulator(faults=faults)
    statuses = _statuses(emu, 10)
    # counted requests 1,2 pass; 3 starts a burst (3rd request and the next one); then 4,5 pass; 6 bursts...
    assert statuses == [201, 201, 429, 429, 201, 201, 429, 429, 201, 201]
    refused = [r for r in emu.store.request_log() if r.status == 429]
    assert {(r.fault, r.retry_after) for r in refused} == {("429-burst", 2.0)}
    assert len(emu.store.batches()) == 6


def test_burst_429_bodies_and_headers_can_name_different_times(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    faults = FaultConfig(burst_429_every=1, burst_429_retry_after=1.2, burst_429_retry_after_header=4)
    emu = start_emulator(faults=faults, rate_limit=10)
    resp = Api(emu, "2026-03-15").post_batch([make_event(0)])
    assert resp.status_code == 429
    assert resp.json()["retryAfter"] == 2
    assert resp.headers["Retry-After"] == "4"
    assert resp.headers["X-Rate-Limit-Remaining"] == "10"  # a refusal spends no budget


def test_slow_responses_are_held_back(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(
        faults=FaultConfig(slow_rate=1.0, slow_seconds=0.3, targets=frozenset({"get_batch"}))
    )
    api = Api(emu)
    batch_id = api.post_batch([make_event(0)]).json()["batchID"]
    began = time.monotonic()
    assert api.get(f"/batches/{batch_id}").status_code == 200
    assert time.monotonic() - began >= 0.3
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.session.get(api.url(f"/batches/{batch_id}"), headers=api.headers(), timeout=0.1)
    assert emu.store.request_log()[1].fault == "slow"


def test_a_dropped_response_loses_the_reply_but_the_batch_exists_and_is_accepted(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    emu = start_emulator(faults=FaultConfig(drop_next_responses=1))
    api = Api(emu)
    items = [make_event(i) for i in range(3)]
    with pytest.raises(requests.exceptions.ConnectionError) as lost:
        api.post_batch(items)
    assert "RemoteDisconnected" in repr(lost.value) or "aborted" in repr(lost.value).lower()
    (record,) = emu.store.batches()
    assert emu.wait_for_batch(record.batch_id).status == "finished"
    assert [e.event_id for e in emu.store.accepted_events()] == [i["eventID"] for i in items]
    (logged,) = emu.store.request_log()
    assert (logged.status, logged.dropped, logged.fault, logged.batch_id) == (
        201,
        True,
        "drop",
        record.batch_id,
    )
    # resubmitting the body is harmless: every item de-duplicates
    assert api.post_batch(items).status_code == 201
    emu.wait_until_idle()
    assert emu.store.accepted_count() == 3
    assert emu.store.duplicate_count() == 3


def test_drop_rate_is_seeded(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    def outcomes(emu: OmnisendEmulator) -> list[str]:
        api, seen = Api(emu), []
        for i in range(20):
            try:
                seen.append(str(api.post_batch([make_event(i)]).status_code))
            except requests.exceptions.ConnectionError:
                seen.append("dropped")
        return seen

    faults = FaultConfig(seed=3, drop_response_rate=0.3)
    first, second = outcomes(start_emulator(faults=faults)), outcomes(start_emulator(faults=faults))
    assert first == second
    assert 2 <= first.count("dropped") <= 12


def test_stopped_batches_by_fault(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(faults=FaultConfig(stop_next_batches=1, stop_after_items=2))
    api = Api(emu)
    stopped = api.send_and_wait([make_event(i) for i in range(5)])
    assert (stopped["status"], stopped["finishedCount"], stopped["errorsCount"]) == ("stopped", 2, 0)
    assert [r["request"]["eventID"] for r in stopped["responses"]] == [
        make_event(i)["eventID"] for i in range(2)
    ]
    assert api.send_and_wait([make_event(10)])["status"] == "finished"
    # the default stop point is half the batch
    emu.set_faults(FaultConfig(stop_batch_rate=1.0))
    half = api.send_and_wait([make_event(20 + i) for i in range(7)])
    assert (half["status"], half["finishedCount"]) == ("stopped", 3)
    assert emu.store.accepted_count() == 2 + 1 + 3


def test_item_5xx_fails_single_items_with_a_retryable_code(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    faults = FaultConfig(seed=1, item_5xx_rate=0.2)
    results = []
    for _ in range(2):
        emu = start_emulator(faults=faults, stop_error_ratio=1.0)
        batch = Api(emu).send_and_wait([make_event(i) for i in range(30)])
        results.append([e["request"]["eventID"] for e in batch["errors"]])
        assert {e["responseCode"] for e in batch["errors"]} == {503}
        assert emu.store.accepted_count() == 30 - len(batch["errors"])
    assert results[0] == results[1]
    assert 1 <= len(results[0]) <= 15


def test_refused_event_window_until_the_fault_is_removed(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    window = FaultConfig(refuse_event_windows=(("2024-01-01T00:00:10+00:00", "2024-01-01T00:00:20Z"),))
    emu = start_emulator(faults=window)
    api = Api(emu)
    assert api.post_batch([make_event(0), make_event(9)]).status_code == 201  # 00:00:00, 00:00:09
    for _ in range(3):  # persistent, not a rate
        refused = api.post_batch([make_event(1), make_event(10)])
        assert refused.status_code == 503
        assert "2024-01-01T00:00:10+00:00" in refused.json()["detail"]
    assert api.post_batch([make_event(20)]).status_code == 201  # `to` is exclusive
    emu.set_faults(None)
    assert api.post_batch([make_event(1), make_event(10)]).status_code == 201
    assert [r.fault for r in emu.store.request_log()].count("refused-window") == 3


def test_faults_can_target_polling_gets(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator()
    api = Api(emu)
    batch_id = api.post_batch([make_event(0)]).json()["batchID"]
    emu.set_faults(FaultConfig(error_5xx_rate=1.0, targets=frozenset({"get_batch", "list_batches"})))
    assert api.get(f"/batches/{batch_id}").status_code in (500, 503)
    assert api.get("/batches", endpoint="events").status_code in (500, 503)
    assert api.get(f"/batches/{batch_id}/items").status_code == 200  # not targeted
    assert api.post_batch([make_event(1)]).status_code == 201
    emu.set_faults(FaultConfig(burst_429_every=1, targets=frozenset({"*"})))
    assert api.get(f"/batches/{batch_id}/items").status_code == 429
    assert Api(emu, "2026-03-15").get("/automations").status_code == 429


def test_runtime_fault_changes_restart_the_counters(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(faults=FaultConfig(burst_429_every=2))
    assert _statuses(emu, 3) == [201, 429, 201]
    emu.set_faults(FaultConfig(burst_429_every=2))
    assert _statuses(emu, 2, start=10) == [201, 429]
    emu.set_faults(FaultConfig())
    assert _statuses(emu, 3, start=20) == [201, 201, 201]
