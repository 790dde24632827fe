"""The chaos run's pieces that need no Airflow: the restartable emulator (record, faults and keys survive
a restart) and the ledger read from a partition's files and the emulator's record. The whole run is
``tests/chaos/``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import requests
from emulator_http import make_event

from airflow_omnisend.hooks._responses import api_error
from airflow_omnisend.operators.safety import explain_check_error
from airflow_omnisend.testing.chaos import (
    STORE_A,
    STORE_B,
    ChaosEmulator,
    ChaosSettings,
    FailedTry,
    api_key,
    attempt_logs,
    conn_id,
    failure_cause,
    ledger,
)

if TYPE_CHECKING:
    from pathlib import Path


def _post(emulator: ChaosEmulator, key: str, events: list[dict[str, object]]) -> requests.Response:
    body = {"method": "POST", "endpoint": "events", "items": events}
    return requests.post(f"{emulator.base_url}/v5/batches", json=body, headers={"X-API-KEY": key}, timeout=30)


def test_a_restart_keeps_the_record_the_port_the_faults_and_the_keys(tmp_path: Path) -> None:
    settings = ChaosSettings(processing_delay=0.0, error_5xx_rate=0.0, slow_rate=0.0, drop_response_rate=0.0)
    with ChaosEmulator(tmp_path, settings) as emulator:
        base_url = emulator.base_url
        assert _post(emulator, api_key(STORE_A), [make_event(1), make_event(2)]).status_code == 201
        emulator.emulator.wait_until_idle()
        emulator.set_keys(revoke=(api_key(STORE_B),), grant=(api_key(STORE_B, 2),))
        emulator.set_faults(settings.base_faults())

        emulator.restart()

        assert (emulator.base_url, emulator.restarts) == (base_url, 1)
        assert {(e["eventID"], e["eventTime"]) for e in emulator.recorded_events()} == {
            (make_event(i)["eventID"], make_event(i)["eventTime"]) for i in (1, 2)
        }
        assert _post(emulator, api_key(STORE_B), [make_event(3)]).status_code == 401
        assert _post(emulator, api_key(STORE_B, 2), [make_event(3)]).status_code == 201
        assert emulator.control("GET", "faults")["seed"] == settings.seed


def test_the_ledger_counts_expected_accepted_duplicated_lost_and_rejected(tmp_path: Path) -> None:
    folder = tmp_path / STORE_A / "2024-03-04"
    folder.mkdir(parents=True)
    events = [make_event(i) for i in range(4)]
    (folder / "events.ndjson").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "valid.ndjson").write_text("".join(json.dumps(e) + "\n" for e in events[:3]))
    rejected = {"line": 4, "event": events[3], "errors": [{"code": "bad", "message": "bad"}]}
    (folder / "rejected.ndjson").write_text(json.dumps(rejected) + "\n")
    recorded = [
        {"eventID": e["eventID"], "eventTime": e["eventTime"], "batchID": "b1"}
        for e in (events[0], events[1])
    ]
    recorded.append({"eventID": "other", "eventTime": "t", "batchID": "b2"})  # another brand's batch

    led = ledger(tmp_path, STORE_A, ["2024-03-04"], recorded, {"fp-a"}, {"b1": "fp-a", "b2": "fp-b"})

    assert (led.expected, led.accepted, led.lost, led.unexpected) == (3, 2, 1, 0)
    assert (led.extracted, led.rejected, led.rejected_without_reason, led.unaccounted) == (4, 1, 0, 0)


def _messages() -> dict[str, list[str]]:
    """What the provider logs when a task fails on a refused key and on an outage (built by its own
    code, so a reworded message cannot slip past the chaos run's bookkeeping)."""
    conn = conn_id(STORE_B)
    request = "POST /v5/batches"
    auth = api_error(401, {}, request=request, conn_id=conn)
    forbidden = api_error(403, {}, request="GET /api/automations", conn_id=conn)
    outage = api_error(503, {}, request=request, attempts=4)
    return {
        "credentials": [str(auth), str(forbidden), explain_check_error(auth, conn)],
        "outage": [str(outage), explain_check_error(outage, conn)],
        "other": ["Task failed with exception: ValueError: something else", ""],
    }


def test_failure_causes_are_read_from_what_the_provider_logs() -> None:
    for cause, texts in _messages().items():
        for text in texts:
            assert failure_cause(f"[2024-03-06 10:00:00] ERROR - {text}\n") == cause, text


def test_each_try_has_its_own_cause_and_a_retry_after_the_revoked_key_shows(tmp_path: Path) -> None:
    messages = _messages()
    task_logs = tmp_path / "run_id=backfill__2024-03-05" / "task_id=send"
    task_logs.mkdir(parents=True)
    tries = {1: "killed at send.after_post", 10: messages["credentials"][0], 2: messages["outage"][0]}
    for number, text in tries.items():
        (task_logs / f"attempt={number}.log").write_text(f"[2024-03-06 10:00:00] ERROR - {text}\n", "utf-8")
    causes = tuple(failure_cause(text) for text in attempt_logs(task_logs))
    assert causes == ("other", "outage", "credentials")
    last_try = FailedTry("2024-03-05", "send", 10, causes, names_connection=True)
    assert (last_try.cause, last_try.retried_on_credentials) == ("credentials", False)
    causes = ("credentials", "outage", "credentials")
    retried = FailedTry("2024-03-05", "send", 3, causes, names_connection=True)
    assert retried.retried_on_credentials
    assert str(retried) == "2024-03-05 send try 3 (credentials, outage, credentials)"
