"""Decides, deterministically, which requests and batches a :class:`FaultConfig` hits.

Each fault kind has its own ``random.Random`` seeded from ``(seed, kind)``: the sequence of requests a
5xx rate hits does not change when a test also turns on slow responses. Draws happen for every
targeted request whether or not the rate is zero, so a run is reproducible request by request.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_omnisend.testing.emulator.items import parse_event_time

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_omnisend.testing.emulator.config import FaultConfig


@dataclass(frozen=True, slots=True)
class RequestFault:
    """What to do to one targeted request before it is handled (at most one of 429/5xx) and after."""

    status_429: bool = False
    retry_after: float = 0.0
    retry_after_header: float = 0.0
    status_5xx: int | None = None
    slow_seconds: float = 0.0


NO_FAULT = RequestFault()


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self._lock = threading.Lock()
        self.set(config)

    @property
    def config(self) -> FaultConfig:
        return self._config

    def set(self, config: FaultConfig) -> None:
        """Replace the faults; counters (bursts, next-N drops and stops) restart."""
        with self._lock:
            self._config = config
            self._rng = {
                kind: random.Random(f"{config.seed}:{kind}")
                for kind in ("5xx", "slow", "drop", "stop", "item", "item400")
            }
            self._counted = 0
            self._burst_left = 0
            self._drops_left = config.drop_next_responses
            self._stops_left = config.stop_next_batches
            self._omits_left = config.omit_counters_next_batches

    def on_request(self, operation: str) -> RequestFault:
        """Called once for every authenticated API request (``operation`` as in ``FAULT_TARGETS``)."""
        with self._lock:
            cfg = self._config
            if operation not in cfg.targets:
                return NO_FAULT
            if self._burst_left == 0:
                self._counted += 1
                if cfg.burst_429_every and self._counted % cfg.burst_429_every == 0:
                    self._burst_left = cfg.burst_429_length
            five = self._rng["5xx"]
            hit_5xx = five.random() < cfg.error_5xx_rate
            status_5xx = five.choice(cfg.error_5xx_statuses)
            slow = self._rng["slow"].random() < cfg.slow_rate
            if self._burst_left:
                self._burst_left -= 1
                header = cfg.burst_429_retry_after_header
                return RequestFault(
                    status_429=True,
                    retry_after=cfg.burst_429_retry_after,
                    retry_after_header=cfg.burst_429_retry_after if header is None else header,
                )
            return RequestFault(
                status_5xx=status_5xx if hit_5xx else None,
                slow_seconds=cfg.slow_seconds if slow else 0.0,
            )

    def refused_window(self, event_times: Iterable[object]) -> str | None:
        """The first refusing window (as text) that one of these eventTimes falls in, if any."""
        windows = self._config.event_windows
        if not windows:
            return None
        for value in event_times:
            instant = parse_event_time(value) if isinstance(value, str) else None
            if instant is None:
                continue
            for start, end in windows:
                if start <= instant < end:
                    return f"[{start.isoformat()}, {end.isoformat()})"
        return None

    def drop_response(self) -> bool:
        """Called once per accepted batch creation: close the connection instead of answering?"""
        with self._lock:
            hit = self._rng["drop"].random() < self._config.drop_response_rate
            if self._drops_left:
                self._drops_left -= 1
                return True
            return hit

    def stop_after(self, total_items: int) -> int | None:
        """Called once per accepted batch: how many of its items get processed before it stops (None: it
        does not stop on purpose)."""
        with self._lock:
            cfg = self._config
            hit = self._rng["stop"].random() < cfg.stop_batch_rate
            if self._stops_left:
                self._stops_left -= 1
                hit = True
            if not hit:
                return None
            after = total_items // 2 if cfg.stop_after_items is None else cfg.stop_after_items
            return min(after, total_items)

    def omit_counters(self) -> bool:
        """Called once per accepted batch: answer it without its counters?"""
        with self._lock:
            if self._omits_left:
                self._omits_left -= 1
                return True
            return False

    def item_refused(self) -> bool:
        """Called once per processed item: fail it with a 400 response (not retryable)?"""
        with self._lock:
            return self._rng["item400"].random() < self._config.item_400_rate

    def item_fails(self) -> bool:
        """Called once per processed item (worker thread, batch order): fail it with a 503 response?"""
        with self._lock:
            return self._rng["item"].random() < self._config.item_5xx_rate
