"""``airflow-omnisend emulator`` as a process, and the control API a running process is steered with."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
import requests
from emulator_http import Api, Remote, make_event

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_omnisend.testing.emulator import OmnisendEmulator

pytestmark = pytest.mark.integration


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            pytest.fail(f"no output within {timeout} s; stderr: {proc.stderr.read() if proc.stderr else ''}")
    return proc.stdout.readline().strip()


@pytest.fixture
def run_cli() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _start(procs: list[subprocess.Popen[str]], *args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_omnisend.cli", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    procs.append(proc)
    line = _read_line(proc, timeout=20)
    assert line.startswith("listening on http://127.0.0.1:"), line
    return proc, line.removeprefix("listening on ")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_process_serves_and_stops_cleanly_on_a_signal(
    run_cli: list[subprocess.Popen[str]], tmp_path: Path, sig: signal.Signals
) -> None:
    automations = tmp_path / "automations.json"
    automations.write_text(json.dumps([{"id": "a" * 24, "name": "Welcome", "isEnabled": True}]), "utf-8")
    db = tmp_path / "record.sqlite3"
    proc, base_url = _start(
        run_cli,
        "--api-key",
        "cli-key",
        "--automations",
        str(automations),
        "--db",
        str(db),
        "--rate-limit",
        "7",
    )
    remote = Remote(base_url, "cli-key")
    api = Api(remote, "v5")
    resp = api.post_batch([make_event(0)])
    assert resp.status_code == 201
    assert resp.headers["X-Rate-Limit-Limit"] == "7"
    (auto,) = Api(remote, "2026-03-15").get("/automations").json()["automations"]
    assert auto["name"] == "Welcome"
    stats = requests.post(f"{base_url}/__emulator__/wait-idle", timeout=10).json()
    assert stats["acceptedEvents"] == 1
    began = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - began < 5
    assert db.exists()  # a given --db is kept


def test_the_control_api_steers_a_running_process(run_cli: list[subprocess.Popen[str]]) -> None:
    _, base_url = _start(run_cli, "--fault-seed", "5", "--processing-delay", "0")
    api = Api(Remote(base_url, "emulator-api-key"), "v5")
    control = f"{base_url}/__emulator__"
    faults = requests.post(f"{control}/faults", json={"error_5xx_rate": 1.0, "seed": 5}, timeout=5)
    assert faults.status_code == 200
    assert faults.json()["error_5xx_rate"] == 1.0
    assert api.post_batch([make_event(0)]).status_code in (500, 503)
    assert requests.post(f"{control}/faults", json={}, timeout=5).json()["error_5xx_rate"] == 0.0
    assert api.post_batch([make_event(0)]).status_code == 201
    bad = requests.post(f"{control}/faults", json={"error_5xx_rate": 3}, timeout=5)
    assert bad.status_code == 400
    assert "error_5xx_rate" in bad.json()["detail"]
    unknown = requests.post(f"{control}/faults", json={"nonsense": 1}, timeout=5)
    assert "nonsense" in unknown.json()["detail"]
    window = {"refuse_event_windows": [["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"]]}
    assert requests.post(f"{control}/faults", json=window, timeout=5).status_code == 200
    assert api.post_batch([make_event(1)]).status_code == 503
    assert requests.get(f"{control}/faults", timeout=5).json()["refuse_event_windows"] == [
        ["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"]
    ]
    seeded = requests.post(
        f"{control}/automations", json={"automations": [{"name": "X", "isEnabled": False}]}, timeout=5
    )
    assert seeded.json() == {"count": 1}
    api26 = Api(Remote(base_url, "emulator-api-key"), "2026-03-15")
    assert api26.get("/automations", isEnabled="false").json()["automations"][0]["name"] == "X"
    stats = requests.post(f"{control}/wait-idle", params={"timeout": 5}, timeout=10).json()
    assert stats["acceptedEvents"] == 1
    assert stats["batches"]["finished"] == 1
    assert stats["requests"] == 4  # API requests only: 5xx, 201, 503, automations
    events = requests.get(f"{control}/events", timeout=5).json()
    assert [e["eventID"] for e in events["events"]] == [make_event(0)["eventID"]]
    assert requests.get(f"{control}/nothing", timeout=5).status_code == 404


def test_invalid_settings_exit_2_naming_the_field() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_omnisend.cli", "emulator", "--port", "0", "--fault-5xx-rate", "2"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "FaultConfig.error_5xx_rate=2.0 is invalid" in result.stderr
    assert result.stdout == ""


def test_a_busy_port_exits_1(emu: OmnisendEmulator) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_omnisend.cli", "emulator", "--port", str(emu.port)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "cannot start" in result.stderr


def test_the_emulator_modules_import_no_airflow() -> None:
    code = (
        "import sys, time; t = time.perf_counter();"
        "import airflow_omnisend.testing.emulator, airflow_omnisend.testing.emulator.cli,"
        " airflow_omnisend.testing.pytest_plugin, airflow_omnisend.cli;"
        "loaded = [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')];"
        "assert not loaded, loaded[:5];"
        "print(time.perf_counter() - t)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 1.0


def test_a_process_killed_after_a_201_serves_that_batch_when_restarted_on_its_record(
    run_cli: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    record = str(tmp_path / "record.sqlite3")
    # a long processing delay: the batch is still pending when the process dies
    first, base_url = _start(run_cli, "--record", record, "--processing-delay", "600")
    resp = Api(Remote(base_url, "emulator-api-key"), "v5").post_batch([make_event(0), make_event(1)])
    assert resp.status_code == 201
    batch_id = resp.json()["batchID"]
    first.kill()  # SIGKILL: nothing runs after the 201 but what ran before it
    first.wait(timeout=10)
    _, base_url = _start(run_cli, "--record", record, "--processing-delay", "0")
    api = Api(Remote(base_url, "emulator-api-key"), "v5")
    requests.post(f"{base_url}/__emulator__/wait-idle", params={"timeout": 10}, timeout=15)
    batch = api.get(f"/batches/{batch_id}").json()
    assert (batch["status"], batch["finishedCount"], batch["errorsCount"]) == ("finished", 2, 0)
    listed = api.get("/batches", endpoint="events").json()["batches"]
    assert [b["batchID"] for b in listed] == [batch_id]
    events = requests.get(f"{base_url}/__emulator__/events", timeout=5).json()
    assert sorted(e["eventID"] for e in events["events"]) == sorted(make_event(i)["eventID"] for i in (0, 1))


def test_keys_revoked_through_the_control_api_stay_revoked_after_a_restart(
    run_cli: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    record = str(tmp_path / "record.sqlite3")
    first, base_url = _start(run_cli, "--record", record, "--extra-key", "store-b-key")
    control = f"{base_url}/__emulator__/keys"
    changed = requests.post(control, json={"revoke": ["store-b-key"], "grant": ["store-b-new"]}, timeout=5)
    assert changed.status_code == 200
    assert (changed.json()["revoked"], changed.json()["granted"]) == (1, 1)
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=10)
    _, base_url = _start(run_cli, "--record", record, "--extra-key", "store-b-key")
    assert Api(Remote(base_url, "store-b-key"), "v5").post_batch([make_event(0)]).status_code == 401
    assert Api(Remote(base_url, "store-b-new"), "v5").post_batch([make_event(0)]).status_code == 201
    assert Api(Remote(base_url, "emulator-api-key"), "v5").post_batch([make_event(1)]).status_code == 201
    bad = requests.post(f"{base_url}/__emulator__/keys", json={"revoke": "store-b-key"}, timeout=5)
    assert bad.status_code == 400
    assert "revoke" in bad.json()["detail"]
