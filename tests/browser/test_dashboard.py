"""The provider's dashboard (``/omnisend/`` on the api-server) in a real browser, against the dashboard
contract: a row of numbers per store, the store's periods charted and tabled with the failed and the
blocked one marked, links that go where they say, the top rejection reasons, no email and no secret on
any page, and a request without a login refused.

The expected figures come from what the runs left (``validation.json``, ``report.json``) and what the
emulator accepted, not from the dashboard's own code. Skips when ``airflow_omnisend.dashboard`` (the
plugin's module) is not importable: the dashboard is not part of this build then.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pytest
from browser_world import (
    BLOCKED_DAY,
    DAG,
    FAILED_DAY,
    SENT_DAYS,
    STORE,
    BrowserWorld,
    browser_world,
    log_in,
)
from e2e_deployment import api_key

from airflow_omnisend.testing.browser import Browser, airflow_login, browser_unavailable
from airflow_omnisend.testing.local_airflow import ADMIN_USER

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_omnisend.testing.browser import Element

pytest.importorskip(
    "airflow_omnisend.dashboard",
    reason="airflow_omnisend.dashboard (the provider's dashboard plugin) is not importable in this build",
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.integration]

DAYS = (*SENT_DAYS, BLOCKED_DAY, FAILED_DAY)
FIELDS = ("done", "running", "failed", "blocked", "accepted", "rejected", "dead_lettered", "last_run")
OUTSIDER = "outsider"
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    with Browser.start() as started:
        yield started


def _outsider_env() -> dict[str, str]:
    """A logged-in user refused the store's DAG: the provider's test auth manager (SimpleAuthManager
    that denies every DAG to the users named), when this build has it; else no such user."""
    try:
        from airflow_omnisend.testing.dashboard_auth import DENIED_USERS_ENV
    except ImportError:
        return {}
    return {
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow_omnisend.testing.dashboard_auth.DenyingAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin,{OUTSIDER}:viewer",
        DENIED_USERS_ENV: OUTSIDER,
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[BrowserWorld]:
    with browser_world(tmp_path_factory.mktemp("browser-dashboard"), _outsider_env()) as built:
        log_in(browser, built)
        yield built


def _staged(world: BrowserWorld, day: str, name: str) -> dict[str, Any] | None:
    path = world.e2e.staging / STORE / day / name
    return json.loads(path.read_text()) if path.is_file() else None


def _number(cell: Element) -> int:
    """A count as shown (``1,234`` or ``1 234`` read as 1234)."""
    digits = re.sub(r"[\s,\u00a0\u202f]", "", cell.text)
    assert digits.isdigit(), f"not a count: {cell.text!r}"
    return int(digits)


def _get(world: BrowserWorld, url: str, token: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url if "://" in url else f"{world.api_url}{url}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _no_secret_and_no_email(world: BrowserWorld, text: str, where: str) -> None:
    assert not EMAIL.findall(text), f"{where} shows an email address: {EMAIL.findall(text)[:3]}"
    assert api_key(STORE) not in text, f"{where} shows the store's API key"
    assert world.password not in text, f"{where} shows a password"


def test_all_stores_page_shows_the_store_numbers(browser: Browser, world: BrowserWorld) -> None:
    browser.get(f"{world.api_url}/omnisend/")
    row = browser.wait_for_element(f'#stores tr[data-store="{STORE}"]')
    cells = {f: row.find(f'td[data-field="{f}"]') for f in FIELDS}
    shown = {f: _number(cells[f]) for f in FIELDS if f != "last_run"}
    reports = [_staged(world, day, "report.json") for day in SENT_DAYS]
    validations = [_staged(world, day, "validation.json") for day in DAYS]
    accepted = len(world.e2e.accepted(world.e2e.batches(STORE)))
    assert accepted == sum(int(r["events_accepted"]) for r in reports if r)
    assert shown == {
        "done": 2,
        "running": 0,
        "failed": 1,
        "blocked": 1,
        "accepted": accepted,
        "rejected": sum(int(v["rejected"]) for v in validations if v),
        "dead_lettered": sum(int(r["events_dead_lettered"]) for r in reports if r),
    }
    assert cells["last_run"].text.strip()
    link = row.find('a[data-link="store"]')
    assert STORE in link.text
    assert urlsplit(link.property("href")).path.rstrip("/") == f"/omnisend/stores/{STORE}"
    _no_secret_and_no_email(world, browser.page_source, "/omnisend/")


def test_store_page_charts_and_tables_each_period_with_its_mark(
    browser: Browser, world: BrowserWorld
) -> None:
    browser.get(f"{world.api_url}/omnisend/stores/{STORE}")
    chart = browser.wait_for_element("svg#periods-chart")
    bars = chart.find_all("g[data-period]")
    assert [g.attribute("data-period") for g in bars] == list(DAYS)  # calendar order
    marks = {g.attribute("data-period"): g.attribute("data-mark") for g in bars}
    assert marks == {**dict.fromkeys(SENT_DAYS), BLOCKED_DAY: "blocked", FAILED_DAY: "failed"}
    for bar in bars[: len(SENT_DAYS)]:
        kinds = {r.attribute("data-kind") for r in bar.find_all("rect[data-kind]")}
        assert "accepted" in kinds
        assert kinds <= {"accepted", "rejected", "dead_lettered"}

    rows = {r.attribute("data-period"): r for r in browser.find_all("#periods tr[data-period]")}
    assert list(rows) == list(DAYS)
    states = {day: row.attribute("data-state") for day, row in rows.items()}
    assert states == {**dict.fromkeys(SENT_DAYS, "success"), BLOCKED_DAY: "blocked", FAILED_DAY: "failed"}
    for day in SENT_DAYS:
        report = _staged(world, day, "report.json")
        assert report is not None
        for field in ("accepted", "rejected", "dead_lettered"):
            cell = rows[day].find(f'td[data-field="{field}"]')
            assert _number(cell) == int(report[f"events_{field}"]), (day, field)
    _no_secret_and_no_email(world, browser.page_source, f"/omnisend/stores/{STORE}")


def test_each_period_links_to_its_run_and_its_files(browser: Browser, world: BrowserWorld) -> None:
    browser.get(f"{world.api_url}/omnisend/stores/{STORE}")
    browser.wait_for_element("#periods tr[data-period]")
    token = browser.cookies()["_token"]
    api = urlsplit(world.api_url)
    for day in DAYS:
        row = browser.find(f'#periods tr[data-period="{day}"]')
        run = urlsplit(row.find('a[data-link="run"]').property("href"))
        assert (run.hostname, run.port) == (api.hostname, api.port)
        assert unquote(run.path) == f"/dags/{DAG}/runs/{world.runs[day].run_id}"
    for day in SENT_DAYS:
        row = browser.find(f'#periods tr[data-period="{day}"]')
        report = _staged(world, day, "report.json")
        assert report is not None
        status, body = _get(world, row.find('a[data-link="report"]').property("href"), token)
        assert status == 200, body[:500]
        assert str(report["events_accepted"]) in body
        _no_secret_and_no_email(world, body, f"{day}'s report")
        for kind in ("rejected", "dead_letter"):
            for link in row.find_all(f'a[data-link="{kind}"]'):
                status, body = _get(world, link.property("href"), token)
                assert status == 200, (day, kind, body[:500])
                _no_secret_and_no_email(world, body, f"{day}'s {kind} file")
        assert row.find_all('a[data-link="rejected"]'), f"{day} rejected events but has no link to them"

    # the blocked run's link opens Airflow's own page of that run
    blocked = browser.find(f'#periods tr[data-period="{BLOCKED_DAY}"] a[data-link="run"]')
    blocked.click()
    browser.wait_for_text(world.runs[BLOCKED_DAY].run_id, timeout=60)


def test_store_page_lists_top_reasons_and_the_automation_check(browser: Browser, world: BrowserWorld) -> None:
    browser.get(f"{world.api_url}/omnisend/stores/{STORE}")
    items = browser.wait_for_element("ol#rejection-reasons").find_all("li[data-reason]")
    shown = [(str(li.attribute("data-reason")), int(li.attribute("data-count") or -1)) for li in items]
    expected: Counter[str] = Counter()
    for day in DAYS:
        validation = _staged(world, day, "validation.json")
        expected.update((validation or {}).get("rejects_by_reason") or {})
    assert shown, "no rejection reason listed, though the sample shop's dirty rows were rejected"
    assert [c for _, c in shown] == sorted((c for _, c in shown), reverse=True)
    assert all(expected[reason] == count for reason, count in shown), (shown, expected)
    # the top ones: no reason left out counts more than the last one listed
    assert {r for r, c in expected.items() if c > shown[-1][1]} <= {r for r, _ in shown}
    for li in items:
        assert str(li.attribute("data-reason")) in li.text or str(li.attribute("data-count")) in li.text

    section = browser.find("section#automation-check")
    assert section.attribute("data-verdict") in {"block", "warn", "pass", "disabled", "unknown"}


def test_without_a_login_the_dashboard_says_to_log_in(browser: Browser, world: BrowserWorld) -> None:
    for path in ("/omnisend/", f"/omnisend/stores/{STORE}", "/omnisend/api/stores"):
        status, _body = _get(world, path, None)
        assert status == 401, path
    token = browser.cookies()["_token"]
    status, body = _get(world, "/omnisend/api/stores", token)
    assert status == 200
    assert STORE in body
    _no_secret_and_no_email(world, body, "/omnisend/api/stores")

    browser.delete_cookies()
    try:
        browser.get(f"{world.api_url}/omnisend/")
        browser.wait_for("a page that says to log in", lambda: "log in" in browser.page_source.lower())
        assert not browser.find_all("#stores tr[data-store]")
    finally:
        log_in(browser, world, "/omnisend/")


def test_a_user_refused_the_dag_does_not_see_the_store(browser: Browser, world: BrowserWorld) -> None:
    if OUTSIDER not in world.passwords:
        pytest.skip(
            "this build has no auth manager that refuses a logged-in user a DAG (SimpleAuthManager "
            "lets every role read every DAG): airflow_omnisend.testing.dashboard_auth is missing"
        )
    browser.delete_cookies()
    try:
        airflow_login(browser, world.api_url, OUTSIDER, world.passwords[OUTSIDER], "/omnisend/")
        browser.get(f"{world.api_url}/omnisend/")
        browser.wait_for_element("#stores")
        assert not browser.find_all(f'#stores tr[data-store="{STORE}"]')
        browser.get(f"{world.api_url}/omnisend/stores/{STORE}")
        browser.wait_for_text(DAG)
        assert not browser.find_all("#periods")
        status, _body = _get(world, f"/omnisend/api/stores/{STORE}", browser.cookies()["_token"])
        assert status == 403
    finally:
        browser.delete_cookies()
        log_in(browser, world, "/omnisend/")


def test_airflow_ui_has_a_nav_entry_to_the_dashboard(world: BrowserWorld) -> None:
    plugins = world.e2e.airflow.api("GET", "/api/v2/plugins")
    views = [v for p in plugins.get("plugins", []) for v in p.get("external_views") or []]
    named = [v for v in views if v.get("name") == "Omnisend backfills"]
    assert named, views
    assert urlsplit(str(named[0].get("href"))).path.rstrip("/").endswith("/omnisend")
