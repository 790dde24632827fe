"""The send state machine of one shard, kept apart from the operator so it can be driven (and tested)
by the sync poll loop, by ``execute_complete`` after a deferral, and by a resumed retry alike.

Its only durable state is the staging receipts (plus the task state store as a fast path for batch
ids); every call rebuilds the picture from them, so a worker may die anywhere and the next attempt
carries on. Per planned ("root") body, in the shard's order:

* receipt ``finished`` -> nothing to do, ever (body ids are content hashes, so a rerun of the
  partition that plans the same bodies skips them too);
* receipt ``submitted`` -> its current batch is waited for and reconciled (never submitted again);
* no receipt -> submitted, unless it continues an order split over bodies (``follows``) whose earlier
  body is not finished yet. The batchID is written to the task state store and a ``submitted``
  receipt *before* anything waits on it.

Reconciling an ended batch matches its items to the body's events by ``(eventID, eventTime)``: an
item succeeded when its responseCode is 2xx or Omnisend listed it under ``responses``; a 408/429/5xx
item, or an event missing from a stopped batch, is sent again in a follow-up body (round 1, 2, ... up
to ``max_item_retry_rounds``); anything else is dead-lettered with Omnisend's reason. A root receipt
becomes ``finished`` only when each of its events is accepted or dead-lettered.

Commit order of a round (what makes a crash at any point safe): dead letters of the round (rewritten
whole: lines of earlier rounds kept, this round's replaced), then the follow-up body file, its
submission, its batchID (task state, follow-up receipt), and last the root receipt, which names the
follow-up's batch and adds the round's counts. A crash before that last write redoes the round: same
verdicts, same follow-up bytes, and the follow-up receipt (named by root and round) turns the
resubmission into a reconnection.

The one window no client can close: a worker killed between Omnisend accepting a POST and the batchID
reaching the task state store resubmits that body on retry. Omnisend de-duplicates historical events
on eventID + eventTime, so that costs a request, not a duplicate event.

A task whose Airflow supervisor was killed while the task itself lives on stops before its next POST
(``_supervisor_watch``); a POST it had already made still gets its receipt (staging needs no
supervisor), so the retry reconnects to that batch instead of racing the orphan with a second POST.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from airflow_omnisend.events.body_format import decode_body, encode_body
from airflow_omnisend.exceptions import (
    OmnisendAPIError,
    OmnisendError,
    OmnisendInputError,
    OmnisendPayloadTooLargeError,
    OmnisendResponseLostError,
    OmnisendValidationError,
)
from airflow_omnisend.faultpoints import faultpoint
from airflow_omnisend.hooks._responses import counters_say_clean, item_succeeded
from airflow_omnisend.operators._supervisor_watch import SupervisorWatch
from airflow_omnisend.operators.receipts import BatchReceipt, PartitionReceipts
from airflow_omnisend.progress import ProgressLog
from airflow_omnisend.staging import utc_timestamp

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from airflow_omnisend.events.chunk_plan import BodyPlan, ShardPlan
    from airflow_omnisend.hooks.omnisend import OmnisendHook
    from airflow_omnisend.staging import PartitionStaging

log = logging.getLogger(__name__)

#: task state store keys (scoped by Airflow to dag/run/task/map_index); renaming them breaks resumes
ROOT_KEY = "omnisend_batch:{body_id}"
FOLLOWUP_KEY = "omnisend_followup:{body_id}:{round}"
#: Omnisend keeps batches about 7 days: a batchID older than that cannot be reconnected to anyway
STATE_RETENTION = timedelta(days=7)


@dataclass
class SendStats:
    """Counters of one task try (carried through deferrals in the trigger's ``next_kwargs``)."""

    bodies_skipped: int = 0
    batches_submitted: int = 0
    events_sent: int = 0
    requests: int = 0

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SendStats:
        data = data or {}
        return cls(**{f.name: int(data.get(f.name, 0)) for f in fields(cls)})


@dataclass(frozen=True)
class SendSettings:
    max_item_retry_rounds: int = 3
    max_lost_response_resubmits: int = 3
    #: read every ended batch's items, even when its counters say all of them finished without error
    strict_reconciliation: bool = False


@dataclass(frozen=True)
class BatchOutcome:
    """A batch that ended: its status, its counters (``totalCount``, ``finishedCount``,
    ``errorsCount`` as the poll read them) and, when the poll already carried them, its items."""

    status: str
    items: list[dict[str, Any]] | None = None
    counters: Mapping[str, Any] | None = None


class TaskState:
    """``context["task_state_store"]`` when there is one; quietly nothing when there is none (a test
    calling ``execute`` directly, an Airflow without the store). Staging receipts stay the record."""

    def __init__(self, accessor: Any) -> None:
        self._accessor = accessor
        self._warned = accessor is None

    def _failed(self, what: str, exc: Exception) -> None:
        if not self._warned:
            log.warning(
                "task_state_store %s failed (%s: %s); relying on the staging receipts alone",
                what,
                type(exc).__name__,
                exc,
            )
            self._warned = True

    def get(self, key: str) -> Any:
        if self._accessor is None:
            return None
        try:
            return self._accessor.get(key)
        except Exception as exc:  # the store is a fast path; its absence must never fail a send
            self._failed("read", exc)
            return None

    def set(self, key: str, value: Any) -> None:
        if self._accessor is None:
            return
        try:
            self._accessor.set(key, value, retention=STATE_RETENTION)
        except Exception as exc:
            self._failed("write", exc)


# ---------------------------------------------------------------------------------------------------
# bodies and items


def _event_key(event: Any) -> tuple[Any, Any]:
    if not isinstance(event, dict):
        return (None, None)
    return (event.get("eventID"), event.get("eventTime"))


def body_event_keys(body: bytes) -> list[tuple[Any, Any]]:
    """``(eventID, eventTime)`` of each item of a body, in order."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OmnisendInputError(f"a staged body is not valid JSON ({exc}); re-run the plan step") from exc
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise OmnisendInputError("a staged body has no items list; re-run the plan step")
    return [_event_key(item) for item in items]


def _is_retryable_code(code: int | None) -> bool:
    return code is not None and (code in (408, 429) or code >= 500)


def item_reason(item: Mapping[str, Any]) -> str:
    """Omnisend's reason for a failed item: its problem detail and field errors, in one line."""
    code = item.get("responseCode")
    response = item.get("response")
    problem: dict[str, Any]
    if isinstance(response, dict):
        problem = response
    elif response:
        problem = {"detail": str(response)[:500]}
    else:
        problem = {}
    label = f"Omnisend refused the event ({code if code is not None else 'no responseCode'})"
    return str(OmnisendAPIError(label, status=code if isinstance(code, int) else 0, problem=problem))


@dataclass(frozen=True)
class Verdict:
    """What became of one event of a round: ``accepted``, ``retry`` or ``dead``."""

    kind: str
    code: int | None = None
    reason: str = ""


def judge(
    keys: Sequence[tuple[Any, Any]], items: Sequence[Mapping[str, Any]], status: str, batch_id: str
) -> list[Verdict]:
    """A verdict for each event of a body from its batch's items (matched on eventID + eventTime)."""
    slots: dict[tuple[Any, Any], list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        slots[key].append(index)
    matched: list[Mapping[str, Any] | None] = [None] * len(keys)
    echoed = [i for i in items if isinstance(i.get("request"), dict)]
    if not echoed and items and len(items) == len(keys):
        # no request echoed at all: Omnisend answers items in request order (the only other anchor)
        matched = [*items]
    else:
        for item in echoed:
            free = slots.get(_event_key(item["request"]))
            if free:
                matched[free.pop(0)] = item
            else:
                log.debug("batch %s: item %s matches no event of the body", batch_id, item.get("itemID"))
    verdicts = []
    for found in matched:
        if found is None:
            why = (
                f"Omnisend stopped batch {batch_id} before processing the event"
                if status == "stopped"
                else f"Omnisend reported no result for the event in batch {batch_id}"
            )
            verdicts.append(Verdict("retry", None, why))
        elif item_succeeded(found):
            verdicts.append(Verdict("accepted", found.get("responseCode")))
        else:
            raw = found.get("responseCode")
            code = raw if isinstance(raw, int) else None
            kind = "retry" if _is_retryable_code(code) else "dead"
            verdicts.append(Verdict(kind, code, item_reason(found)))
    return verdicts


def dead_letter_line(
    event: bytes, reason: str, code: int | None, batch_id: str | None, round_number: int
) -> bytes:
    return (
        b'{"event":'
        + event
        + b',"reason":'
        + orjson.dumps(reason)
        + b',"response_code":'
        + orjson.dumps(code)
        + b',"batch_id":'
        + orjson.dumps(batch_id)
        + b',"stage":"send","round":'
        + str(round_number).encode()
        + b"}\n"
    )


# ---------------------------------------------------------------------------------------------------
# the state machine


@dataclass(frozen=True)
class _Tip:
    """The batch a root body currently waits for: its own (round 0) or its latest follow-up's."""

    root: str
    round: int
    batch_id: str
    seq: int


class ShardSender:
    """Sends one shard of a partition and reconciles its batches (see the module docstring).

    :param body_file: a local copy of ``bodies/shard-NNNNN.ndjson``.
    :param resume: this is the first call of a task try: count bodies finished earlier as skipped,
        and look for batch ids in the task state store that a dead worker saved but never got into a
        receipt.
    :param watch: asked before every POST whether the task's supervisor is still alive (default: one
        that remembers this process's parent now); an orphaned task submits nothing more.
    """

    def __init__(
        self,
        *,
        hook: OmnisendHook,
        partition: PartitionStaging,
        shard: ShardPlan,
        body_file: Path,
        settings: SendSettings,
        task_state: TaskState,
        stats: SendStats,
        resume: bool,
        watch: SupervisorWatch | None = None,
    ) -> None:
        self.hook = hook
        self.watch = watch or SupervisorWatch()
        self.partition = partition
        self.receipt_files = PartitionReceipts(partition)
        self.shard = shard
        self.settings = settings
        self.task_state = task_state
        self.stats = stats
        self._file = body_file
        self._offsets = self._index_lines(body_file, len(shard.bodies))
        self._receipts: dict[str, BatchReceipt | None] = {}
        self._tips: dict[str, _Tip] = {}
        self._seq = 0
        dead_dir = partition.dead_letters_dir
        self._dead_files = {p.name for p in dead_dir.iterdir()} if dead_dir.exists() else set()
        for body in shard.bodies:
            receipt = self.receipt_files.read(body.body_id)
            if receipt is None and resume:
                receipt = self._receipt_from_task_state(body)
            self._receipts[body.body_id] = receipt
            if receipt is None:
                continue
            if receipt.status == "finished":
                if resume:
                    stats.bodies_skipped += 1
                continue
            round_number = len(receipt.retry_batch_ids)
            tip_batch = receipt.retry_batch_ids[-1] if receipt.retry_batch_ids else receipt.batch_id
            self._add_tip(body.body_id, round_number, tip_batch)
            log.info(
                "Body %s (shard %d #%d) was submitted before: reconnecting to batch %s (round %d)",
                body.body_id[:12], shard.index, body.index, tip_batch, round_number,
            )  # fmt: skip
        self._sent = sum(r is not None for r in self._receipts.values())
        budget = hook.settings.brand_budget  # ETA at the brand's pace: one request per body at best
        self._progress = ProgressLog(
            f"send {partition.store_id} {partition.day} shard {shard.index}", unit="bodies",
            total=len(shard.bodies), pace=budget.requests_per_window / budget.window, done_before=self._sent,
        )  # fmt: skip

    # -- reading the shard ---------------------------------------------------------------------------

    @staticmethod
    def _index_lines(path: Path, expected: int) -> list[tuple[int, int]]:
        offsets: list[tuple[int, int]] = []
        with open(path, "rb") as src:
            position = 0
            for line in src:
                content = line.rstrip(b"\r\n")
                if content:
                    offsets.append((position, len(content)))
                position += len(line)
        if len(offsets) != expected:
            raise OmnisendInputError(
                f"{path.name} holds {len(offsets)} bodies but plan.json lists {expected}; the plan and "
                "its bodies are out of step - re-run the plan step"
            )
        return offsets

    def _root_body(self, body: BodyPlan) -> bytes:
        offset, length = self._offsets[body.index]
        with open(self._file, "rb") as src:
            src.seek(offset)
            data = src.read(length)
        if hashlib.sha256(data).hexdigest() != body.body_id:
            raise OmnisendInputError(
                f"body #{body.index} of shard {self.shard.index} does not match its id in plan.json "
                f"({body.body_id[:12]}...); the staged bodies changed after planning - re-run the plan step"
            )
        return data

    def _plan(self, body_id: str) -> BodyPlan:
        for body in self.shard.bodies:
            if body.body_id == body_id:
                return body
        raise OmnisendInputError(f"body {body_id[:12]} is not in shard {self.shard.index}")

    def _round_body(self, root: str, round_number: int) -> bytes:
        if round_number == 0:
            return self._root_body(self._plan(root))
        path = self.partition.followup_body_path(root, round_number)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise OmnisendInputError(
                f"{path} is missing although round {round_number} of body {root[:12]} was submitted; "
                "staging lost a file"
            ) from None

    # -- bookkeeping ---------------------------------------------------------------------------------

    def _add_tip(self, root: str, round_number: int, batch_id: str) -> None:
        self._seq += 1
        self._tips[batch_id] = _Tip(root, round_number, batch_id, self._seq)

    def earliest_submission(self) -> str | None:
        """The UTC date (``YYYY-MM-DD``) of the earliest submission still waited for, one day early
        (Omnisend's ``dateFrom`` zone is not documented): the ``dateFrom`` of a bulk poll."""
        times = []
        for tip in self._tips.values():
            receipt = self._receipts.get(tip.root)
            if receipt is not None and receipt.submitted_at:
                times.append(receipt.submitted_at[:10])
        if not times:
            return None
        try:
            day = date.fromisoformat(min(times))
        except ValueError:
            return None
        return (day - timedelta(days=1)).isoformat()

    def outstanding(self) -> list[str]:
        """Batch ids still to wait for, oldest first."""
        return [t.batch_id for t in sorted(self._tips.values(), key=lambda t: t.seq)]

    def _receipt_from_task_state(self, body: BodyPlan) -> BatchReceipt | None:
        saved = self.task_state.get(ROOT_KEY.format(body_id=body.body_id))
        if not isinstance(saved, dict) or not isinstance(saved.get("batch_id"), str):
            return None
        receipt = BatchReceipt(
            body_id=body.body_id,
            shard=self.shard.index,
            batch_id=str(saved["batch_id"]),
            status="submitted",
            submitted_at=str(saved.get("submitted_at") or utc_timestamp()),
            items=body.items,
            attempts=max(1, int(saved.get("attempts") or 1)),
        )
        self.receipt_files.write(receipt)
        log.info(
            "Body %s: no receipt, but the task state store holds batch %s from an earlier try; "
            "reconnecting instead of submitting again",
            body.body_id[:12],
            receipt.batch_id,
        )
        return receipt

    def _finished(self, body_id: str) -> bool:
        if body_id not in self._receipts:
            self._receipts[body_id] = self.receipt_files.read(body_id)
        receipt = self._receipts[body_id]
        return receipt is not None and receipt.status == "finished"

    # -- submitting ----------------------------------------------------------------------------------

    def _post(self, body: bytes, items: int, what: str) -> tuple[str, int]:
        """POST a body; on a lost response POST the same bytes again (Omnisend de-duplicates). Returns
        ``(batch_id, attempts)``."""
        attempts = 0
        while True:
            attempts += 1
            self.watch.check(what)  # an orphaned task would race its own retry
            self.stats.requests += 1
            try:
                batch_id = self.hook.submit_batch_body(body)
            except OmnisendResponseLostError as err:
                resubmits = attempts - 1
                if resubmits >= self.settings.max_lost_response_resubmits:
                    raise OmnisendResponseLostError(
                        f"{what}: the response to POST /batches was lost {attempts} times; giving up for "
                        f"this try (max_lost_response_resubmits={self.settings.max_lost_response_resubmits})."
                        " A retry submits the body again; Omnisend de-duplicates its events"
                    ) from err
                log.warning(
                    "%s: response lost (%s); submitting the same bytes again (%d of %d)",
                    what, err, resubmits + 1, self.settings.max_lost_response_resubmits,
                )  # fmt: skip
                continue
            self.stats.batches_submitted += 1
            self.stats.events_sent += items
            return batch_id, attempts

    def _refused_whole(
        self, root: str, round_number: int, lines: Sequence[bytes], err: OmnisendAPIError
    ) -> None:
        """Omnisend refused a whole body (400/413): dead-letter its events with Omnisend's reason, then
        let the error fail the task (a planning, validation or connection problem a human must fix; no
        ``finished`` receipt is written, so a rerun after the fix sends the body again)."""
        reason = f"Omnisend refused the whole batch body: {err}"
        new = [dead_letter_line(line, reason, err.status, None, round_number) for line in lines]
        self._write_dead_letters(root, round_number, new)
        log.error(
            "Omnisend refused body %s (round %d) as a whole (%s); its %d events are dead-lettered in %s "
            "and the task fails: fix the cause (plan limits, validation, connection api_version), then "
            "rerun",
            root[:12], round_number, err.status, len(lines), self.partition.send_dead_letters(root),
        )  # fmt: skip

    def _submit_root(self, body: BodyPlan) -> None:
        data = self._root_body(body)
        what = f"body {body.body_id[:12]} (shard {self.shard.index} #{body.index}, {body.items} events)"
        try:
            batch_id, attempts = self._post(data, body.items, what)
        except (OmnisendValidationError, OmnisendPayloadTooLargeError) as err:
            self._refused_whole(body.body_id, 0, decode_body(data), err)
            raise
        faultpoint("send.after_post")
        submitted_at = utc_timestamp()
        self.task_state.set(
            ROOT_KEY.format(body_id=body.body_id),
            {"batch_id": batch_id, "attempts": attempts, "submitted_at": submitted_at},
        )
        receipt = BatchReceipt(
            body_id=body.body_id,
            shard=self.shard.index,
            batch_id=batch_id,
            status="submitted",
            submitted_at=submitted_at,
            items=body.items,
            attempts=attempts,
        )
        self.receipt_files.write(receipt)
        self._receipts[body.body_id] = receipt
        self._add_tip(body.body_id, 0, batch_id)
        log.info("Submitted %s as batch %s", what, batch_id)
        self._sent += 1
        self._progress.update(self._sent)

    def _submit_followup(self, root: str, round_number: int, lines: Sequence[bytes]) -> str:
        """Send (or find, after a crash) follow-up round ``round_number`` of ``root``; its batch id."""
        body = encode_body(list(lines))
        body_id = hashlib.sha256(body).hexdigest()
        found = self.receipt_files.read_followup(root, round_number)
        if found is not None and found.body_id == body_id:
            log.info("Follow-up %d of body %s was submitted before as batch %s", round_number, root[:12],
                     found.batch_id)  # fmt: skip
            return found.batch_id
        key = FOLLOWUP_KEY.format(body_id=root, round=round_number)
        saved = self.task_state.get(key)
        attempts = 1
        if (
            isinstance(saved, dict)
            and saved.get("body_id") == body_id
            and isinstance(saved.get("batch_id"), str)
        ):
            batch_id = str(saved["batch_id"])
            attempts = max(1, int(saved.get("attempts") or 1))
            log.info("Follow-up %d of body %s: reconnecting to batch %s from the task state store",
                     round_number, root[:12], batch_id)  # fmt: skip
        else:
            self.partition.write_bytes(self.partition.followup_body_path(root, round_number), body)
            what = f"follow-up {round_number} of body {root[:12]} ({len(lines)} events)"
            try:
                batch_id, attempts = self._post(body, len(lines), what)
            except (OmnisendValidationError, OmnisendPayloadTooLargeError) as err:
                self._refused_whole(root, round_number, lines, err)
                raise
            self.task_state.set(key, {"batch_id": batch_id, "body_id": body_id, "attempts": attempts})
            log.info("Submitted %s as batch %s", what, batch_id)
        receipt = BatchReceipt(
            body_id=body_id,
            shard=self.shard.index,
            batch_id=batch_id,
            status="submitted",
            submitted_at=utc_timestamp(),
            items=len(lines),
            attempts=attempts,
            root_body_id=root,
        )
        self.receipt_files.write_followup(receipt, round_number)
        return batch_id

    def _submit_ready(self) -> None:
        for body in self.shard.bodies:
            if self._receipts.get(body.body_id) is not None:
                continue
            if body.follows is not None and not self._finished(body.follows):
                continue  # the earlier part of a split order must be finished first
            self._submit_root(body)

    # -- reconciling ---------------------------------------------------------------------------------

    def _write_dead_letters(self, root: str, round_number: int, new: Sequence[bytes]) -> None:
        """Rewrite the body's dead letters: lines of earlier rounds, then ``new`` (this round's)."""
        path = self.partition.send_dead_letters(root)
        kept: list[bytes] = []
        if path.name in self._dead_files:
            try:
                existing = path.read_bytes()
            except FileNotFoundError:
                existing = b""
            for line in existing.splitlines():
                if line.strip() and orjson.loads(line).get("round", 0) < round_number:
                    kept.append(line + b"\n")
        if not kept and not new:
            if path.name in self._dead_files:
                path.unlink()
                self._dead_files.discard(path.name)
            return
        self.partition.write_bytes(path, b"".join([*kept, *new]))
        self._dead_files.add(path.name)

    def _verdicts(
        self, keys: Sequence[tuple[Any, Any]], outcome: BatchOutcome, batch_id: str
    ) -> list[Verdict]:
        """Each event's verdict: from the counters alone when they prove every item finished without
        error (bulk mode), else from the batch's items (read now unless the poll carried them)."""
        counters = {"status": outcome.status, **(outcome.counters or {})}
        if (
            outcome.items is None
            and not self.settings.strict_reconciliation
            and counters_say_clean(counters, len(keys))
        ):
            return [Verdict("accepted", None)] * len(keys)
        items = outcome.items
        if items is None:
            self.stats.requests += 1
            items = self.hook.get_batch_items(batch_id)
        return judge(keys, items, outcome.status, batch_id)

    def _reconcile(self, tip: _Tip, outcome: BatchOutcome) -> None:
        root, round_number, batch_id = tip.root, tip.round, tip.batch_id
        receipt = self._receipts[root]
        assert receipt is not None
        body = self._round_body(root, round_number)
        keys = body_event_keys(body)
        verdicts = self._verdicts(keys, outcome, batch_id)
        rounds = self.settings.max_item_retry_rounds
        accepted = sum(v.kind == "accepted" for v in verdicts)
        retry = [i for i, v in enumerate(verdicts) if v.kind == "retry"]
        give_up = bool(retry) and round_number >= rounds
        dead = [i for i, v in enumerate(verdicts) if v.kind == "dead" or (give_up and v.kind == "retry")]
        lines = decode_body(body) if (dead or (retry and not give_up)) else []
        if lines and len(lines) != len(keys):
            raise OmnisendInputError(
                f"body {root[:12]} round {round_number}: {len(lines)} items by bytes but {len(keys)} by JSON"
            )
        new_dead = []
        for i in dead:
            verdict = verdicts[i]
            reason = verdict.reason
            if verdict.kind == "retry":
                reason = f"still failing after {rounds} follow-up rounds: {reason}"
            new_dead.append(dead_letter_line(lines[i], reason, verdict.code, batch_id, round_number))
        self._write_dead_letters(root, round_number, new_dead)
        if round_number > 0:
            self._close_followup(root, round_number, accepted, len(dead), 0 if give_up else len(retry))
        log.info(
            "Batch %s (body %s, round %d) %s: %d accepted, %d to retry, %d dead-lettered",
            batch_id, root[:12], round_number, outcome.status, accepted,
            0 if give_up else len(retry), len(dead),
        )  # fmt: skip
        del self._tips[batch_id]
        if retry and not give_up:
            follow_batch = self._submit_followup(root, round_number + 1, [lines[i] for i in retry])
            updated = receipt.evolve(
                accepted=receipt.accepted + accepted,
                dead_lettered=receipt.dead_lettered + len(dead),
                retried_items=receipt.retried_items + len(retry),
                retry_batch_ids=(*receipt.retry_batch_ids, follow_batch),
            )
            self._add_tip(root, round_number + 1, follow_batch)
        else:
            updated = receipt.evolve(
                status="finished",
                finished_at=utc_timestamp(),
                accepted=receipt.accepted + accepted,
                dead_lettered=receipt.dead_lettered + len(dead),
            )
            if updated.accepted + updated.dead_lettered != updated.items:
                raise OmnisendError(
                    f"sender bug: body {root[:12]} would finish with {updated.accepted} accepted + "
                    f"{updated.dead_lettered} dead-lettered of {updated.items} events; please report it"
                )
        self.receipt_files.write(updated)
        self._receipts[root] = updated

    def _close_followup(self, root: str, round_number: int, accepted: int, dead: int, retried: int) -> None:
        found = self.receipt_files.read_followup(root, round_number)
        if found is None or found.status == "finished":
            return
        self.receipt_files.write_followup(
            found.evolve(
                status="finished",
                finished_at=utc_timestamp(),
                accepted=accepted,
                dead_lettered=dead,
                retried_items=retried,
            ),
            round_number,
        )

    # -- the step ------------------------------------------------------------------------------------

    def advance(self, ended: Mapping[str, BatchOutcome] | None = None) -> list[str]:
        """Reconcile the batches in ``ended`` that are current, submit every body that may go now, and
        return the batch ids still to wait for (oldest first; empty when the shard is done)."""
        for batch_id, outcome in (ended or {}).items():
            tip = self._tips.get(batch_id)
            if tip is None:
                log.debug(
                    "batch %s is not awaited by shard %d (already reconciled)", batch_id, self.shard.index
                )
                continue
            self._reconcile(tip, outcome)
        self._submit_ready()
        return self.outstanding()

    def is_done(self) -> bool:
        return (
            all(r is not None and r.status == "finished" for r in self._receipts.values()) and not self._tips
        )

    def manifest(self) -> dict[str, int]:
        """The task's small XCom return value: counts only, never event data."""
        receipts = [self._receipts.get(b.body_id) for b in self.shard.bodies]
        return {
            "shard": self.shard.index,
            "bodies": len(self.shard.bodies),
            "bodies_skipped": self.stats.bodies_skipped,
            "batches_submitted": self.stats.batches_submitted,
            "events_sent": self.stats.events_sent,
            "accepted": sum(r.accepted for r in receipts if r is not None),
            "dead_lettered": sum(r.dead_lettered for r in receipts if r is not None),
            "retried_items": sum(r.retried_items for r in receipts if r is not None),
            "requests": self.stats.requests,
        }
