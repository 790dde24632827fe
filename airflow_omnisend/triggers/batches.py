"""OmnisendBatchesTrigger: wait in the triggerer until a set of Omnisend batches has ended.

The trigger only reads (paged ``GET /batches`` through :class:`OmnisendAsyncHook`, one listing per
poll round shared with every other poller of the brand, ``_shared_listing``), so running it twice (a
triggerer restart) has no side effect. It polls in bulk with back-off (``_polling``) and yields
exactly one small event:

* ``{"status": "done", "batches": {id: {status, totalCount, finishedCount, errorsCount}}, "polls": n}``
  when every batch is ``finished`` or ``stopped`` (the operator decides what a stop means);
* ``{"status": "error", "error": <exception type name>, "message", "http_status", "retry_after",
  "batch_id"}`` when a read failed for good (after the hook's own retries). The message comes from the
  hook's typed error, which never holds the API key. :func:`exception_from_event` turns it back into
  the same typed exception in the worker, so the retry policy sees a 401 as a 401.

Item results are not in the event (they can be megabytes); the worker reads them after resuming,
only for batches whose counters do not prove that every item finished without error.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_omnisend import exceptions as omnisend_exceptions
from airflow_omnisend.exceptions import (
    OmnisendAPIError,
    OmnisendBatchStoppedError,
    OmnisendConfigError,
    OmnisendError,
    OmnisendNotFoundError,
)
from airflow_omnisend.hooks.omnisend_async import OmnisendAsyncHook
from airflow_omnisend.triggers._polling import BatchPoller, check_intervals
from airflow_omnisend.triggers._shared_listing import SharedRounds

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

__all__ = ["OmnisendBatchesTrigger", "error_event", "exception_from_event"]

CLASSPATH = "airflow_omnisend.triggers.batches.OmnisendBatchesTrigger"
_MAX_MESSAGE = 2000


def error_event(exc: BaseException) -> dict[str, Any]:
    """The payload of an ``error`` event for ``exc``."""
    message = str(exc)
    return {
        "status": "error",
        "error": type(exc).__name__,
        "message": message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "...",
        "http_status": exc.status if isinstance(exc, OmnisendAPIError) else None,
        "retry_after": exc.retry_after if isinstance(exc, OmnisendAPIError) else None,
        "batch_id": exc.batch_id if isinstance(exc, OmnisendBatchStoppedError) else None,
    }


def exception_from_event(event: Mapping[str, Any]) -> OmnisendError:
    """The typed exception an ``error`` event stands for (``OmnisendError`` for unknown types)."""
    name = str(event.get("error") or "OmnisendError")
    message = str(event.get("message") or f"the trigger reported {name}")
    found = getattr(omnisend_exceptions, name, None)
    cls = found if isinstance(found, type) and issubclass(found, OmnisendError) else None
    if cls is None:
        return OmnisendError(f"{name} in the triggerer: {message}")
    if issubclass(cls, OmnisendAPIError):
        status = event.get("http_status")
        retry_after = event.get("retry_after")
        return cls(
            message,
            status=status if isinstance(status, int) else 0,
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        )
    if issubclass(cls, OmnisendBatchStoppedError):
        return cls(message, batch_id=str(event.get("batch_id") or ""))
    return cls(message)


class OmnisendBatchesTrigger(BaseTrigger):
    """Wait until every batch in ``batch_ids`` is ``finished`` or ``stopped``.

    :param batch_ids: Omnisend batch ids, oldest first (the order they were submitted).
    :param date_from: ``YYYY-MM-DD``, no later than the earliest submission: the ``dateFrom`` of the
        list pages (None: no date filter).
    :param omnisend_conn_id: the ``omnisend`` connection.
    :param poll_interval: seconds before polling a still-running batch again (doubles up to...).
    :param max_poll_interval: ...this many seconds.
    """

    def __init__(
        self,
        *,
        batch_ids: list[str],
        date_from: str | None = None,
        omnisend_conn_id: str = "omnisend_default",
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if isinstance(batch_ids, str) or not all(isinstance(b, str) and b for b in batch_ids):
            raise OmnisendConfigError(
                f"OmnisendBatchesTrigger: batch_ids must be a list of batch id strings, got {batch_ids!r}"
            )
        self.batch_ids = list(batch_ids)
        if date_from is not None and not isinstance(date_from, str):
            raise OmnisendConfigError(
                f"OmnisendBatchesTrigger: date_from must be 'YYYY-MM-DD' or None, got {date_from!r}"
            )
        self.date_from = date_from
        self.omnisend_conn_id = omnisend_conn_id
        self.poll_interval, self.max_poll_interval = check_intervals(
            poll_interval, max_poll_interval, "OmnisendBatchesTrigger"
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "batch_ids": list(self.batch_ids),
                "date_from": self.date_from,
                "omnisend_conn_id": self.omnisend_conn_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
            },
        )

    def _hook(self) -> OmnisendAsyncHook:
        return OmnisendAsyncHook(self.omnisend_conn_id)

    async def _find(
        self, hook: OmnisendAsyncHook, rounds: SharedRounds, ids: list[str]
    ) -> tuple[dict[str, dict[str, Any]], int]:
        """``find_batches`` for a shared round; when another poller's batch is gone (404), this
        trigger's own batches only."""
        try:
            return await hook.find_batches(ids, self.date_from)
        except OmnisendNotFoundError:
            own = rounds.own(ids)
            if own == ids:
                raise
            return await hook.find_batches(own, self.date_from)

    async def _wait(self, hook: OmnisendAsyncHook, poller: BatchPoller) -> None:
        """Poll rounds over the brand's shared listing (``_shared_listing``) until no batch is pending."""
        settings = await hook.get_settings()
        assert hook._secret is not None
        rounds = SharedRounds(poller, settings, hook._secret)
        await asyncio.sleep(rounds.first_wait(self.date_from))
        while poller.pending:
            plan = rounds.plan(self.date_from)
            if plan.fetch:
                try:
                    found, requests = await self._find(hook, rounds, plan.fetch)
                except BaseException:
                    rounds.release()
                    raise
                wait = rounds.fetched(found, requests)[1]
            else:
                wait = rounds.shared()[1]
            if poller.pending:
                self.log.debug("%d batch(es) still running; next poll in %.1fs", len(poller.pending), wait)
                await asyncio.sleep(wait)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poller = BatchPoller(
            self.batch_ids, poll_interval=self.poll_interval, max_poll_interval=self.max_poll_interval
        )
        payload: dict[str, Any]
        try:
            hook = self._hook()
            await self._wait(hook, poller)
            payload = {"status": "done", "batches": poller.summaries, "polls": poller.polls}
        except Exception as exc:  # one event either way: the worker decides (typed) what it means
            self.log.warning("Waiting for Omnisend batches failed: %s: %s", type(exc).__name__, exc)
            payload = {**error_event(exc), "polls": poller.polls}
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
