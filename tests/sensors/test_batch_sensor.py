"""OmnisendBatchSensor against the emulator: poke, sync execute, deferrable via the trigger."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.definitions.retry_policy import RetryAction
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_omnisend.exceptions import OmnisendAuthError, OmnisendBatchStoppedError, OmnisendNotFoundError
from airflow_omnisend.hooks.omnisend import OmnisendHook
from airflow_omnisend.sensors.batch import OmnisendBatchSensor
from airflow_omnisend.testing.emulator import EmulatorConfig, FaultConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_omnisend.triggers.batches import OmnisendBatchesTrigger

pytestmark = pytest.mark.integration
CONN = "omnisend_sensor"


def _events(count: int) -> list[dict[str, Any]]:
    start = datetime(2024, 3, 10, tzinfo=UTC)
    return [
        {
            "eventName": "placed order",
            "eventID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sensor:{n}")),
            "eventTime": (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventVersion": "v2",
            "origin": "api",
            "contact": {"email": f"s{n}@example.com"},
            "properties": {"orderID": f"o{n}"},
        }
        for n in range(count)
    ]


@pytest.fixture
def emulator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[OmnisendEmulator]:
    config = getattr(request, "param", EmulatorConfig(processing_delay=0.02))
    with OmnisendEmulator(config) as emu:
        conn = {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
        yield emu


def sensor(batch_id: str, **kwargs: Any) -> OmnisendBatchSensor:
    return OmnisendBatchSensor(task_id="wait", batch_id=batch_id, omnisend_conn_id=CONN, **kwargs)


@pytest.mark.parametrize("emulator", [EmulatorConfig(processing_delay=60)], indirect=True, ids=["slow"])
def test_poke_is_false_while_the_batch_runs(emulator: OmnisendEmulator) -> None:
    batch_id = OmnisendHook(CONN).create_batch(_events(3))
    assert sensor(batch_id).poke({}) is False


def test_poke_returns_the_summary_when_finished(emulator: OmnisendEmulator) -> None:
    batch_id = OmnisendHook(CONN).create_batch(_events(2))
    emulator.wait_for_batch(batch_id, timeout=30)
    done = sensor(batch_id).poke({})
    assert isinstance(done, PokeReturnValue)
    assert done.is_done
    assert done.xcom_value == {"status": "finished", "totalCount": 2, "finishedCount": 2, "errorsCount": 0}


def test_execute_waits_until_the_batch_has_finished(emulator: OmnisendEmulator) -> None:
    batch_id = OmnisendHook(CONN).create_batch(_events(4))
    result = sensor(batch_id, poke_interval=0.02, timeout=30).execute({})
    assert result["status"] == "finished"
    assert result["finishedCount"] == 4


@pytest.mark.parametrize(
    "emulator",
    [EmulatorConfig(processing_delay=0.02, faults=FaultConfig(stop_next_batches=1))],
    indirect=True,
    ids=["stopped"],
)
def test_a_stopped_batch_fails_unless_allowed(emulator: OmnisendEmulator) -> None:
    batch_id = OmnisendHook(CONN).create_batch(_events(6))
    emulator.wait_for_batch(batch_id, timeout=30)
    waiting = sensor(batch_id, poke_interval=0.02)
    with pytest.raises(OmnisendBatchStoppedError, match="stopped batch") as stopped:
        waiting.execute({})
    assert stopped.value.batch_id == batch_id
    assert waiting.retry_policy.evaluate(stopped.value, 1, 3).action is RetryAction.FAIL  # type: ignore[union-attr]
    allowed = sensor(batch_id, poke_interval=0.02, allow_stopped=True).execute({})
    assert allowed == {"status": "stopped", "totalCount": 6, "finishedCount": 3, "errorsCount": 0}


async def _first(trigger: OmnisendBatchesTrigger) -> dict[str, Any]:
    return dict((await anext(trigger.run())).payload)


def test_deferrable_waits_in_the_trigger(emulator: OmnisendEmulator) -> None:
    batch_id = OmnisendHook(CONN).create_batch(_events(5))
    waiting = sensor(batch_id, deferrable=True, poke_interval=0.05, timeout=120)
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute({})
    trigger = deferred.value.trigger
    assert trigger.serialize()[1]["batch_ids"] == [batch_id]
    assert deferred.value.timeout == timedelta(seconds=120)
    event = asyncio.run(_first(trigger))  # type: ignore[arg-type]
    result = sensor(batch_id, deferrable=True).execute_complete({}, event=event)
    assert result["status"] == "finished"
    assert result["totalCount"] == 5


def test_deferrable_raises_the_triggers_error_typed(emulator: OmnisendEmulator) -> None:
    waiting = sensor("000000000000000000000000", deferrable=True, poke_interval=0.05)
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute({})
    event = asyncio.run(_first(deferred.value.trigger))  # type: ignore[arg-type]
    with pytest.raises(OmnisendNotFoundError):
        waiting.execute_complete({}, event=event)


def test_a_revoked_key_fails_at_once_naming_the_connection(emulator: OmnisendEmulator) -> None:
    """Polling and deferred alike: a 401 fails the task whatever its retries (another try meets it
    again), and says which connection's key to replace."""
    batch_id = OmnisendHook(CONN).create_batch(_events(2))
    emulator.set_keys(revoke=[emulator.api_key])
    with pytest.raises(AirflowFailException) as polled:
        sensor(batch_id, poke_interval=0.02, retries=3).execute({})
    assert isinstance(polled.value, OmnisendAuthError)
    assert (polled.value.status, f"connection '{CONN}'" in str(polled.value)) == (401, True)
    waiting = sensor(batch_id, deferrable=True, poke_interval=0.05)
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute({})
    event = asyncio.run(_first(deferred.value.trigger))  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException) as triggered:
        waiting.execute_complete({}, event=event)
    assert isinstance(triggered.value, OmnisendAuthError)
    assert f"connection '{CONN}'" in str(triggered.value)


def test_templated_fields() -> None:
    assert set(OmnisendBatchSensor.template_fields) == {"batch_id", "omnisend_conn_id"}
