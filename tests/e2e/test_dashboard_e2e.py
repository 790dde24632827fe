"""The dashboard on a real deployment: the api-server loads the plugin through its entry point, and a
logged-in user reads what a small backfill of the sample shop left behind.

One store, three days:

* 2024-03-04 succeeds;
* 2024-03-05 fails: the emulator refuses (503) every batch of that day, the store has no retries and
  its connection a short retry budget;
* 2024-03-06 is blocked: an enabled "Order confirmation" automation appears before a manual run of
  that day (``{"partition": ...}`` in its conf, so the dashboard finds its period there).

Then the pages are read as the UI would: the admin's REST token as a Bearer header and as the UI's
``_token`` cookie; without a token (401); and as a logged-in user the test auth manager denies (403).
The numbers the pages show are compared with the files the runs wrote.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import pytest
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

from airflow_omnisend.testing.dashboard_auth import DENIED_USERS_ENV
from airflow_omnisend.testing.emulator import FaultConfig, OmnisendEmulator
from airflow_omnisend.testing.plugin_entry_point import entry_point_dir

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STORE = "e2e_dash"
GOOD, FAILED, BLOCKED = "2024-03-04", "2024-03-05", "2024-03-06"
DAYS = (GOOD, FAILED, BLOCKED)
OUTSIDER = "outsider"
RUN_TIMEOUT = 240.0
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
CONFIRMATION: dict[str, Any] = {
    "id": "65f0000000000000000000e7",
    "name": "Order confirmation",
    "isEnabled": True,
    "updatedAt": "2026-10-01T08:00:00Z",
    "trigger": {"condition": {"event": "placed order", "origin": "api"}},
}


class Elements(HTMLParser):
    """Start tags as ``(tag, attributes)`` in document order, and the page's text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, attr: str | None = None) -> list[dict[str, str | None]]:
        return [a for t, a in self.found if t == tag and (attr is None or attr in a)]


@pytest.fixture(scope="module")
def emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(emulator_config([STORE], processing_delay=0.05)) as emu:
        yield emu


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, emulator: OmnisendEmulator) -> Iterator[E2EWorld]:
    root = tmp_path_factory.mktemp("dashboard")
    shim = entry_point_dir(root / "entry-point")
    paths = [*([str(shim)] if shim else []), str(REPO), os.environ.get("PYTHONPATH", "")]
    extra = {"api_version": "v5", "timeout": 5, "retry_budget": 5, "brand_budget_per_minute": 120}
    connection = {
        "conn_type": "omnisend",
        "host": emulator.base_url,
        "password": api_key(STORE),
        "extra": extra,
    }
    env = {
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow_omnisend.testing.dashboard_auth.DenyingAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{OUTSIDER}:viewer",
        DENIED_USERS_ENV: OUTSIDER,
        f"AIRFLOW_CONN_{omnisend_conn_id(STORE).upper()}": json.dumps(connection),
    }
    with e2e_world(root, emulator, [store_entry(STORE, retries=0)], extra_env=env) as built:
        yield built


def _token(world: E2EWorld, user: str) -> str:
    passwords = json.loads((world.airflow.home / "simple_auth_manager_passwords.json").read_text())
    body = json.dumps({"username": user, "password": passwords[user]}).encode()
    request = urllib.request.Request(f"{world.airflow.api_url}/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        token: str = json.loads(answer.read())["access_token"]
    return token


def _get(world: E2EWorld, path: str, *, token: str | None = None, cookie: bool = False) -> tuple[int, str]:
    headers = {}
    if token and cookie:
        headers["Cookie"] = f"_token={token}"
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{world.airflow.api_url}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def ran(world: E2EWorld, emulator: OmnisendEmulator) -> E2EWorld:
    """The three days have run: one good, one failed, one blocked."""
    airflow, dag = world.airflow, dag_id(STORE)
    with diagnosed(world, STORE):
        emulator.set_faults(FaultConfig(refuse_event_windows=(local_day_window(FAILED),)))
        airflow.backfill(dag, GOOD, FAILED)
        runs = airflow.wait_for_runs(dag, count=2, timeout=RUN_TIMEOUT)
        assert {r.partition_key: r.state for r in runs} == {GOOD: "success", FAILED: "failed"}
        emulator.set_faults(FaultConfig())
        emulator.set_automations([CONFIRMATION])
        airflow.api(
            "POST", f"/api/v2/dags/{dag}/dagRuns", {"logical_date": None, "conf": {"partition": BLOCKED}}
        )
        runs = airflow.wait_for_runs(dag, count=3, timeout=RUN_TIMEOUT)
        assert sorted(r.state for r in runs) == ["failed", "failed", "success"]
    return world


def _staged(world: E2EWorld, day: str, name: str) -> dict[str, Any] | None:
    path = world.staging / STORE / day / name
    return json.loads(path.read_text()) if path.is_file() else None


def _expected(world: E2EWorld) -> dict[str, dict[str, int | None]]:
    """Per day, the counts the runs wrote: the report's, else validation's rejected count."""
    found: dict[str, dict[str, int | None]] = {}
    for day in DAYS:
        report = _staged(world, day, "report.json")
        validation = _staged(world, day, "validation.json") or {}
        found[day] = {
            "accepted": report["events_accepted"] if report else None,
            "rejected": report["events_rejected"] if report else validation.get("rejected"),
            "dead_lettered": report["events_dead_lettered"] if report else None,
        }
    return found


def test_the_store_page_shows_what_the_runs_left(ran: E2EWorld) -> None:
    token = _token(ran, "admin")
    status, html = _get(ran, f"/omnisend/stores/{STORE}", token=token)
    assert status == 200, html[:2000]
    doc = Elements(html)
    groups = {g["data-period"]: g.get("data-mark") for g in doc.having("g", "data-period")}
    assert groups == {GOOD: None, FAILED: "failed", BLOCKED: "blocked"}
    rows = {r["data-period"]: r["data-state"] for r in doc.having("tr", "data-period")}
    assert rows == {GOOD: "success", FAILED: "failed", BLOCKED: "blocked"}
    expected = _expected(ran)
    assert expected[GOOD]["accepted"], "the good day accepted nothing"
    api = json.loads(_get(ran, f"/omnisend/api/stores/{STORE}", token=token)[1])
    shown = {
        p["period"]: {k: p[k] for k in ("accepted", "rejected", "dead_lettered")} for p in api["periods"]
    }
    assert shown == expected
    cells = re.findall(r'<tr data-period="([^"]+)"[^>]*>.*?<td data-field="accepted">([^<]*)</td>', html)
    assert dict(cells)[GOOD] == str(expected[GOOD]["accepted"])
    links = [(a["data-link"], a["href"]) for a in doc.having("a", "data-link")]
    run_links = [h for k, h in links if k == "run"]
    assert len(run_links) == 3
    assert f"/omnisend/stores/{STORE}/periods/{GOOD}/report" in [h for k, h in links if k == "report"]
    rejected_links = {h for k, h in links if k == "rejected"}
    for day in DAYS:  # the failed and the blocked day have no report, but their rejected file
        if expected[day]["rejected"]:
            assert f"/omnisend/stores/{STORE}/periods/{day}/rejected" in rejected_links, day
    (check,) = [s for s in doc.having("section") if s.get("id") == "automation-check"]
    assert check["data-verdict"] == "block"
    assert "Order confirmation" in "".join(doc.text)
    reasons = [(li["data-reason"], li["data-count"]) for li in doc.having("li", "data-reason")]
    staged: dict[str, int] = {}
    for day in DAYS:
        by_reason = (_staged(ran, day, "validation.json") or {}).get("rejects_by_reason") or {}
        for reason, count in by_reason.items():
            staged[reason] = staged.get(reason, 0) + count
    top = sorted(staged.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert reasons == [(k, str(v)) for k, v in top]
    assert not EMAIL.search(html)


def test_the_links_open_the_report_and_files_without_emails(ran: E2EWorld) -> None:
    token = _token(ran, "admin")
    status, report = _get(ran, f"/omnisend/stores/{STORE}/periods/{GOOD}/report", token=token)
    assert status == 200
    assert json.loads(report)["events_accepted"] == _expected(ran)[GOOD]["accepted"]
    _status, html = _get(ran, f"/omnisend/stores/{STORE}", token=token)
    for href in re.findall(r'data-link="(?:rejected|dead_letter)" href="([^"]+)"', html):
        status, body = _get(ran, href.replace("&amp;", "&"), token=token)
        assert status == 200, href
        assert not EMAIL.search(body), href
    run_href = re.search(r'data-link="run" href="([^"]+)"', html)
    assert run_href is not None
    assert _get(ran, run_href.group(1).replace("&amp;", "&"), token=token)[0] == 200


def test_the_all_stores_page_counts_and_the_cookie_works(ran: E2EWorld) -> None:
    token = _token(ran, "admin")
    status, html = _get(ran, "/omnisend/", token=token, cookie=True)
    assert status == 200, html[:2000]
    row = re.search(rf'<tr data-store="{STORE}">(.*?)</tr>', html)
    assert row is not None
    cells = dict(re.findall(r'<td data-field="([a-z_]+)">(?:<a[^>]*>)?([^<]*)', row.group(1)))
    expected = _expected(ran)
    assert (cells["done"], cells["running"], cells["failed"], cells["blocked"]) == ("1", "0", "1", "1")
    assert cells["accepted"] == str(sum(d["accepted"] or 0 for d in expected.values()))
    assert cells["rejected"] == str(sum(d["rejected"] or 0 for d in expected.values()))
    assert cells["last_run"].startswith("20")


def test_the_nav_entry_is_registered(ran: E2EWorld) -> None:
    plugins = ran.airflow.api("GET", "/api/v2/plugins")["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "omnisend_dashboard"]
    assert [(v["name"], v["href"]) for v in ours["external_views"]] == [("Omnisend backfills", "/omnisend/")]


def test_without_a_token_the_dashboard_is_refused(ran: E2EWorld) -> None:
    status, html = _get(ran, "/omnisend/")
    assert status == 401
    assert "log in" in html.lower()
    assert _get(ran, f"/omnisend/api/stores/{STORE}")[0] == 401
    assert _get(ran, "/omnisend/", token="not-a-token")[0] == 401


def test_a_user_denied_the_dag_is_refused(ran: E2EWorld) -> None:
    token = _token(ran, OUTSIDER)
    assert _get(ran, f"/omnisend/stores/{STORE}", token=token)[0] == 403
    assert _get(ran, f"/omnisend/api/stores/{STORE}", token=token)[0] == 403
    status, html = _get(ran, "/omnisend/", token=token)
    assert status == 200
    assert f'data-store="{STORE}"' not in html
