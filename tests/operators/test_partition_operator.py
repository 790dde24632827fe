"""The partition task: returns and pushes the run's day and options, refuses a useless
acknowledgement, and waits (deferred) until the day has settled; the store DAGs' extract does the same,
then extracts the resolved day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from airflow.sdk.exceptions import TaskDeferred
from pipeline_helpers import SHOP, SHOP_DAY, TZ, sample_shop, sqlite_connection

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators.partition import OmnisendExtractPartitionOperator, OmnisendPartitionOperator
from airflow_omnisend.staging import StagingManifest, StagingRoot

if TYPE_CHECKING:
    from pathlib import Path

VILNIUS = "Europe/Vilnius"
NEW_YORK = "America/New_York"


class _TI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _context(conf: dict[str, Any], **extra: Any) -> dict[str, Any]:
    dag_run = SimpleNamespace(
        dag_id="omnisend_orders__demo", conf=conf, run_type="manual", partition_key=None
    )
    params = {"partition": None, "dry_run": False, "acknowledge_automations": None}
    return {"dag_run": dag_run, "params": {**params, **conf}, "ti": _TI(), **extra}


def test_partition_task_returns_and_pushes_each_key() -> None:
    op = OmnisendPartitionOperator(task_id="partition", store_id="demo", timezone=VILNIUS)
    context = _context({"partition": "2024-03-10", "dry_run": True})
    result = op.execute(context)  # type: ignore[arg-type]
    assert result == {
        "partition": "2024-03-10",
        "timezone": VILNIUS,
        "start_utc": "2024-03-09T22:00:00+00:00",
        "end_utc": "2024-03-10T22:00:00+00:00",
        "source": "conf",
        "store_id": "demo",
        "dry_run": True,
        "acknowledge_automations": None,
    }
    assert context["ti"].pushed == result


def test_partition_task_refuses_a_useless_acknowledgement() -> None:
    op = OmnisendPartitionOperator(task_id="partition", store_id="demo", timezone=VILNIUS)
    with pytest.raises(OmnisendConfigError, match="acknowledge"):
        op.execute(_context({"partition": "2024-03-10", "acknowledge_automations": "yes"}))  # type: ignore[arg-type]


def test_partition_task_defers_until_the_day_has_settled() -> None:
    """A run right after local midnight waits (in the triggerer) until min_event_age has passed."""
    tz = ZoneInfo(NEW_YORK)
    now_local = datetime.now(UTC).astimezone(tz)
    yesterday = (now_local - timedelta(days=1)).date()
    ended = datetime.combine(now_local.date(), datetime.min.time(), tzinfo=tz).astimezone(UTC)
    age = datetime.now(UTC) - ended + timedelta(hours=2)  # the day ended less than `age` ago
    op = OmnisendPartitionOperator(task_id="partition", store_id="demo", timezone=NEW_YORK, min_event_age=age)
    context = _context({"partition": yesterday.isoformat()})
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)  # type: ignore[arg-type]
    assert info.value.method_name == "execute_complete"
    moment = info.value.trigger.serialize()[1]["moment"]
    assert moment == ended + age
    assert op.execute_complete(context)["partition"] == yesterday.isoformat()  # type: ignore[arg-type]


def _extract_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: Any
) -> OmnisendExtractPartitionOperator:
    conn_id = sqlite_connection(monkeypatch, sample_shop(tmp_path))
    args: dict[str, Any] = {
        "task_id": "extract",
        "store_id": SHOP,
        "timezone": TZ,
        "staging": str(tmp_path / "staging"),
        "source_conn_id": conn_id,
        **kwargs,
    }
    return OmnisendExtractPartitionOperator(**args)


def test_extract_task_resolves_pushes_then_extracts_the_run_s_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = _extract_op(tmp_path, monkeypatch)
    reason = "Order flows paused by hand for the backfill (Ann)"
    context = _context({"partition": SHOP_DAY, "dry_run": True, "acknowledge_automations": reason})
    manifest = op.execute(context)  # type: ignore[arg-type]
    pushed = context["ti"].pushed
    assert (pushed["partition"], pushed["store_id"], pushed["source"]) == (SHOP_DAY, SHOP, "conf")
    assert (pushed["dry_run"], pushed["acknowledge_automations"]) == (True, reason)
    assert "counts" not in pushed  # the manifest is the return value, the run's keys are pushed
    partition = StagingManifest.from_dict(manifest).partition
    assert partition == StagingRoot(str(tmp_path / "staging")).partition(SHOP, SHOP_DAY)
    assert manifest["counts"]["events"] > 250
    assert partition.read_json("extract")["events"] == manifest["counts"]["events"]


@pytest.mark.parametrize(
    ("conf", "kwargs", "message"),
    [
        ({"partition": "2024-03"}, {}, "names a month, but this store's partitions are days"),
        ({"partition": SHOP_DAY}, {"period": "month"}, "is not a month; this store's partitions are months"),
        ({"partition": SHOP_DAY}, {"first_day": date(2024, 3, 27)}, "is before the store's start_date"),
        ({}, {}, "this run does not name the day to process"),
        ({"partition": SHOP_DAY, "dryrun": True}, {}, "run conf has unknown key"),
        ({"partition": SHOP_DAY, "acknowledge_automations": "ok"}, {}, "acknowledge"),
    ],
)
def test_extract_task_refuses_a_bad_run_before_extracting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    conf: dict[str, Any],
    kwargs: dict[str, Any],
    message: str,
) -> None:
    op = _extract_op(tmp_path, monkeypatch, **kwargs)
    with pytest.raises(OmnisendConfigError, match=message):
        op.execute(_context(conf))  # type: ignore[arg-type]
    assert not (tmp_path / "staging").exists()


def test_extract_task_defers_until_the_day_has_settled_then_extracts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tz = ZoneInfo(TZ)
    now_local = datetime.now(UTC).astimezone(tz)
    yesterday = (now_local - timedelta(days=1)).date()
    ended = datetime.combine(now_local.date(), datetime.min.time(), tzinfo=tz).astimezone(UTC)
    age = datetime.now(UTC) - ended + timedelta(hours=2)
    op = _extract_op(tmp_path, monkeypatch, min_event_age=age)
    context = _context({"partition": yesterday.isoformat()})
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)  # type: ignore[arg-type]
    assert info.value.method_name == "execute_complete"
    assert not (tmp_path / "staging").exists()  # nothing extracted before the wait
    manifest = op.execute_complete(context)  # type: ignore[arg-type]
    assert StagingManifest.from_dict(manifest).partition.day == yesterday.isoformat()
    assert context["ti"].pushed["partition"] == yesterday.isoformat()


def test_a_conf_named_period_without_a_partition_key_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    op = OmnisendPartitionOperator(task_id="partition", store_id="demo", timezone=VILNIUS)
    op.execute(_context({"partition": "2024-03-10"}))  # type: ignore[arg-type]
    (warning,) = [
        line for line in capsys.readouterr().out.splitlines() if "[warning" in line and "named" in line
    ]
    assert "2024-03-10 is named by the run conf 'partition'" in warning
    assert "the run's note names the day" in warning
    assert "Partition Key" in warning


def test_a_conf_partition_that_agrees_with_the_key_is_an_alias(capsys: pytest.CaptureFixture[str]) -> None:
    op = OmnisendPartitionOperator(task_id="partition", store_id="demo", timezone=VILNIUS)
    context = _context({"partition": "2024-03-10"})
    context["dag_run"].partition_key = "2024-03-10"
    assert op.execute(context)["partition"] == "2024-03-10"  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "agrees with the run's partition key 2024-03-10 (the conf key is an alias)" in out
    assert "is named by the run conf" not in out
    context = _context({"partition": "2024-03-11"})
    context["dag_run"].partition_key = "2024-03-10"
    with pytest.raises(OmnisendConfigError, match="differs from this run's own partition 2024-03-10"):
        op.execute(context)  # type: ignore[arg-type]
