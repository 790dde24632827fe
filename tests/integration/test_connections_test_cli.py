"""``airflow connections test`` runs OmnisendHook.test_connection() in a real Airflow CLI process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_omnisend.testing.emulator import OmnisendEmulator

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _connections_test(emu: OmnisendEmulator, key: str) -> subprocess.CompletedProcess[str]:
    conn = {"conn_type": "omnisend", "host": emu.base_url, "password": key}
    env = {
        **os.environ,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_CONN_OMNISEND_CLI": json.dumps(conn),
    }
    return subprocess.run(
        [AIRFLOW, "connections", "test", "omnisend_cli"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_succeeds_with_the_right_key_using_only_gets(omnisend_emulator: OmnisendEmulator) -> None:
    result = _connections_test(omnisend_emulator, omnisend_emulator.api_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout
    log = omnisend_emulator.store.request_log()
    assert log
    assert {r.method for r in log} == {"GET"}


def test_fails_with_a_clear_message_on_a_wrong_key(omnisend_emulator: OmnisendEmulator) -> None:
    result = _connections_test(omnisend_emulator, "wrong-key-0000")
    output = result.stdout + result.stderr
    assert "Connection failed!" in output
    assert "rejected the API key (401)" in output
    assert "wrong-key-0000" not in output
