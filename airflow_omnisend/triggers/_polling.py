"""Which batch to poll next and how long to wait: the polling rule shared by the trigger (async), the
sender's own polling (sync) and the batch sensor. Pure logic: no I/O, no clock, no Airflow.

Bulk polling (the sender and the trigger): one round reads every pending batch from pages of ``GET
/batches`` (``observe_round``), waiting ``poll_interval`` after a round in which some batch ended and
backing off while none did; so a run costs a few list pages per round, not a GET per batch.

Per-batch polling (the batch sensor): every ``GET /batches/{id}`` counts against the same 400
requests/min as the POSTs that do the work, so polling must spend as little as possible:

* only the *oldest* unfinished batch is polled: Omnisend processes a brand's batches in creation
  order, so while the oldest runs, the younger ones almost surely do too, and polling them is waste;
* when a poll finds its batch ended, the next oldest is polled at once (it has probably ended too);
* when it finds it still running, the wait before the next poll doubles, from ``poll_interval`` up to
  ``max_poll_interval``, and starts again from ``poll_interval`` after the next batch ends.

So a shard of N batches costs N polls plus a few for the batches still running when polling starts,
however long Omnisend takes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

#: statuses after which a batch never changes again
TERMINAL_STATUSES = frozenset({"finished", "stopped"})
#: fields of a Batch kept in a summary (small enough for a TriggerEvent)
SUMMARY_FIELDS = ("status", "totalCount", "finishedCount", "errorsCount")


def is_terminal(batch: Mapping[str, Any]) -> bool:
    return batch.get("status") in TERMINAL_STATUSES


def batch_summary(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The small part of a Batch that a TriggerEvent or XCom carries."""
    return {name: batch.get(name) for name in SUMMARY_FIELDS}


def check_intervals(poll_interval: object, max_poll_interval: object, owner: str) -> tuple[float, float]:
    """Validated ``(poll_interval, max_poll_interval)`` in seconds."""
    values = []
    for name, value in (("poll_interval", poll_interval), ("max_poll_interval", max_poll_interval)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise OmnisendConfigError(f"{owner}: {name} must be a number of seconds, got {value!r}")
        if value <= 0:
            raise OmnisendConfigError(f"{owner}: {name} must be > 0 seconds, got {value!r}")
        values.append(float(value))
    if values[1] < values[0]:
        raise OmnisendConfigError(
            f"{owner}: max_poll_interval ({values[1]:g}) must be >= poll_interval ({values[0]:g})"
        )
    return values[0], values[1]


class BatchPoller:
    """Oldest-first polling with back-off over a growing set of batch ids.

    :param batch_ids: the batches to wait for, oldest first.
    :param poll_interval: first wait after a poll that found its batch still running (seconds).
    :param max_poll_interval: longest wait between two polls.
    :param backoff: factor the wait grows by after each such poll.
    """

    def __init__(
        self,
        batch_ids: Iterable[str] = (),
        *,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        backoff: float = 2.0,
    ) -> None:
        self.poll_interval, self.max_poll_interval = check_intervals(
            poll_interval, max_poll_interval, "BatchPoller"
        )
        if not backoff >= 1:
            raise OmnisendConfigError(f"BatchPoller: backoff must be >= 1, got {backoff!r}")
        self.backoff = backoff
        self.interval = self.poll_interval
        self.polls = 0
        self.summaries: dict[str, dict[str, Any]] = {}
        self._pending: list[str] = []
        self.add(batch_ids)

    @property
    def pending(self) -> list[str]:
        """Batches not seen ended yet, oldest first."""
        return list(self._pending)

    def add(self, batch_ids: Iterable[str]) -> None:
        """Wait for these batches too (appended as the youngest; known ones are ignored)."""
        for batch_id in batch_ids:
            if not isinstance(batch_id, str) or not batch_id:
                raise OmnisendConfigError(
                    f"BatchPoller: batch ids must be non-empty strings, got {batch_id!r}"
                )
            if batch_id not in self.summaries and batch_id not in self._pending:
                self._pending.append(batch_id)

    def next_batch(self) -> str | None:
        """The batch to poll now (the oldest unfinished), or ``None`` when every batch has ended."""
        return self._pending[0] if self._pending else None

    def observe(self, batch_id: str, batch: Mapping[str, Any]) -> float:
        """Record a poll of ``batch_id``; return the seconds to wait before the next poll."""
        self.polls += 1
        if not is_terminal(batch):
            wait = self.interval
            self.interval = min(self.interval * self.backoff, self.max_poll_interval)
            return wait
        self.summaries[batch_id] = batch_summary(batch)
        if batch_id in self._pending:
            self._pending.remove(batch_id)
        self.interval = self.poll_interval
        return 0.0

    def _take_ended(self, found: Mapping[str, Mapping[str, Any]]) -> int:
        ended = 0
        for batch_id in self.pending:
            batch = found.get(batch_id)
            if batch is not None and is_terminal(batch):
                self.summaries[batch_id] = batch_summary(batch)
                self._pending.remove(batch_id)
                ended += 1
        if ended:
            self.interval = self.poll_interval
        return ended

    def observe_shared(self, found: Mapping[str, Mapping[str, Any]], wait: float) -> float:
        """Record a round another poller's listing answered (no request of this one: no back-off);
        return ``wait``, the seconds until that listing is due again."""
        self._take_ended(found)
        return wait

    def observe_round(self, found: Mapping[str, Mapping[str, Any]], requests: int) -> float:
        """Record one bulk poll round (``find_batches``: every pending batch in ``requests`` list
        pages); return the seconds to wait before the next round: ``poll_interval`` when some batch
        ended, else the backed-off interval."""
        self.polls += requests
        if self._take_ended(found):
            return self.interval
        wait = self.interval
        self.interval = min(self.interval * self.backoff, self.max_poll_interval)
        return wait
