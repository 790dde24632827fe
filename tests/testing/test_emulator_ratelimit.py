"""The sliding-window rate limit: headers on every response, 429 + retryAfter, which signals are sent."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import pytest
from emulator_http import Api, sleep_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_omnisend.testing.emulator import OmnisendEmulator

pytestmark = pytest.mark.integration


def test_every_response_carries_the_rate_limit_headers(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    emu = start_emulator(rate_limit=5)
    api = Api(emu)
    remaining = []
    for status_expected, resp in [
        (200, api.get("/batches", endpoint="events")),
        (400, api.get("/batches")),
        (404, api.get("/batches/ffffffffffffffffffffffff")),
        (401, Api(emu, key="other").get("/batches", endpoint="events")),  # another key, another window
        (200, api.get("/batches", endpoint="events")),
    ]:
        assert resp.status_code == status_expected
        assert resp.headers["X-Rate-Limit-Limit"] == "5"
        assert 0 < int(resp.headers["X-Rate-Limit-Reset"]) <= 60
        remaining.append(int(resp.headers["X-Rate-Limit-Remaining"]))
    assert remaining == [4, 3, 2, 4, 1]


def test_over_the_limit_is_429_with_retry_after_in_whole_seconds(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    emu = start_emulator(rate_limit=3, rate_limit_window=2.5)
    api = Api(emu, "2026-03-15")
    for _ in range(3):
        assert api.get("/batches", endpoint="events").status_code == 200
    refused = api.get("/batches", endpoint="events")
    assert refused.status_code == 429
    body = refused.json()
    assert body["type"] == "https://problems.omnisend.com/rate-limit-exceeded"
    assert body["retryAfter"] == 3  # ceil of < 2.5 s
    assert isinstance(body["retryAfter"], int)
    assert refused.headers["Retry-After"] == "3"
    assert refused.headers["X-Rate-Limit-Remaining"] == "0"
    assert refused.headers["X-Rate-Limit-Reset"] == "3"
    log = emu.store.request_log()
    assert (log[-1].status, log[-1].retry_after, log[-1].fault) == (429, 3.0, "rate-limit")


def test_429s_spend_no_budget_and_waiting_the_named_time_gets_through(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    emu = start_emulator(rate_limit=2, rate_limit_window=0.4, fractional_seconds=True)
    api = Api(emu)
    first = time.monotonic()
    assert api.get("/batches", endpoint="events").status_code == 200
    assert api.get("/batches", endpoint="events").status_code == 200
    refusals = [api.get("/batches", endpoint="events") for _ in range(5)]
    assert {r.status_code for r in refusals} == {429}
    retry_after = refusals[-1].json()["retryAfter"]
    assert 0 < retry_after <= 0.4
    assert float(refusals[-1].headers["Retry-After"]) == pytest.approx(retry_after, abs=0.002)
    sleep_until(time.monotonic() + retry_after)
    ok = api.get("/batches", endpoint="events")
    assert ok.status_code == 200  # the refusals did not push the window out
    assert time.monotonic() - first < 1.0
    violations = emu.store.retry_after_violations()
    # requests 4..7 each came sooner than the 429 before them allowed; the last one waited
    assert len(violations) == 4
    assert all(v.early_by > 0 for v in violations)
    assert emu.store.request_count(status=429) == 5


def test_the_sliding_window_frees_slots_one_by_one(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(rate_limit=2, rate_limit_window=0.5, fractional_seconds=True)
    api = Api(emu)
    t0 = time.monotonic()
    api.get("/batches", endpoint="events")
    sleep_until(t0 + 0.25)
    api.get("/batches", endpoint="events")
    resp = api.get("/batches", endpoint="events")
    assert resp.status_code == 429
    # the first request leaves the window ~0.5 s after it was made, not a full window after the second
    assert resp.json()["retryAfter"] <= 0.26
    sleep_until(time.monotonic() + resp.json()["retryAfter"])
    assert api.get("/batches", endpoint="events").status_code == 200
    assert api.get("/batches", endpoint="events").status_code == 429


@pytest.mark.parametrize(
    ("signals", "body_field", "retry_after_header", "reset_headers"),
    [
        ({"body"}, True, False, False),
        ({"header"}, False, True, False),
        ({"reset"}, False, False, True),
        (set(), False, False, False),
    ],
)
def test_which_rate_limit_signals_are_sent_is_configurable(
    start_emulator: Callable[..., OmnisendEmulator],
    signals: set[str],
    body_field: bool,
    retry_after_header: bool,
    reset_headers: bool,
) -> None:
    emu = start_emulator(rate_limit=1, rate_limit_signals=frozenset(signals))
    api = Api(emu)
    ok = api.get("/batches", endpoint="events")
    refused = api.get("/batches", endpoint="events")
    assert refused.status_code == 429
    assert ("retryAfter" in refused.json()) is body_field
    assert ("Retry-After" in refused.headers) is retry_after_header
    assert ("X-Rate-Limit-Reset" in refused.headers) is reset_headers
    assert ("X-Rate-Limit-Remaining" in ok.headers) is reset_headers
    if reset_headers:
        assert math.isclose(int(refused.headers["X-Rate-Limit-Reset"]), 60, abs_tol=1)


def test_the_control_api_is_not_rate_limited(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(rate_limit=1)
    api = Api(emu)
    for _ in range(3):
        assert api.session.get(f"{emu.base_url}/__emulator__/stats", timeout=5).status_code == 200
    assert api.get("/batches", endpoint="events").status_code == 200
    assert emu.store.request_count() == 1
