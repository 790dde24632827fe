"""What the browser tests share: one deployment whose store has a small history a person can look at -
two days sent, one blocked by an enabled automation, one failed (the emulator refuses its batches) -
a logged-in headless Chromium, and where the pages are.

Made once per test module (module-scoped fixtures), so each module pays for one deployment.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from e2e_deployment import (
    REPO,
    E2EWorld,
    api_key,
    dag_id,
    diagnosed,
    e2e_world,
    emulator_config,
    local_day_window,
    omnisend_conn_id,
    store_entry,
)

from airflow_omnisend.testing.browser import airflow_login
from airflow_omnisend.testing.emulator import FaultConfig, OmnisendEmulator
from airflow_omnisend.testing.local_airflow import ADMIN_USER

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

    from airflow_omnisend.testing.browser import Browser
    from airflow_omnisend.testing.local_airflow import DagRunInfo

STORE = "browser_shop"
DAG = dag_id(STORE)
SENT_DAYS = ("2024-03-04", "2024-03-05")
BLOCKED_DAY = "2024-03-06"
FAILED_DAY = "2024-03-07"
CONFIRMATION: dict[str, Any] = {
    "id": "65f0000000000000000000b1",
    "name": "Order confirmation",
    "isEnabled": True,
    "updatedAt": "2026-10-01T08:00:00Z",
    "trigger": {"condition": {"event": "placed order", "origin": "api"}},
}
RUN_TIMEOUT = 240.0


@dataclass
class BrowserWorld:
    """The deployment, its emulator, the runs of each day and the admin's password."""

    e2e: E2EWorld
    runs: dict[str, DagRunInfo]
    password: str
    #: user -> password of every user of the simple auth manager
    passwords: dict[str, str]

    @property
    def api_url(self) -> str:
        return str(self.e2e.airflow.api_url)


def _omnisend_connection(emulator: OmnisendEmulator) -> str:
    """The store's connection with a short retry budget: the refused day fails in seconds, not minutes."""
    extra = {"api_version": "v5", "timeout": 5, "retry_budget": 5}
    conn = {"conn_type": "omnisend", "host": emulator.base_url, "password": api_key(STORE), "extra": extra}
    return json.dumps(conn)


def _trigger(world: E2EWorld, day: str) -> DagRunInfo:
    """A manual run of one day through the REST call the trigger form makes (its Partition Key field)."""
    airflow = world.airflow
    made = airflow.api("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": None, "partition_key": day})
    run_id = str(made["dag_run_id"])
    runs: list[DagRunInfo] = airflow.wait_for_runs(
        DAG, count=1, predicate=lambda r: r.run_id == run_id, timeout=RUN_TIMEOUT
    )
    return runs[0]


def _history(world: E2EWorld, emulator: OmnisendEmulator) -> dict[str, DagRunInfo]:
    """Backfill the sent days, then run the blocked day under the automation and the failed day with
    its batches refused; returns each day's run."""
    airflow = world.airflow
    airflow.backfill(DAG, SENT_DAYS[0], SENT_DAYS[-1])
    sent = airflow.wait_for_runs(
        DAG, count=len(SENT_DAYS), predicate=lambda r: r.partition_key in SENT_DAYS, timeout=RUN_TIMEOUT
    )
    runs = {str(r.partition_key): r for r in sent}
    emulator.set_automations([CONFIRMATION])
    runs[BLOCKED_DAY] = _trigger(world, BLOCKED_DAY)
    emulator.set_automations([])
    emulator.set_faults(FaultConfig(refuse_event_windows=(local_day_window(FAILED_DAY),)))
    runs[FAILED_DAY] = _trigger(world, FAILED_DAY)
    emulator.set_faults(None)
    return runs


def _plugin_env(root: Path) -> dict[str, str]:
    """Where the installed metadata lacks the dashboard plugin's entry point (an editable install made
    before it was declared), the provider's test helper writes a dist-info declaring it, put on the
    deployment's PYTHONPATH; nothing when the metadata has it or the helper is not in this build."""
    try:
        from airflow_omnisend.testing.plugin_entry_point import entry_point_dir
    except ImportError:
        return {}
    shim = entry_point_dir(root / "entry-point")
    if shim is None:
        return {}
    paths = (str(shim), os.environ.get("PYTHONPATH", ""), str(REPO))
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@contextlib.contextmanager
def browser_world(root: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[BrowserWorld]:
    """The emulator, the deployment and its history (see the module's docstring); ``extra_env`` is
    added to the deployment's environment (e.g. another auth manager)."""
    entry = store_entry(STORE, retries=0, retry_delay_seconds=0, max_active_runs=1)
    with OmnisendEmulator(emulator_config([STORE], processing_delay=0.05)) as emulator:
        env = {
            f"AIRFLOW_CONN_{omnisend_conn_id(STORE).upper()}": _omnisend_connection(emulator),
            # the connections page's Test button (disabled by default)
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            **_plugin_env(root),
            **dict(extra_env or {}),
        }
        with e2e_world(root, emulator, [entry], extra_env=env) as world, diagnosed(world, STORE):
            runs = _history(world, emulator)
            passwords = json.loads((world.airflow.home / "simple_auth_manager_passwords.json").read_text())
            yield BrowserWorld(world, runs, str(passwords[ADMIN_USER]), passwords)


def log_in(browser: Browser, world: BrowserWorld, path: str = "/") -> None:
    """Log in as the admin through Airflow's login page and land on ``path``."""
    airflow_login(browser, world.api_url, ADMIN_USER, world.password, path)
