"""Omnisend's rate limit: a sliding window of N requests per key.

A sliding window (not fixed buckets) because that is what the 2026 docs describe ("bursts at window
boundaries are not possible"), and it is the stricter of the two for a client's pacing.

Requests refused with 429 do not spend budget: the window holds only requests that were let through.
A client that waits the time a 429 named therefore always finds a free slot, which is the property
the hook's pacing is tested against (and the gentler reading of an undocumented detail).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The limiter's answer for one request, and what the ``X-Rate-Limit-*`` headers report."""

    allowed: bool
    limit: int
    remaining: int
    #: seconds until the oldest request in the window leaves it (a slot frees); the full window when empty.
    reset: float


class SlidingWindowLimiter:
    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, now: float) -> RateDecision:
        """Spend one slot of ``key``'s window if one is free; ``now`` is ``time.monotonic()``."""
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            horizon = now - self.window
            while hits and hits[0] <= horizon:
                hits.popleft()
            allowed = len(hits) < self.limit
            if allowed:
                hits.append(now)
            reset = hits[0] + self.window - now if hits else self.window
            return RateDecision(allowed, self.limit, self.limit - len(hits), max(reset, 0.0))

    def refund(self, key: str, stamp: float) -> None:
        """Give back the slot ``acquire(key, stamp)`` spent (the request was answered 429 after all)."""
        with self._lock:
            hits = self._hits.get(key)
            if hits is not None and stamp in hits:
                hits.remove(stamp)

    def peek(self, key: str, now: float) -> RateDecision:
        """The current state without spending a slot (for responses that must not count)."""
        with self._lock:
            hits = self._hits.get(key, deque())
            live = [t for t in hits if t > now - self.window]
            reset = live[0] + self.window - now if live else self.window
            return RateDecision(len(live) < self.limit, self.limit, self.limit - len(live), max(reset, 0.0))
