"""OmnisendValidateEventsOperator: events -> valid + rejected + validation.json; the reject-ratio gate."""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException
from pipeline_helpers import SHOP, SHOP_DAY, TZ, sample_shop, sqlite_connection
from send_helpers import order_events

from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError, OmnisendRejectRatioError
from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
from airflow_omnisend.operators.retry import OmnisendRetryPolicy
from airflow_omnisend.operators.validate import OmnisendValidateEventsOperator
from airflow_omnisend.staging import PartitionStaging, StagingManifest, StagingRoot

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def extracted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PartitionStaging:
    """The sample shop's day extracted into staging (303 events, 7 of them dirty)."""
    conn_id = sqlite_connection(monkeypatch, sample_shop(tmp_path))
    manifest = OmnisendExtractOrdersOperator(
        task_id="extract",
        store_id=SHOP,
        partition=SHOP_DAY,
        timezone=TZ,
        source_conn_id=conn_id,
        staging=str(tmp_path / "staging"),
    ).execute({})
    return StagingManifest.from_dict(manifest).partition


def _validate(partition: PartitionStaging, **kwargs: Any) -> dict[str, Any]:
    return OmnisendValidateEventsOperator(
        task_id="validate",
        store_id=partition.store_id,
        partition=partition.day,
        staging=partition.root.url,
        **kwargs,
    ).execute({})


def _lines(data: bytes) -> list[bytes]:
    return [line for line in data.splitlines() if line.strip()]


def test_splits_the_extracted_events_and_writes_the_summary(extracted: PartitionStaging) -> None:
    partition = extracted
    manifest = _validate(partition, max_reject_ratio=0.05)

    events = _lines(partition.events.read_bytes())
    valid = _lines(partition.valid.read_bytes())
    rejected = [orjson.loads(line) for line in _lines(partition.rejected.read_bytes())]
    assert len(valid) + len(rejected) == len(events)
    assert 0 < len(rejected) < 0.05 * len(events)
    assert set(valid) <= set(events)  # valid lines are the input lines, byte for byte
    for record in rejected:
        assert record["errors"]
        assert {"path", "message", "code"} <= set(record["errors"][0])
        assert record["event"]["properties"]["orderID"]  # a rejected event names its order
    assert manifest["files"] == {
        "valid": "valid.ndjson",
        "rejected": "rejected.ndjson",
        "validation": "validation.json",
    }
    assert manifest["counts"] == {
        "events": len(events),
        "valid": len(valid),
        "rejected": len(rejected),
        "warned": 0,
    }
    digest = hashlib.sha256(partition.events.read_bytes()).hexdigest()
    assert manifest["hashes"] == {"events": digest}

    summary = partition.read_json("validation")
    assert (summary["events"], summary["valid"], summary["rejected"]) == (
        len(events),
        len(valid),
        len(rejected),
    )
    assert summary["events_sha256"] == digest == partition.read_json("extract")["events_sha256"]
    assert summary["source"] == "events.ndjson"
    assert summary["max_reject_ratio"] == 0.05
    assert summary["reject_ratio"] == round(len(rejected) / len(events), 6)
    assert sum(summary["rejects_by_reason"].values()) >= len(rejected)
    times = sorted(orjson.loads(line)["eventTime"] for line in valid)  # all canonical UTC: text order works
    assert (summary["first_event_time"], summary["last_event_time"]) == (times[0], times[-1])
    assert summary["warned"] == 0


def test_too_many_rejects_fail_without_retry_naming_reasons_and_file(extracted: PartitionStaging) -> None:
    partition = extracted
    with pytest.raises(OmnisendRejectRatioError) as caught:
        _validate(partition, retries=3)  # default max_reject_ratio 0.01; the day has ~2% dirty events

    error = caught.value
    summary = partition.read_json("validation")
    message = str(error)
    assert f"{summary['rejected']} of {summary['events']} events" in message
    assert "more than max_reject_ratio=0.01 allows" in message
    for code, count in summary["rejects_by_reason"].items():
        assert f"{code} {count}" in message  # every reason (at most 5) with its count
    assert str(partition.rejected) in message
    # the files are there to read
    assert len(_lines(partition.rejected.read_bytes())) == summary["rejected"]
    # no retry: Airflow fails an AirflowFailException at once, and the provider's policy says FAIL too
    assert isinstance(error, AirflowFailException)
    assert OmnisendRetryPolicy().evaluate(error, try_number=1, max_tries=4).action.value == "fail"

    assert _validate(partition, max_reject_ratio="0.05")["counts"]["rejected"] == summary["rejected"]


def _event(order: int, event_time: str, **changes: Any) -> dict[str, Any]:
    event = order_events(order, random.Random(order), events=1)[0]
    event["eventTime"] = event_time
    event.update(changes)
    return event


def _ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


@pytest.mark.parametrize("form", ["path", "file_url", "object_storage_path"])
def test_events_path_validates_any_ndjson_file_into_the_partition(tmp_path: Path, form: str) -> None:
    events = [
        _event(1, "2024-03-10T23:30:00-05:00"),  # 04:30Z on the 11th: the newest, though its text sorts first
        _event(2, "2024-03-11T01:00:00Z"),
        _event(3, "2024-03-10T12:00:00.5+02:00"),  # 10:00:00.5Z: the oldest
        _event(4, "2024-03-10T12:00:00Z", eventName="viewed product"),
    ]
    del events[1]["properties"]["totalPrice"]  # valid, with a warning
    source = tmp_path / "import" / "my events.ndjson"
    source.parent.mkdir()
    source.write_bytes(_ndjson(events))
    events_path: Any = {
        "path": str(source),
        "file_url": f"file://{source}",
        "object_storage_path": ObjectStoragePath(f"file://{source}"),
    }[form]
    partition = StagingRoot(str(tmp_path / "staging")).partition("importer", "2024-03-10")

    manifest = _validate(partition, events_path=events_path, max_reject_ratio=0.5)

    assert manifest["counts"] == {"events": 4, "valid": 3, "rejected": 1, "warned": 1}
    assert not partition.events.exists()  # the partition's own events file is not needed
    assert len(_lines(partition.valid.read_bytes())) == 3
    summary = partition.read_json("validation")
    assert summary["source"].endswith("import/my events.ndjson")
    assert summary["events_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    # canonical UTC strings, as valid.ndjson holds them (issue 11 §3)
    assert summary["first_event_time"] == "2024-03-10T10:00:00.500Z"
    assert summary["last_event_time"] == "2024-03-11T04:30:00Z"
    assert summary["warned"] == 1
    assert summary["warnings_by_code"] == {"missing_total_price": 1}


def test_templated_fields_render_and_are_checked_at_run_time(extracted: PartitionStaging) -> None:
    partition = extracted
    op = OmnisendValidateEventsOperator(
        task_id="validate",
        store_id="{{ params.store }}",
        partition="{{ ds }}",
        staging="{{ params.staging }}",
        max_reject_ratio="{{ params.ratio }}",
        events_path="{{ params.events_path }}",  # renders "None": the partition's events.ndjson
    )
    assert set(op.template_fields) == {
        "store_id", "partition", "staging", "max_reject_ratio", "events_path", "extracted",
    }  # fmt: skip
    context: Any = {
        "ds": partition.day,
        "params": {"store": SHOP, "staging": partition.root.url, "ratio": 0.1, "events_path": None},
    }
    op.render_template_fields(context)
    assert (op.store_id, op.partition, op.max_reject_ratio) == (SHOP, SHOP_DAY, "0.1")
    assert op.execute(context)["counts"]["events"] > 0

    bad = OmnisendValidateEventsOperator(
        task_id="validate", store_id=SHOP, partition=SHOP_DAY, max_reject_ratio="{{ params.ratio }}"
    )
    bad.render_template_fields({"params": {"ratio": "lots"}})  # type: ignore[arg-type]
    with pytest.raises(OmnisendConfigError, match="max_reject_ratio must be a share between 0 and 1"):
        bad.execute({})  # type: ignore[arg-type]


@pytest.mark.parametrize("ratio", [-0.1, 1.5, "half", True])
def test_an_impossible_ratio_is_refused_when_the_dag_is_parsed(ratio: object) -> None:
    with pytest.raises(OmnisendConfigError, match="max_reject_ratio"):
        OmnisendValidateEventsOperator(
            task_id="validate",
            store_id=SHOP,
            partition=SHOP_DAY,
            max_reject_ratio=ratio,  # type: ignore[arg-type]
        )


def test_missing_input_names_the_step_that_writes_it(tmp_path: Path) -> None:
    partition = StagingRoot(str(tmp_path)).partition(SHOP, SHOP_DAY)
    with pytest.raises(OmnisendInputError, match="the extract step writes it"):
        _validate(partition)
    with pytest.raises(OmnisendInputError, match="does not exist"):
        _validate(partition, events_path=str(tmp_path / "nope.ndjson"))


def test_an_empty_partition_is_valid(tmp_path: Path) -> None:
    partition = StagingRoot(str(tmp_path)).partition(SHOP, SHOP_DAY)
    partition.write_bytes(partition.events, b"")
    manifest = _validate(partition, max_reject_ratio=0)
    assert manifest["counts"] == {"events": 0, "valid": 0, "rejected": 0, "warned": 0}
    summary = partition.read_json("validation")
    assert summary["first_event_time"] is None
    assert summary["reject_ratio"] == 0


def test_reads_the_events_the_extract_manifest_names(tmp_path: Path) -> None:
    """In the DAG validate reads extract's returned manifest; validation.json names the file as before."""
    written = StagingRoot(str(tmp_path / "written")).partition(SHOP, SHOP_DAY)
    written.write_bytes(written.events, b"")
    extract_manifest = {**written.manifest(files={"events": "events"}).to_dict(), "by_event_name": {}}
    manifest = OmnisendValidateEventsOperator(
        task_id="validate",
        store_id=SHOP,
        partition=SHOP_DAY,
        staging=str(tmp_path / "elsewhere"),
        extracted=extract_manifest,
    ).execute({})  # type: ignore[arg-type]
    assert StagingManifest.from_dict(manifest).partition == written
    assert written.read_json("validation")["source"] == "events.ndjson"
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("missing", "does not exist"),
        ("folder", "is a folder"),
        ("not-json", "line 1: not JSON"),
        ("no-newline", "longer than 4194304 bytes"),
        ("scheme", "nosuchscheme"),
    ],
)
def test_input_no_retry_can_fix_fails_at_once(tmp_path: Path, name: str, match: str) -> None:
    """Issue 14, item 8: an AirflowFailException ends the task before retries are counted (whatever the
    DAG's retries and retry_policy), and the message says the fix."""
    partition = StagingRoot(str(tmp_path / "staging")).partition(SHOP, SHOP_DAY)
    paths = {
        "missing": str(tmp_path / "nope.ndjson"),
        "folder": str(tmp_path),
        "not-json": str(tmp_path / "bad.ndjson"),
        "no-newline": str(tmp_path / "zeros.ndjson"),
        "scheme": "nosuchscheme://bucket/events.ndjson",
    }
    (tmp_path / "bad.ndjson").write_bytes(b"<html>not json</html>\n")
    (tmp_path / "zeros.ndjson").write_bytes(b"0" * (5 << 20))
    with pytest.raises(AirflowFailException, match=match) as raised:
        _validate(partition, events_path=paths[name])
    assert isinstance(raised.value, OmnisendInputError)
    assert "not retried" in str(raised.value)
