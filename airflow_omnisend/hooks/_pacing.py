"""Rate pacing and retry timing, shared by the sync and the async hook.

Omnisend allows about 400 requests a minute per brand, counted across every integration of that brand.
Spending the budget to zero and then living on 429s hurts the other integrations too, so the pacer
stops at a low-water mark and waits for the window to reset. When a 429 does come, the time it names is
a floor for *every* thread of the hook, not only the one that got it.

Clock, sleep and randomness are injectable so the timing rules can be tested without real waiting.
Nothing here imports Airflow or an HTTP library.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from airflow_omnisend.hooks._brand_budget import BrandBudget, BrandBudgetConfig

log = logging.getLogger(__name__)

#: Added to every wait the server names: the server's clock and ours tick differently.
SAFETY_MARGIN = 0.05


@dataclass(frozen=True)
class RetryConfig:
    """How long and how often one hook call may retry (429, 5xx, timeouts, dropped connections).

    :param max_attempts: attempts in total, the first one included.
    :param base_delay: first back-off in seconds; doubles per retry.
    :param max_delay: cap of one back-off (a wait the server names is never capped: it is a floor).
    :param total_budget: seconds one call may spend, waits included; a retry that would end later is
        not started and the last error is raised instead.
    :param jitter: fraction (0-1) of randomness; back-offs are shortened by up to this fraction, and
        server-named waits lengthened by up to ``jitter * base_delay`` so threads do not stampede.
    """

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    total_budget: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise OmnisendConfigError(f"RetryConfig.max_attempts must be an int, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise OmnisendConfigError(
                f"RetryConfig.max_attempts must be >= 1 (1 = no retries), got {self.max_attempts}"
            )
        for name in ("base_delay", "max_delay", "total_budget", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise OmnisendConfigError(f"RetryConfig.{name} must be a finite number, got {value!r}")
        if self.base_delay < 0:
            raise OmnisendConfigError(f"RetryConfig.base_delay must be >= 0, got {self.base_delay}")
        if self.max_delay < self.base_delay:
            raise OmnisendConfigError(
                f"RetryConfig.max_delay ({self.max_delay}) must be >= base_delay ({self.base_delay})"
            )
        if self.total_budget <= 0:
            raise OmnisendConfigError(
                f"RetryConfig.total_budget must be > 0 seconds, got {self.total_budget}"
            )
        if not 0 <= self.jitter <= 1:
            raise OmnisendConfigError(f"RetryConfig.jitter must be between 0 and 1, got {self.jitter}")

    def backoff(self, retry_number: int, rand: float) -> float:
        """Capped exponential back-off for the ``retry_number``-th retry (1-based), jittered down."""
        exponent = min(max(retry_number, 1) - 1, 60)
        raw = min(self.max_delay, self.base_delay * (2.0**exponent))
        return raw * (1.0 - self.jitter * rand)

    def named_wait(self, seconds: float, rand: float) -> float:
        """A wait the server named, never shorter, slightly spread."""
        return max(0.0, seconds) + SAFETY_MARGIN + self.jitter * rand * self.base_delay


class RetryBudget:
    """Attempts and time left for one hook call."""

    def __init__(self, config: RetryConfig, now: float) -> None:
        self.config = config
        self.started_at = now
        self.attempts = 0

    @property
    def deadline(self) -> float:
        return self.started_at + self.config.total_budget

    def start_attempt(self) -> int:
        self.attempts += 1
        return self.attempts

    def next_wait(self, *, named: float | None, now: float, rand: float) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when attempts or time are spent."""
        if self.attempts >= self.config.max_attempts:
            return None
        if named is not None:
            wait = self.config.named_wait(named, rand)
        else:
            wait = self.config.backoff(self.attempts, rand)
        if now + wait > self.deadline:
            return None
        return wait


class PacingDeadlineError(Exception):
    """The pacer would have to wait past the caller's deadline; ``wait`` is how long it would be."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate-limit pause of {wait:.1f}s outlasts the retry budget")
        self.wait = wait


class RateLimitPacer:
    """Shared, thread-safe gate in front of every request of one hook instance.

    * :meth:`observe` reads ``X-Rate-Limit-Limit/Remaining/Reset`` from every response.
    * :meth:`acquire` (or :meth:`acquire_async`) blocks until a request may go: not before a 429's
      named time (:meth:`hold_for`), and not while the remaining budget is at or under the low-water
      mark before the window resets. Each acquire reserves one request of the remaining budget, so
      concurrent threads do not all spend the last few slots.

    :param low_water_min: never go below this many remaining requests.
    :param low_water_fraction: ... nor below this fraction of ``X-Rate-Limit-Limit``.
    :param unknown_reset_wait: pause when the budget is low but the server gave no reset time.
    """

    def __init__(
        self,
        *,
        low_water_min: int = 2,
        low_water_fraction: float = 0.05,
        unknown_reset_wait: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] | None = None,
        brand_budget: BrandBudget | None = None,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        if low_water_min < 0 or not 0 <= low_water_fraction < 1:
            raise OmnisendConfigError(
                "RateLimitPacer: low_water_min must be >= 0 and low_water_fraction in [0, 1), got "
                f"{low_water_min!r} and {low_water_fraction!r}"
            )
        self.low_water_min = low_water_min
        self.low_water_fraction = low_water_fraction
        self.unknown_reset_wait = unknown_reset_wait
        self.clock = clock
        self.sleep = sleep
        self.async_sleep = async_sleep
        self.rand = rand or random.Random().random
        self._lock = threading.Lock()
        self._blocked_until = -math.inf
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None
        #: shared with every sender of the brand (other threads, processes, machines); see _brand_budget
        self.brand_budget = brand_budget
        #: time of the shared budget: wall-clock, or the injected ``clock`` of a simulated pacer (tests)
        self.wall_clock = wall_clock or (time.time if clock is time.monotonic else clock)

    def use_brand_budget(self, config: BrandBudgetConfig, secret: str) -> None:
        """Pace through the brand's shared budget from now on (once; a budget given at construction wins)."""
        if self.brand_budget is None:
            from airflow_omnisend.hooks._brand_budget import open_brand_budget

            self.brand_budget = open_brand_budget(config, secret)

    # -- state -------------------------------------------------------------------------------------

    @property
    def low_water(self) -> int:
        """Remaining requests at which the pacer starts waiting for the reset."""
        if self._limit is None:
            return self.low_water_min
        return max(self.low_water_min, math.ceil(self.low_water_fraction * self._limit))

    @property
    def blocked_until(self) -> float:
        """Clock time before which no request may start (after a 429)."""
        with self._lock:
            return self._blocked_until

    def snapshot(self) -> dict[str, float | int | None]:
        """The pacer's view of the budget, for logs and tests."""
        with self._lock:
            return {
                "limit": self._limit,
                "remaining": self._remaining,
                "reset_in": None if self._reset_at is None else max(0.0, self._reset_at - self.clock()),
                "blocked_for": max(0.0, self._blocked_until - self.clock()),
            }

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the budget from a response's rate-limit headers (any response, error or not)."""
        limit = _header_number(headers, "X-Rate-Limit-Limit")
        remaining = _header_number(headers, "X-Rate-Limit-Remaining")
        reset = _header_number(headers, "X-Rate-Limit-Reset")
        if remaining is None and limit is None:
            return
        now = self.clock()
        with self._lock:
            if limit is not None and limit > 0:
                self._limit = int(limit)
            if remaining is not None:
                self._remaining = max(0, int(remaining))
                wait = reset if reset is not None else self.unknown_reset_wait
                self._reset_at = now + max(0.0, wait)

    def hold_for(self, seconds: float) -> None:
        """No request of this hook may start for ``seconds`` (a 429 named that time)."""
        until = self.clock() + max(0.0, seconds)
        with self._lock:
            if until > self._blocked_until:
                self._blocked_until = until
        if self.brand_budget is not None:
            self.brand_budget.hold_until(self.wall_clock() + max(0.0, seconds))

    # -- gate --------------------------------------------------------------------------------------

    def _try_reserve(self, now: float) -> tuple[float, str]:
        """Reserve one request and return ``(0, "")``, or return how long to wait and why: this hook's
        view (429 hold, low budget in the headers) first, then the brand's shared budget."""
        with self._lock:
            if self._reset_at is not None and now >= self._reset_at:
                # The window the headers described is over; the next response tells the new budget.
                self._remaining = None
                self._reset_at = None
            until, reason = self._blocked_until, "Omnisend asked us to wait (429)"
            low = self._remaining is not None and self._remaining <= self.low_water
            if low and self._reset_at is not None and self._reset_at > until:
                until = self._reset_at
                reason = (
                    f"Omnisend rate limit: {self._remaining} of {self._limit or '?'} requests left "
                    "in the window; waiting for it to reset"
                )
            if now < until:
                return until - now, reason
        if self.brand_budget is not None:
            shared_wait = self.brand_budget.try_reserve(self.wall_clock())
            if shared_wait > 0:
                return shared_wait, "the brand's shared budget (another sender's 429 or the pace) says wait"
        with self._lock:
            if self._remaining is not None:
                self._remaining -= 1
        return 0.0, ""

    def acquire(self, deadline: float | None = None) -> float:
        """Block until a request may go; return the seconds waited.

        :raises PacingDeadlineError: when the wait would end after ``deadline`` (clock time).
        """
        waited = 0.0
        logged = False
        while True:
            now = self.clock()
            wait, reason = self._try_reserve(now)
            if wait <= 0:
                return waited
            if deadline is not None and now + wait > deadline:
                raise PacingDeadlineError(wait)
            if not logged:
                log.info("%s: pausing %.2fs", reason, wait)
                logged = True
            self.sleep(wait)
            waited += wait

    async def acquire_async(self, deadline: float | None = None) -> float:
        """:meth:`acquire` for the event loop: waits with ``asyncio.sleep``."""
        waited = 0.0
        logged = False
        while True:
            now = self.clock()
            wait, reason = self._try_reserve(now)
            if wait <= 0:
                return waited
            if deadline is not None and now + wait > deadline:
                raise PacingDeadlineError(wait)
            if not logged:
                log.info("%s: pausing %.2fs", reason, wait)
                logged = True
            await self.async_sleep(wait)
            waited += wait


# -- reading the server's wait ---------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    return _number(_header(headers, name))


def parse_retry_after_header(value: str | None, now_wall: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP-date (RFC 9110)."""
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    now = time.time() if now_wall is None else now_wall
    return max(0.0, when.timestamp() - now)


def server_named_wait(
    body: Any, headers: Mapping[str, str], now_wall: float | None = None
) -> tuple[float | None, str]:
    """The wait a 429 names and where it came from, in Omnisend's order of precedence:
    body ``retryAfter``, ``Retry-After`` header, ``X-Rate-Limit-Reset``; ``(None, "backoff")`` if none.
    """
    if isinstance(body, dict):
        seconds = _number(body.get("retryAfter"))
        if seconds is not None:
            return seconds, "body retryAfter"
    seconds = parse_retry_after_header(_header(headers, "Retry-After"), now_wall)
    if seconds is not None:
        return seconds, "Retry-After header"
    seconds = _header_number(headers, "X-Rate-Limit-Reset")
    if seconds is not None:
        return seconds, "X-Rate-Limit-Reset header"
    return None, "backoff"
