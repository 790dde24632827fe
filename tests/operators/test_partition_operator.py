"""The partition task: returns and pushes the run's day and options, refuses a useless
acknowledgement, and waits (deferred) until the day has settled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators.partition import OmnisendPartitionOperator

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
    from airflow.sdk.exceptions import TaskDeferred

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
