"""Batch receipts: validation of the model, round trips through staging (local and remote), listing,
unreadable receipts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.operators.receipts import BatchReceipt, PartitionReceipts, SendingRun

if TYPE_CHECKING:
    from airflow_omnisend.staging import PartitionStaging

BODY = "ab" * 32
OTHER = "cd" * 32


def receipt(**changes: Any) -> BatchReceipt:
    values: dict[str, Any] = {
        "body_id": BODY,
        "shard": 2,
        "batch_id": "5f92cbf10cf217478ba93561",
        "status": "submitted",
        "submitted_at": "2026-03-02T10:00:00Z",
        "items": 100,
    }
    values.update(changes)
    return BatchReceipt(**values)


def test_receipt_round_trip(staging: PartitionStaging) -> None:
    receipts = PartitionReceipts(staging)
    assert receipts.read(BODY) is None
    assert receipts.all() == []
    submitted = receipt()
    path = receipts.write(submitted)
    assert path == staging.receipt_path(BODY)
    assert receipts.read(BODY) == submitted
    finished = submitted.evolve(
        status="finished",
        finished_at="2026-03-02T10:01:30.5+00:00",
        accepted=97,
        duplicates=4,
        retried_items=3,
        dead_lettered=3,
        attempts=2,
        retry_batch_ids=["5f92cbf10cf217478ba93562"],
    )
    receipts.write(finished)
    assert receipts.read(BODY) == finished
    assert finished.retry_batch_ids == ("5f92cbf10cf217478ba93562",)
    assert BatchReceipt.from_dict(json.loads(json.dumps(finished.to_dict()))) == finished
    assert finished.to_dict()["retry_batch_ids"] == ["5f92cbf10cf217478ba93562"]
    receipts.write(receipt(body_id=OTHER, shard=0))
    assert [r.body_id for r in receipts.all()] == [OTHER, BODY]  # by shard
    assert receipts.finished_body_ids() == {BODY}


def test_receipts_ignore_temporary_and_foreign_files(staging: PartitionStaging) -> None:
    receipts = PartitionReceipts(staging)
    receipts.write(receipt())
    folder = Path(staging.receipts_dir.path)
    (folder / f".{OTHER}.json.0123456789ab.tmp").write_text("{")
    (folder / "notes.txt").write_text("hello")
    assert receipts.all() == [receipt()]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "done"}, "status must be one of submitted, finished, stopped, got 'done'"),
        ({"status": "finished"}, "finished_at must be an ISO-8601 time with a zone"),
        ({"finished_at": "2026-03-02T10:00:00Z"}, "finished_at must be None while the status is 'submitted'"),
        ({"submitted_at": "2026-03-02 10:00"}, "submitted_at must be an ISO-8601 time with a zone"),
        ({"body_id": "abc"}, "body_id must be the body's sha256"),
        ({"batch_id": ""}, "batch_id must be Omnisend's batchID"),
        ({"accepted": 90, "dead_lettered": 11}, "more than the body's 100 items"),
        ({"attempts": 0}, "attempts must be >= 1"),
        ({"shard": -1}, "shard must be a count >= 0"),
        ({"duplicates": -2}, "duplicates must be a count >= 0"),
    ],
)
def test_receipts_are_validated(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(OmnisendConfigError, match=message):
        receipt(**changes)


def test_stopped_receipt_is_final() -> None:
    stopped = receipt(status="stopped", finished_at="2026-03-02T10:05:00Z")
    assert stopped.is_final
    assert not receipt().is_final


def test_unreadable_receipt_says_what_to_do(staging: PartitionStaging) -> None:
    receipts = PartitionReceipts(staging)
    staging.write_bytes(staging.receipt_path(BODY), b'{"body_id": "nope"}')
    with pytest.raises(
        OmnisendInputError, match=r"is unreadable .*delete the file to let the body be sent again"
    ):
        receipts.read(BODY)
    with pytest.raises(OmnisendInputError, match="unknown fields \\['colour'\\]"):
        BatchReceipt.from_dict({**receipt().to_dict(), "colour": "red"})


def test_remote_receipts(remote: PartitionStaging) -> None:
    receipts = PartitionReceipts(remote)
    receipts.write(receipt())
    assert receipts.read(BODY) == receipt()
    assert receipts.all() == [receipt()]


def test_a_receipt_names_the_run_that_submitted_its_body(staging: PartitionStaging) -> None:
    first_try = SendingRun("scheduled__2024-03-10T00:00:00+00:00", clear_number=0, try_number=1)
    PartitionReceipts(staging, run=first_try).write(receipt())
    written = PartitionReceipts(staging).read(BODY)
    assert written is not None
    assert (written.run_id, written.clear_number, written.try_number) == (first_try.run_id, 0, 1)
    assert written.sending_run == first_try
    assert first_try.same_run(written)

    # a later try of a rerun reconnects to the batch and finishes it: the submitting run stays the sender
    rerun = SendingRun(first_try.run_id, clear_number=1, try_number=2)
    finished = written.evolve(status="finished", finished_at="2026-03-02T10:01:00Z", accepted=100)
    PartitionReceipts(staging, run=rerun).write(finished)
    again = PartitionReceipts(staging).read(BODY)
    assert again is not None
    assert again.sending_run == first_try
    assert not rerun.same_run(again)
    assert SendingRun(first_try.run_id, 0, try_number=3).same_run(again)  # a task's retry: same run
    assert rerun.describe() == f"{first_try.run_id}, clear 1"

    follow = receipt(body_id=OTHER, root_body_id=BODY)
    PartitionReceipts(staging, run=rerun).write_followup(follow, 1)
    read_follow = PartitionReceipts(staging).read_followup(BODY, 1)
    assert read_follow is not None
    assert read_follow.sending_run == rerun


def test_receipts_written_before_they_named_a_run_still_read(staging: PartitionStaging) -> None:
    old = {k: v for k, v in receipt().to_dict().items() if k not in ("run_id", "clear_number", "try_number")}
    staging.write_json(staging.receipt_path(BODY), old)
    read = PartitionReceipts(staging).read(BODY)
    assert read is not None
    assert read.sending_run is None
    assert not SendingRun("manual__2026-12-01T22:17:31+00:00", 0, 1).same_run(read)


def test_outside_a_task_there_is_no_current_run(staging: PartitionStaging) -> None:
    assert SendingRun.current() is None
    assert SendingRun.from_context({}) is None
    PartitionReceipts(staging).write(receipt())
    written = PartitionReceipts(staging).read(BODY)
    assert written is not None
    assert written.run_id is None
    with pytest.raises(OmnisendConfigError, match="try_number must be a count"):
        receipt(run_id="r", try_number=-1)
