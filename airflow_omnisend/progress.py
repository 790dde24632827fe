"""Progress lines for long steps: at most one every ``interval`` seconds, with counts, rate and ETA.

So a person watching a month's extract or send sees it move without a line per body. Airflow-free;
the clock is injectable (tests drive it by hand, no sleeps).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_INTERVAL", "ProgressLog", "format_seconds"]

#: seconds between two progress lines of one step
DEFAULT_INTERVAL: Final = 10.0

_log = logging.getLogger(__name__)


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``: a duration for a person."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressLog:
    """Logs ``<what>: <done> [of <total>] <unit> (<pct>), <rate>/s[, ETA ...]`` when one is due.

    :param what: the step, as the line starts (``"extract demo 2024-03"``).
    :param unit: what is counted (``"events"``, ``"bodies"``).
    :param total: how many there are, when known (then the line has a percentage and an ETA).
    :param pace: units per second the step cannot exceed (e.g. bodies at the brand's request pace);
        the ETA uses it when the observed rate is faster or not yet known, and then says so.
    :param done_before: units already finished when the step starts (a resumed send's finished
        bodies): counted, but not in the rate.
    :param interval: least seconds between two lines; nothing is logged before the first interval.
    :param clock: monotonic seconds (default :func:`time.monotonic`).
    """

    def __init__(
        self,
        what: str,
        *,
        unit: str,
        total: int | None = None,
        pace: float | None = None,
        done_before: int = 0,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        self.what = what
        self.unit = unit
        self.total = total
        self.pace = pace if pace is not None and pace > 0 else None
        self.interval = interval
        self._clock = clock
        self._log = logger or _log
        self._started = clock()
        self._last = self._started
        self._done_before = done_before

    def update(self, done: int) -> bool:
        """Record that ``done`` units are finished; log a line if ``interval`` has passed since the last
        one. Returns whether it logged. Cheap enough to call per unit."""
        now = self._clock()
        if now - self._last < self.interval:
            return False
        self._last = now
        self._log.info("%s", self.line(done, now))
        return True

    def line(self, done: int, now: float | None = None) -> str:
        """The progress line for ``done`` units at ``now`` (default: the clock)."""
        now = self._clock() if now is None else now
        elapsed = now - self._started
        rate = (done - self._done_before) / elapsed if elapsed > 0 else 0.0
        text = f"{self.what}: {done:,}"
        if self.total is not None:
            share = f", {done / self.total:.0%}" if self.total else ""
            text += f" of {self.total:,} {self.unit}{share}"
        else:
            text += f" {self.unit}"
        text += f", {rate:,.1f} {self.unit}/s"
        if self.total is not None and done < self.total:
            text += self._eta(self.total - done, rate)
        return text

    def _eta(self, remaining: int, rate: float) -> str:
        if self.pace is not None and (rate <= 0 or rate > self.pace):
            return f", ETA {format_seconds(remaining / self.pace)} at the rate limit"
        if rate <= 0:
            return ", ETA unknown"
        eta = f", ETA {format_seconds(remaining / rate)}"
        if self.pace is not None:
            eta += f" (at the rate limit {format_seconds(remaining / self.pace)})"
        return eta
