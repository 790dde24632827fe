"""Retry timing and the rate pacer, on a fake clock where no real waiting is needed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.hooks._brand_budget import BrandBudgetConfig, FileBudget, ProcessBudget
from airflow_omnisend.hooks._pacing import (
    SAFETY_MARGIN,
    PacingDeadlineError,
    RateLimitPacer,
    RetryBudget,
    RetryConfig,
    parse_retry_after_header,
    server_named_wait,
)

if TYPE_CHECKING:
    from pathlib import Path


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def fake_pacer(**kwargs: Any) -> tuple[RateLimitPacer, FakeClock]:
    clock = FakeClock()
    pacer = RateLimitPacer(
        clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, rand=lambda: 0.0, **kwargs
    )
    return pacer, clock


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": 2.5},
        {"base_delay": -1},
        {"base_delay": 5, "max_delay": 1},
        {"total_budget": 0},
        {"jitter": 1.5},
        {"jitter": float("nan")},
        {"max_delay": True},
    ],
)
def test_retry_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(OmnisendConfigError, match="RetryConfig"):
        RetryConfig(**kwargs)  # type: ignore[arg-type]


def test_backoff_is_exponential_capped_and_jittered_down() -> None:
    config = RetryConfig(base_delay=1, max_delay=8, jitter=0.5)
    assert [config.backoff(n, 0.0) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    assert config.backoff(3, 1.0) == 2.0  # 4 shortened by half
    assert config.backoff(10_000, 0.0) == 8  # no overflow


def test_named_wait_is_never_shorter() -> None:
    config = RetryConfig(base_delay=0.5, jitter=0.2)
    assert config.named_wait(3, 0.0) == pytest.approx(3 + SAFETY_MARGIN)
    assert config.named_wait(3, 1.0) == pytest.approx(3 + SAFETY_MARGIN + 0.1)
    assert config.named_wait(-4, 0.0) == pytest.approx(SAFETY_MARGIN)


def test_retry_budget_stops_on_attempts_and_on_time() -> None:
    budget = RetryBudget(
        RetryConfig(max_attempts=3, base_delay=1, max_delay=10, total_budget=100, jitter=0), 0
    )
    budget.start_attempt()
    assert budget.next_wait(named=None, now=0, rand=0) == 1
    budget.start_attempt()
    assert budget.next_wait(named=30, now=1, rand=0) == pytest.approx(30 + SAFETY_MARGIN)
    budget.start_attempt()
    assert budget.next_wait(named=None, now=2, rand=0) is None  # third attempt was the last

    budget = RetryBudget(RetryConfig(max_attempts=10, total_budget=10, jitter=0), 0)
    budget.start_attempt()
    assert budget.next_wait(named=11, now=0, rand=0) is None  # would end after the budget
    assert budget.next_wait(named=5, now=4, rand=0) is not None


def test_server_named_wait_precedence() -> None:
    headers = {"Retry-After": "7", "X-Rate-Limit-Reset": "9"}
    assert server_named_wait({"retryAfter": 3}, headers) == (3.0, "body retryAfter")
    assert server_named_wait({"retryAfter": "soon"}, headers) == (7.0, "Retry-After header")
    assert server_named_wait({"title": "x"}, headers) == (7.0, "Retry-After header")
    assert server_named_wait(None, {"x-rate-limit-reset": "9"}) == (9.0, "X-Rate-Limit-Reset header")
    assert server_named_wait({}, {"Retry-After": "garbage"}) == (None, "backoff")
    assert server_named_wait({"retryAfter": -5}, {}) == (None, "backoff")


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after_header(later, now_wall=now.timestamp()) == pytest.approx(42)
    earlier = format_datetime(now - timedelta(seconds=42), usegmt=True)
    assert parse_retry_after_header(earlier, now_wall=now.timestamp()) == 0
    assert parse_retry_after_header("1.5") == 1.5
    assert parse_retry_after_header("Wed, 99 Foo") is None


def test_pacer_without_headers_never_waits() -> None:
    pacer, clock = fake_pacer()
    pacer.observe({"Content-Type": "application/json"})
    for _ in range(50):
        assert pacer.acquire() == 0
    assert clock.sleeps == []


def test_pacer_waits_for_reset_at_low_water() -> None:
    pacer, clock = fake_pacer()  # low water = max(2, 5% of 100) = 5
    pacer.observe({"X-Rate-Limit-Limit": "100", "X-Rate-Limit-Remaining": "6", "X-Rate-Limit-Reset": "10"})
    assert pacer.low_water == 5
    assert pacer.acquire() == 0  # reserves the 6th -> 5 left
    assert pacer.acquire() == pytest.approx(10)  # at low water: waits for the reset
    assert clock.sleeps == [pytest.approx(10)]
    assert pacer.acquire() == 0  # new window, budget unknown until the next response
    assert pacer.snapshot()["remaining"] is None


def test_pacer_low_water_without_limit_or_reset() -> None:
    pacer, _ = fake_pacer(unknown_reset_wait=1.5)
    pacer.observe({"X-Rate-Limit-Remaining": "2"})
    assert pacer.low_water == 2
    assert pacer.acquire() == pytest.approx(1.5)


def test_pacer_hold_blocks_and_respects_deadline() -> None:
    pacer, clock = fake_pacer()
    pacer.hold_for(5)
    pacer.hold_for(2)  # a shorter hold never shortens the longer one
    with pytest.raises(PacingDeadlineError) as info:
        pacer.acquire(deadline=clock.now + 1)
    assert info.value.wait == pytest.approx(5)
    assert clock.sleeps == []
    assert pacer.acquire(deadline=clock.now + 10) == pytest.approx(5)


async def test_pacer_async_acquire() -> None:
    pacer, clock = fake_pacer()
    pacer.hold_for(3)
    assert await pacer.acquire_async() == pytest.approx(3)
    assert clock.sleeps == [pytest.approx(3)]


def test_pacer_validation() -> None:
    with pytest.raises(OmnisendConfigError):
        RateLimitPacer(low_water_fraction=1.5)


def test_pacer_reserves_the_budget_across_threads() -> None:
    """Ten threads, five requests left, low water two: exactly three go before the window resets."""
    pacer = RateLimitPacer(low_water_min=2, low_water_fraction=0)
    pacer.observe({"X-Rate-Limit-Limit": "10", "X-Rate-Limit-Remaining": "5", "X-Rate-Limit-Reset": "0.4"})
    waits: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def worker() -> None:
        start.wait(timeout=5)
        waited = pacer.acquire()
        with lock:
            waits.append(waited)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(waits) == 10
    assert sum(1 for w in waits if w == 0) == 3
    assert all(w > 0.2 for w in waits if w)
    assert time.monotonic() - began >= 0.35


def test_a_hold_one_pacer_gets_stops_every_pacer_of_the_brand() -> None:
    """Two pacers (two hooks, or two processes through a file/redis budget) share one brand budget."""
    clock = FakeClock()
    shared = ProcessBudget(requests_per_window=400, window=60.0)
    first, second = (
        RateLimitPacer(clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, brand_budget=shared)
        for _ in range(2)
    )
    first.hold_for(4)
    assert shared.blocked_until() == pytest.approx(clock.now + 4)
    assert second.acquire() == pytest.approx(4)


async def test_the_async_acquire_paces_through_the_brand_budget() -> None:
    clock = FakeClock()
    shared = ProcessBudget(requests_per_window=2, window=10.0)
    pacer = RateLimitPacer(clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, brand_budget=shared)
    assert await pacer.acquire_async() == 0
    assert await pacer.acquire_async() == 0
    assert await pacer.acquire_async() == pytest.approx(
        10
    )  # the window is full until the first start leaves it


def test_a_pacer_attaches_the_connections_budget_once(tmp_path: Path) -> None:
    pacer = RateLimitPacer()
    config = BrandBudgetConfig(backend="file", directory=str(tmp_path))
    pacer.use_brand_budget(config, "key-one")
    attached = pacer.brand_budget
    pacer.use_brand_budget(BrandBudgetConfig(backend="process"), "key-one")
    assert isinstance(attached, FileBudget)
    assert pacer.brand_budget is attached
    assert RateLimitPacer().brand_budget is None
