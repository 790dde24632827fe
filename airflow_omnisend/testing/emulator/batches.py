"""Batches: created by ``POST /batches``, processed asynchronously by one worker thread, read back.

Life of a batch (``processing_delay`` = D): ``pending`` from creation until D/2, then ``inProgress``:
the worker checks every item, de-duplicates accepted events on ``(eventID, eventTime)`` and commits the
results; at D the batch ends, ``finished`` or ``stopped``. Results are published only when the batch
ends: while it runs, reads show ``finishedCount`` 0 and no items.

One worker (not a pool) processes batches in creation order, so events of one order sent in lifecycle
order across batches are also accepted in that order, and seeded per-item faults are reproducible.

A stopped batch reports only the items processed before the stop (``finishedCount`` of them, each in
``responses`` or ``errors``); the items after it are left out of both lists. ``totalCount -
finishedCount`` is how many were never processed; match them by the ``request`` echoed for the others
(e.g. ``eventID``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import orjson

from airflow_omnisend.testing.emulator.items import check_event_item
from airflow_omnisend.testing.emulator.problems import problem, validation_problem
from airflow_omnisend.testing.emulator.store import BatchRecord

if TYPE_CHECKING:
    from airflow_omnisend.testing.emulator.config import EmulatorConfig
    from airflow_omnisend.testing.emulator.faults import FaultInjector
    from airflow_omnisend.testing.emulator.store import EmulatorStore

log = logging.getLogger(__name__)

PENDING, IN_PROGRESS, FINISHED, STOPPED = "pending", "inProgress", "finished", "stopped"
ENDED = frozenset({FINISHED, STOPPED})
BATCH_STATUSES = (PENDING, IN_PROGRESS, FINISHED, STOPPED)
_object_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_PROCESS_TAG = os.urandom(5).hex()


def new_object_id() -> str:
    """A 24-hex id shaped like Omnisend's (MongoDB ObjectId: time, process, counter)."""
    return f"{int(time.time()):08x}{_PROCESS_TAG}{next(_object_counter) & 0xFFFFFF:06x}"


def utc_text(moment: datetime | None = None) -> str:
    """``2024-01-01T00:00:00.123Z``, the way the emulator writes every timestamp."""
    moment = moment or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(eq=False)
class Batch:
    """A batch's mutable state; guarded by the registry's condition lock."""

    batch_id: str
    seq: int
    api_version: str
    method: str
    endpoint: str
    origin: str
    key_fingerprint: str
    total_count: int
    created_at: str
    created_mono: float
    status: str = PENDING
    started_at: str | None = None
    ended_at: str | None = None
    finished_count: int = 0
    errors_count: int = 0
    duplicate_count: int = 0
    stop_reason: str | None = None
    items: list[Any] | None = field(default=None, repr=False)
    stop_after: int | None = None
    result: tuple[int, int, int, str | None] | None = None
    omit_counters: bool = False

    def record(self) -> BatchRecord:
        return BatchRecord(
            self.batch_id, self.api_version, self.method, self.endpoint, self.origin, self.status,
            self.total_count, self.finished_count, self.errors_count, self.duplicate_count,
            self.created_at, self.started_at, self.ended_at, self.stop_reason, self.key_fingerprint,
            self.omit_counters,
        )  # fmt: skip


def batch_json(record: BatchRecord, store: EmulatorStore | None) -> dict[str, Any]:
    """The 2026 ``Batch`` object; with ``store``, ``responses``/``errors`` carry the processed items."""
    body: dict[str, Any] = {
        "batchID": record.batch_id,
        "method": record.method,
        "endpoint": record.endpoint,
        "origin": record.origin,
        "eventID": "",
        "status": record.status,
        "totalCount": record.total_count,
        "finishedCount": record.finished_count,
        "errorsCount": record.errors_count,
        "createdAt": record.created_at,
        "startedAt": record.started_at,
        "endedAt": record.ended_at,
    }
    if record.omit_counters:
        for name in ("totalCount", "finishedCount", "errorsCount"):
            del body[name]
    if store is not None:
        responses, errors = store.batch_results(record.batch_id) if record.status in ENDED else (b"[]", b"[]")
        body["errors"] = orjson.Fragment(errors)
        body["responses"] = orjson.Fragment(responses)
    return body


class BatchRegistry:
    """Every batch of this emulator, and the worker that processes them."""

    def __init__(self, config: EmulatorConfig, store: EmulatorStore, faults: FaultInjector) -> None:
        self._config = config
        self._store = store
        self._faults = faults
        self._cond = threading.Condition()
        self._batches: dict[str, Batch] = {}
        self._order: list[Batch] = []
        self._schedule: list[tuple[float, int, str, Batch]] = []
        self._tick = itertools.count()
        self._stopping = False
        self._seen: set[tuple[str, str]] = store.accepted_keys()
        self._load()
        self._worker = threading.Thread(target=self._run, name="omnisend-emulator-batches", daemon=True)

    def _load(self) -> None:
        """Batches of a previous run on the same ``db_path``. One it left unfinished carries on as
        Omnisend's would: processed again from its kept items, or ended from its kept results; only a
        batch with neither (a record from before items were kept) is stopped."""
        with self._cond:
            for seq, rec in enumerate(self._store.batches(), start=1):
                batch = Batch(
                    rec.batch_id, seq, rec.api_version, rec.method, rec.endpoint, rec.origin,
                    rec.key_fingerprint, rec.total_count, rec.created_at, 0.0, rec.status, rec.started_at,
                    rec.ended_at, rec.finished_count, rec.errors_count, rec.duplicate_count, rec.stop_reason,
                )  # fmt: skip
                self._batches[batch.batch_id] = batch
                self._order.append(batch)
                if batch.status not in ENDED:
                    self._resume(batch)

    def _resume(self, batch: Batch) -> None:
        """Schedule a batch a previous run left unfinished (called with the lock held)."""
        now = time.monotonic()
        batch.created_mono = now
        if self._store.has_results(batch.batch_id):
            responses, errors = self._store.batch_results(batch.batch_id)
            failed = len(orjson.loads(errors))
            finished = len(orjson.loads(responses)) + failed
            reason = None if finished >= batch.total_count else "the emulator was restarted while it ran"
            batch.result = (finished, failed, self._store.batch_duplicate_count(batch.batch_id), reason)
            self._push(now, "end", batch)
            return
        items = self._store.pending_items(batch.batch_id)
        if items is not None:
            batch.status, batch.started_at, batch.items = PENDING, None, orjson.loads(items)
            self._push(now + self._config.processing_delay / 2, "start", batch)
            return
        batch.status, batch.ended_at = STOPPED, utc_text()
        batch.stop_reason = "the emulator was restarted before the batch ended"
        self._store.save_batch(batch.record(), batch.seq)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        """Stop the worker; batches not yet ended stay as they are."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout=30)

    # ---- API side ---------------------------------------------------------------------------------
    def create(
        self,
        *,
        api_version: str,
        method: str,
        endpoint: str,
        origin: str,
        items: list[Any],
        key_fingerprint: str,
    ) -> BatchRecord:
        with self._cond:
            batch = Batch(
                new_object_id(), len(self._order) + 1, api_version, method, endpoint, origin,
                key_fingerprint, len(items), utc_text(), time.monotonic(), items=items,
                stop_after=self._faults.stop_after(len(items)),
                omit_counters=self._faults.omit_counters(),
            )  # fmt: skip
            self._batches[batch.batch_id] = batch
            self._order.append(batch)
            record = batch.record()
            self._store.save_new_batch(record, batch.seq, orjson.dumps(items))
            self._push(batch.created_mono + self._config.processing_delay / 2, "start", batch)
        # committed before the 201 goes out: a batch Omnisend acknowledged survives an emulator restart
        self._store.flush()
        return record

    def get(self, batch_id: str) -> BatchRecord | None:
        with self._cond:
            batch = self._batches.get(batch_id)
            return None if batch is None else batch.record()

    def select(
        self, endpoint: str, status: str | None, date_from: date | None, date_to: date | None
    ) -> list[BatchRecord]:
        with self._cond:
            found = []
            for batch in self._order:
                day = date.fromisoformat(batch.created_at[:10])
                if batch.endpoint != endpoint or (status is not None and batch.status != status):
                    continue
                if (date_from and day < date_from) or (date_to and day > date_to):
                    continue
                found.append(batch.record())
            return found

    def wait_for(self, batch_id: str, timeout: float) -> BatchRecord:
        """Block until the batch has ended (finished or stopped); TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                batch = self._batches.get(batch_id)
                if batch is None:
                    raise KeyError(f"no batch {batch_id!r} in this emulator")
                if batch.status in ENDED:
                    return batch.record()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"batch {batch_id} still {batch.status} after {timeout} s")
                self._cond.wait(left)

    def wait_idle(self, timeout: float) -> None:
        """Block until every batch created so far has ended."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(b.status not in ENDED for b in self._order):
                left = deadline - time.monotonic()
                if left <= 0:
                    busy = sum(b.status not in ENDED for b in self._order)
                    raise TimeoutError(f"{busy} batch(es) still running after {timeout} s")
                self._cond.wait(left)

    def status_counts(self) -> dict[str, int]:
        with self._cond:
            counts = dict.fromkeys(BATCH_STATUSES, 0)
            for batch in self._order:
                counts[batch.status] += 1
            return counts

    # ---- worker -----------------------------------------------------------------------------------
    def _push(self, due: float, phase: str, batch: Batch) -> None:
        heapq.heappush(self._schedule, (due, next(self._tick), phase, batch))
        self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    if self._schedule and self._schedule[0][0] <= now:
                        break
                    self._cond.wait(self._schedule[0][0] - now if self._schedule else None)
                if self._stopping:
                    return
                _, _, phase, batch = heapq.heappop(self._schedule)
            try:
                if phase == "start":
                    self._process(batch)
                else:
                    self._end(batch)
            except Exception:  # an emulator bug must not kill the worker silently
                log.exception("emulator failed to process batch %s", batch.batch_id)
                with self._cond:
                    batch.result = (0, 0, 0, "emulator error")
                self._end(batch)

    def _process(self, batch: Batch) -> None:
        cfg = self._config
        with self._cond:
            batch.status, batch.started_at = IN_PROGRESS, utc_text()
            items, batch.items = batch.items or [], None
            self._store.save_batch(batch.record(), batch.seq)
        now = datetime.now(UTC)
        now_text = utc_text(now)
        events = batch.endpoint == "events"
        responses: list[dict[str, Any]] = []
        errors_out: list[dict[str, Any]] = []
        accepted: list[tuple[Any, ...]] = []
        duplicates: list[tuple[Any, ...]] = []
        failures = 0
        stop_reason = None
        limit = cfg.stop_error_ratio * cfg.stop_window
        for pos, item in enumerate(items):
            if batch.stop_after is not None and pos >= batch.stop_after:
                stop_reason = f"stopped by an injected fault after {pos} item(s)"
                break
            injected = self._faults.item_fails()
            refused = self._faults.item_refused()
            errors = check_event_item(item, now, cfg.future_tolerance) if events else []
            if errors:
                code, response = 400, validation_problem(f"event has {len(errors)} error(s)", errors)
            elif refused:
                code, response = 400, problem(400, "the item was refused (injected fault)")
            elif injected:
                code, response = 503, problem(503, "the item could not be processed now; retry it")
            else:
                code, response = (202 if events else 200), {}
            if code >= 300:
                failures += 1
            elif events:
                event_id = item.get("eventID") or str(uuid.uuid4())
                key = (event_id, item["eventTime"])
                props = item.get("properties")
                order_id = props.get("orderID") if isinstance(props, dict) else None
                row = (event_id, key[1], item.get("eventName"), None if order_id is None else str(order_id),
                       batch.batch_id, now_text)  # fmt: skip
                if key in self._seen:
                    duplicates.append(row)
                else:
                    self._seen.add(key)
                    accepted.append(row)
            entry = {"itemID": new_object_id(), "status": FINISHED, "responseCode": code, "request": item}
            entry["response"] = response
            (errors_out if code >= 300 else responses).append(entry)
            if pos < cfg.stop_window and failures > limit:
                stop_reason = f"too many errors: {failures} of the first {pos + 1} items failed"
                break
        self._store.save_processed_items(
            batch.batch_id, orjson.dumps(responses), orjson.dumps(errors_out), accepted, duplicates
        )
        with self._cond:
            batch.result = (len(responses) + len(errors_out), failures, len(duplicates), stop_reason)
            self._push(batch.created_mono + cfg.processing_delay, "end", batch)

    def _end(self, batch: Batch) -> None:
        with self._cond:
            finished, failed, duplicates, stop_reason = batch.result or (0, 0, 0, None)
            batch.finished_count, batch.errors_count, batch.duplicate_count = finished, failed, duplicates
            batch.status = STOPPED if stop_reason else FINISHED
            batch.stop_reason = stop_reason
            batch.ended_at = utc_text()
            if batch.started_at is None:
                batch.started_at = batch.ended_at
            self._store.save_batch(batch.record(), batch.seq)
            self._cond.notify_all()
        log.debug("batch %s %s (%d/%d items, %d failed)", batch.batch_id, batch.status, finished,
                  batch.total_count, failed)  # fmt: skip
