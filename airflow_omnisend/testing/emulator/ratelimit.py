"""Omnisend's rate limit: a sliding window of N requests per key.

A sliding window (not fixed buckets) because that is what the 2026 docs describe ("bursts at window
boundaries are not possible"), and it is the stricter of the two for a client's pacing.

Requests refused with 429 do not spend budget: the window holds only requests that were let through.
A client that waits the time a 429 named therefore always finds a free slot, which is the property
the hook's pacing is tested against (and the gentler reading of an undocumented detail).
:func:`early_arrivals` counts the requests that came inside a named retry time (the shared brand
budget's test and benchmark).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_omnisend.testing.emulator.store import RequestRecord


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


@dataclass(frozen=True, slots=True)
class EarlyArrival:
    """A request of a key that arrived inside the retry time a 429 to that key had named."""

    key_fingerprint: str
    refused_at: float
    retry_after: float
    arrived: float


def early_arrivals(records: Iterable[RequestRecord], in_flight: float = 0.0) -> list[EarlyArrival]:
    """Every request (not only the next one) that arrived before a named retry time of its key was over.

    A 429's retry time runs from the moment its response was written; requests that arrive less than
    ``in_flight`` seconds after that had already left their sender (they could not know) and do not count.
    """
    ordered = sorted(records, key=lambda r: r.mono)
    refusals = [r for r in ordered if r.status == 429 and r.retry_after]
    found: list[EarlyArrival] = []
    for rec in ordered:
        for refusal in refusals:
            if refusal.key_fingerprint != rec.key_fingerprint:
                continue
            start, end = (
                refusal.responded_mono + in_flight,
                refusal.responded_mono + (refusal.retry_after or 0),
            )
            if start <= rec.mono < end:
                found.append(
                    EarlyArrival(
                        rec.key_fingerprint, refusal.responded_mono, refusal.retry_after or 0, rec.mono
                    )
                )
                break
    return found
