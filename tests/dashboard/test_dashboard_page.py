"""The pages carry the DOM contract (docs/dashboard.md) the browser tests read, escape every text and
show no email."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import TYPE_CHECKING

from airflow_omnisend.dashboard.data import RunRecord, StoreSource, summarize_store
from airflow_omnisend.dashboard.page import Urls, chart_svg, message_page, store_page, stores_page
from airflow_omnisend.testing.dashboard_staging import (
    CUSTOMER_EMAIL,
    SyntheticPeriod,
    write_approval,
    write_period,
)

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_omnisend.dashboard.data import StoreSummary


class Elements(HTMLParser):
    """Every start tag as ``(tag, attributes)``, in document order, and the text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.found
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


def _summary(tmp_path: Path) -> StoreSummary:
    store_dir = tmp_path / "demo"
    for period in (
        SyntheticPeriod("2024-03-05", accepted=120, rejected=3),
        SyntheticPeriod("2024-03-06", accepted=0, rejected=0, report=False),
        SyntheticPeriod("2024-03-07", accepted=0, rejected=1, outcome="blocked", report=False),
        SyntheticPeriod("2024-03-08", accepted=90, rejected=0, dead_lettered=2, outcome="acknowledged"),
    ):
        write_period(store_dir, "demo", period)
    write_approval(store_dir, reason="flows paused <b>for</b> the import")
    states = {
        "2024-03-05": "success",
        "2024-03-06": "failed",
        "2024-03-07": "failed",
        "2024-03-08": "success",
    }
    runs = [
        RunRecord(p, f"backfill__{p}T00:00:00+00:00", s, "backfill", "2026-12-01T10:00:00Z")
        for p, s in states.items()
    ]
    runs.append(RunRecord("2024-03-09", "backfill__2024-03-09", "queued", "backfill", backfill_id=3))
    source = StoreSource(
        "demo", "omnisend_orders__demo", tuple(runs), store_dir, active_backfill=3, rate_per_minute=400
    )
    return summarize_store(source)


def test_the_store_page_has_the_chart_table_reasons_check_and_progress(tmp_path: Path) -> None:
    doc = Elements(store_page(_summary(tmp_path), Urls("/omnisend", "")))
    (svg,) = doc.having("svg", id="periods-chart")
    assert svg
    groups = doc.having("g")
    assert [g["data-period"] for g in groups] == [
        "2024-03-05",
        "2024-03-06",
        "2024-03-07",
        "2024-03-08",
        "2024-03-09",
    ]
    assert {g["data-period"]: g.get("data-mark") for g in groups} == {
        "2024-03-05": None,
        "2024-03-06": "failed",
        "2024-03-07": "blocked",
        "2024-03-08": "acknowledged",
        "2024-03-09": None,
    }
    assert (
        len(doc.having("rect", data_kind="accepted"))
        == len(doc.having("rect", data_kind="dead_lettered"))
        == 5
    )
    rows = {r["data-period"]: r["data-state"] for r in doc.having("tr") if r.get("data-period")}
    assert rows == {"2024-03-05": "success", "2024-03-06": "failed", "2024-03-07": "blocked",
                    "2024-03-08": "success", "2024-03-09": "running"}  # fmt: skip
    hrefs = {(a["data-link"], a["href"]) for a in doc.having("a") if a.get("data-link")}
    assert ("run", "/dags/omnisend_orders__demo/runs/backfill__2024-03-05T00%3A00%3A00%2B00%3A00") in hrefs
    assert ("report", "/omnisend/stores/demo/periods/2024-03-05/report") in hrefs
    assert ("rejected", "/omnisend/stores/demo/periods/2024-03-05/rejected") in hrefs
    assert ("dead_letter", "/omnisend/stores/demo/periods/2024-03-08/dead-letters") in hrefs
    assert ("report", "/omnisend/stores/demo/periods/2024-03-06/report") not in hrefs
    reasons = doc.having("li")
    assert [(r["data-reason"], r["data-count"]) for r in reasons if r.get("data-reason")] == [("format", "8")]
    (check,) = doc.having("section", id="automation-check")
    assert check["data-verdict"] == "warn"
    (progress,) = doc.having("section", id="progress")
    assert (progress["data-active"], progress["data-backfill"]) == ("true", "3")
    text = "".join(doc.text)
    assert "1 of 1 periods left" in text  # only the queued run belongs to backfill 3
    assert "flows paused <b>for</b> the import" in text  # escaped: it is text, not markup
    assert not doc.having("b")


def test_the_page_shows_no_email(tmp_path: Path) -> None:
    html = store_page(_summary(tmp_path), Urls())
    assert CUSTOMER_EMAIL not in html
    assert "@" not in html


def test_the_stores_page_has_a_row_per_store_with_its_counts(tmp_path: Path) -> None:
    summary = _summary(tmp_path)
    other = summarize_store(StoreSource("other", "omnisend_orders__other", (), None, staging_note="remote"))
    doc = Elements(stores_page([summary, other], Urls("/omnisend"), ["a note"]))
    assert doc.having("table", id="stores")
    assert [r["data-store"] for r in doc.having("tr") if r.get("data-store")] == ["demo", "other"]
    fields = [a["data-field"] for a in doc.having("td")][:9]
    assert fields == [
        "store_id",
        "done",
        "running",
        "failed",
        "blocked",
        "accepted",
        "rejected",
        "dead_lettered",
        "last_run",
    ]
    assert doc.having("a", data_link="store", href="/omnisend/stores/demo")
    text = "".join(doc.text)
    assert "a note" in text
    assert "other: remote" in text


def test_the_chart_scales_and_an_empty_store_renders() -> None:
    assert 'id="periods-chart"' in chart_svg([])
    assert "<g" not in chart_svg([])


def test_a_refusal_page_says_what_to_do() -> None:
    doc = Elements(
        message_page("Log in to Airflow", "Not logged in: log in.", login_url="/auth/login?next=x")
    )
    assert doc.having("a", data_link="login", href="/auth/login?next=x")
    assert "Not logged in" in "".join(doc.text)
