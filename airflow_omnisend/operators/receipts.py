"""Batch receipts: the sender's crash-safe record of what happened to each planned body.

A receipt is written right after a body is submitted (``submitted``, with Omnisend's batchID) and again
when its batch is done (``finished`` or ``stopped``). It is the only durable state of the send step
(``_shard_sender``) and what the report counts. Receipts live in the partition's staging folder,
``receipts/<body sha256>.json`` and ``receipts/followups/<body>-r<N>.json`` (paths:
:class:`~airflow_omnisend.staging.PartitionStaging`); :class:`PartitionReceipts` reads and writes them.

Each receipt names the run that submitted its body (:class:`SendingRun`: the DAG run's id, its
``clear_number`` - Airflow adds one each time the run is cleared, so a rerun is a new attempt - and the
send task's try), so the report can tell what this run sent from what earlier runs did. Receipts written
before that field existed name no run and count as earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from airflow_omnisend.checks import check_int
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.staging import is_body_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import Context, ObjectStoragePath

    from airflow_omnisend.staging import PartitionStaging

__all__ = ["RECEIPT_STATUSES", "BatchReceipt", "PartitionReceipts", "SendingRun"]

RECEIPT_STATUSES: Final = ("submitted", "finished", "stopped")
_FINAL_STATUSES: Final = frozenset({"finished", "stopped"})
_COUNTS: Final = ("items", "accepted", "retried_items", "dead_lettered")


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise OmnisendConfigError(f"BatchReceipt.{name} must be a count >= 0, got {value!r}")


def _check_timestamp(name: str, value: object) -> None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise OmnisendConfigError(
            f"BatchReceipt.{name} must be an ISO-8601 time with a zone, got {value!r}; use utc_timestamp()"
        )


@dataclass(frozen=True)
class SendingRun:
    """Which attempt of which DAG run wrote a receipt: ``run_id``, ``clear_number`` (0 until the run is
    cleared; each clear - "Clear", "Clear only failed tasks", a backfill reprocessing it - adds one) and
    the task's ``try_number``. "This run" is the same ``run_id`` and ``clear_number``: a task's own retry
    is still this run, a rerun is not."""

    run_id: str | None
    clear_number: int | None = None
    try_number: int | None = None

    @classmethod
    def from_context(cls, context: Context | Mapping[str, Any] | None) -> SendingRun | None:
        """The run of a task's context; ``None`` outside a run (an operator executed by hand)."""
        if not context:
            return None
        dag_run, ti = context.get("dag_run"), context.get("ti")
        run_id = getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None) or context.get("run_id")
        if run_id is None:
            return None
        clear = getattr(dag_run, "clear_number", None)
        tries = getattr(ti, "try_number", None)
        return cls(
            str(run_id), clear if isinstance(clear, int) else None, tries if isinstance(tries, int) else None
        )

    @classmethod
    def current(cls) -> SendingRun | None:
        """The run of the task executing now (Airflow's current context), ``None`` outside a task."""
        from airflow.sdk import get_current_context

        try:
            return cls.from_context(get_current_context())
        except RuntimeError:  # no task is running: an operator executed by hand, a script
            return None

    def same_run(self, receipt: BatchReceipt) -> bool:
        """The receipt was written by this attempt of this run (any try of its task)."""
        return receipt.run_id == self.run_id and receipt.clear_number == self.clear_number

    def describe(self) -> str:
        clear = f", clear {self.clear_number}" if self.clear_number else ""
        return f"{self.run_id}{clear}"


@dataclass(frozen=True, kw_only=True)
class BatchReceipt:
    """What happened to one planned body: written right after submitting (``submitted``, with the
    batchID) and again when the batch is done. A worker that dies after submitting finds the
    batchID here on retry and reconnects instead of submitting again; a body with a ``finished``
    receipt is never sent again, by a retry or a rerun.

    :param items: items in the body.
    :param accepted: items Omnisend accepted (including after a retry in a follow-up batch).
    :param duplicates: items Omnisend reported as already known, when it says so (else ``None``).
    :param retried_items: items resubmitted in follow-up batches (``retry_batch_ids``).
    :param dead_lettered: items given up on, written to the body's own dead-letter file
        (``dead_letters/send-<body_id>.ndjson``, :meth:`PartitionStaging.send_dead_letters`).
    :param attempts: times this body was submitted (a lost response can make it more than one).
    :param run_id: the DAG run that submitted the body, ``clear_number`` its attempt and
        ``try_number`` the send task's try (:class:`SendingRun`); ``None`` in receipts written before
        these fields existed, and when the sender ran outside a DAG run.
    :param root_body_id: set on the receipt of a *follow-up* body (the items of a planned body that
        failed for a retryable reason, sent again): the planned body it belongs to. Follow-up receipts
        live in ``receipts/followups/`` so :meth:`PartitionReceipts.all` lists planned bodies only,
        whose counts already include what their follow-ups achieved.
    """

    body_id: str
    shard: int
    batch_id: str
    status: str
    submitted_at: str
    finished_at: str | None = None
    items: int = 0
    accepted: int = 0
    duplicates: int | None = None
    retried_items: int = 0
    dead_lettered: int = 0
    attempts: int = 1
    retry_batch_ids: tuple[str, ...] = field(default=())
    root_body_id: str | None = None
    run_id: str | None = None
    clear_number: int | None = None
    try_number: int | None = None

    def __post_init__(self) -> None:
        self._check_ids()
        self._check_status_and_times()
        self._check_counts()
        object.__setattr__(self, "retry_batch_ids", tuple(self.retry_batch_ids))

    def _check_ids(self) -> None:
        if not is_body_id(self.body_id):
            raise OmnisendConfigError(
                "BatchReceipt.body_id must be the body's sha256 (64 lowercase hex digits), "
                f"got {self.body_id!r}"
            )
        if self.root_body_id is not None and not is_body_id(self.root_body_id):
            raise OmnisendConfigError(
                "BatchReceipt.root_body_id must be None or the planned body's sha256, "
                f"got {self.root_body_id!r}"
            )
        _check_count("shard", self.shard)
        if not isinstance(self.batch_id, str) or not self.batch_id:
            raise OmnisendConfigError(
                f"BatchReceipt.batch_id must be Omnisend's batchID, got {self.batch_id!r}"
            )

    def _check_status_and_times(self) -> None:
        if self.status not in RECEIPT_STATUSES:
            raise OmnisendConfigError(
                f"BatchReceipt.status must be one of {', '.join(RECEIPT_STATUSES)}, got {self.status!r}"
            )
        _check_timestamp("submitted_at", self.submitted_at)
        if self.is_final:
            _check_timestamp("finished_at", self.finished_at)
        elif self.finished_at is not None:
            raise OmnisendConfigError(
                f"BatchReceipt.finished_at must be None while the status is {self.status!r}"
            )

    def _check_counts(self) -> None:
        for name in _COUNTS:
            _check_count(name, getattr(self, name))
        for optional in ("duplicates", "clear_number", "try_number"):
            if getattr(self, optional) is not None:
                _check_count(optional, getattr(self, optional))
        check_int("BatchReceipt.attempts", self.attempts, minimum=1, fix="a body is submitted at least once")
        if self.accepted + self.dead_lettered > self.items:
            raise OmnisendConfigError(
                f"BatchReceipt for body {self.body_id[:12]}: accepted ({self.accepted}) + dead_lettered "
                f"({self.dead_lettered}) is more than the body's {self.items} items"
            )

    @property
    def is_final(self) -> bool:
        return self.status in _FINAL_STATUSES

    @property
    def sending_run(self) -> SendingRun | None:
        """The run that submitted the body, ``None`` when the receipt does not say."""
        if self.run_id is None:
            return None
        return SendingRun(self.run_id, self.clear_number, self.try_number)

    def stamped(self, run: SendingRun | None) -> BatchReceipt:
        """The receipt naming ``run`` as its sender, unless it names one already (the submitting run
        stays the sender when a later try or run reconnects to its batch)."""
        if run is None or self.run_id is not None:
            return self
        return replace(self, run_id=run.run_id, clear_number=run.clear_number, try_number=run.try_number)

    def evolve(self, **changes: Any) -> BatchReceipt:
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["retry_batch_ids"] = list(self.retry_batch_ids)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchReceipt:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise OmnisendInputError(
                f"receipt has unknown fields {sorted(unknown)}; was it written by a newer version?"
            )
        values = dict(data)
        values["retry_batch_ids"] = tuple(values.get("retry_batch_ids") or ())
        try:
            return cls(**values)
        except TypeError as exc:
            raise OmnisendInputError(f"not a batch receipt ({exc})") from exc


def _read(path: ObjectStoragePath, what: str) -> BatchReceipt | None:
    """The receipt at ``path``, ``None`` when there is none; an unreadable one says what to do."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return BatchReceipt.from_dict(orjson.loads(data))
    except (orjson.JSONDecodeError, OmnisendConfigError, OmnisendInputError) as exc:
        raise OmnisendInputError(
            f"receipt {path} is unreadable ({exc}); check its batch in Omnisend, then delete the "
            f"file to let the {what} be sent again"
        ) from exc


class PartitionReceipts:
    """The receipts of one partition, read from and written to its staging folder.

    :param run: the run that writes (default: the task running now, :meth:`SendingRun.current`; none
        outside a task); each receipt written names it unless it names its sender already.
    """

    def __init__(self, partition: PartitionStaging, run: SendingRun | None = None) -> None:
        self.partition = partition
        self.run = run if run is not None else SendingRun.current()

    def read(self, body_id: str) -> BatchReceipt | None:
        """The receipt of a planned body, or ``None`` when it was never submitted."""
        return _read(self.partition.receipt_path(body_id), "body")

    def write(self, receipt: BatchReceipt) -> ObjectStoragePath:
        path = self.partition.receipt_path(receipt.body_id)
        self.partition.write_json(path, receipt.stamped(self.run).to_dict())
        return path

    def read_followup(self, root_body_id: str, round_number: int) -> BatchReceipt | None:
        """The receipt of a follow-up round, or ``None`` when that round was never submitted."""
        return _read(self.partition.followup_receipt_path(root_body_id, round_number), "follow-up")

    def write_followup(self, receipt: BatchReceipt, round_number: int) -> ObjectStoragePath:
        if receipt.root_body_id is None:
            raise OmnisendConfigError("a follow-up receipt needs root_body_id (the planned body it retries)")
        path = self.partition.followup_receipt_path(receipt.root_body_id, round_number)
        self.partition.write_json(path, receipt.stamped(self.run).to_dict())
        return path

    def all(self) -> list[BatchReceipt]:
        """The receipts of the partition's planned bodies, ordered by shard and body_id."""
        directory = self.partition.receipts_dir
        if not directory.exists():
            return []
        found = []
        for path in directory.iterdir():
            name = path.name
            if name.endswith(".json") and is_body_id(name[:-5]):
                receipt = self.read(name[:-5])
                if receipt is not None:
                    found.append(receipt)
        return sorted(found, key=lambda r: (r.shard, r.body_id))

    def finished_body_ids(self) -> set[str]:
        return {r.body_id for r in self.all() if r.status == "finished"}
