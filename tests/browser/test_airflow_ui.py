"""Airflow's own UI in a real browser: log in through the login page, open the store DAG's runs, read what
a person sees for the blocked day (its reason, naming the automation), and press the connections page's
Test button for an Omnisend connection made as the UI's form makes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from browser_world import (
    BLOCKED_DAY,
    CONFIRMATION,
    DAG,
    FAILED_DAY,
    SENT_DAYS,
    STORE,
    BrowserWorld,
    browser_world,
    log_in,
)
from e2e_deployment import api_key

from airflow_omnisend.testing.browser import Browser, browser_unavailable

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    with Browser.start() as started:
        yield started


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[BrowserWorld]:
    with browser_world(tmp_path_factory.mktemp("browser-ui")) as built:
        log_in(browser, built)
        yield built


def test_the_history_is_two_sent_days_one_blocked_one_failed(world: BrowserWorld) -> None:
    states = {day: run.state for day, run in world.runs.items()}
    assert states == {**dict.fromkeys(SENT_DAYS, "success"), BLOCKED_DAY: "failed", FAILED_DAY: "failed"}


def test_the_runs_page_lists_every_day_and_the_blocked_run_says_why(
    browser: Browser, world: BrowserWorld
) -> None:
    blocked = world.runs[BLOCKED_DAY]
    browser.get(f"{world.api_url}/dags/{DAG}/runs")
    for run in world.runs.values():
        browser.wait_for_text(run.run_id)

    browser.get(f"{world.api_url}/dags/{DAG}/runs/{blocked.run_id}/tasks/automation_safety_check")
    browser.wait_for_text(CONFIRMATION["name"], timeout=60)
    shown = str(browser.execute("return document.body.innerText"))
    assert BLOCKED_DAY in shown
    assert "blocked" in shown.lower()
    assert CONFIRMATION["id"] in shown


UI_CONNECTION = "omnisend_from_the_ui"


def test_the_connections_test_button_succeeds_for_a_connection_made_in_the_ui(
    browser: Browser, world: BrowserWorld
) -> None:
    """The Test button in the connections list, for what the Add Connection form posts when the user
    fills the fields the provider's form shows: host, API key and the port (the form asks for it because
    Airflow 3.3.2's Test sends a blank port as 0 and then refuses it; tests/e2e/test_connection_test_e2e.py
    pins that refusal)."""
    emulator = world.e2e.emulator
    world.e2e.airflow.api(
        "POST",
        "/api/v2/connections",
        {
            "connection_id": UI_CONNECTION,
            "conn_type": "omnisend",
            "host": emulator.base_url,
            "port": emulator.port,
            "password": api_key(STORE),
            "extra": "{}",
        },
    )
    browser.get(f"{world.api_url}/connections")
    browser.wait_for_text(UI_CONNECTION)
    browser.wait_for_element('button[aria-label="Test Connection"]').click()

    def answer() -> str | None:
        text = str(browser.execute("return document.body.innerText"))
        return text if "Test Connection Successful" in text or "Test Connection Failed" in text else None

    shown = str(browser.wait_for("a toast saying how the test went", answer))
    assert "Test Connection Successful" in shown, shown[-1500:]
