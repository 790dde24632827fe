"""The dashboard's HTML: server-rendered pages with an inline SVG chart, no script and no build step.

Every id and ``data-*`` attribute here is the contract the browser tests read (docs/dashboard.md):
``#stores`` rows by ``data-store``, ``#periods-chart`` groups and ``#periods`` rows by ``data-period``,
cells by ``data-field``, links by ``data-link``, ``#rejection-reasons``, ``#automation-check`` and
``#progress``. Every text is escaped; the summaries carry no email (``data.redact``).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow_omnisend.progress import format_seconds

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_omnisend.dashboard.data import PeriodSummary, Progress, StoreSummary

__all__ = ["Urls", "chart_svg", "message_page", "store_page", "stores_page"]

STORE_FIELDS = ("done", "running", "failed", "blocked", "accepted", "rejected", "dead_lettered")
KINDS = (("accepted", "#3b8f5a"), ("rejected", "#d9a01e"), ("dead_lettered", "#c0392b"))
MARK_COLOURS = {"failed": "#c0392b", "blocked": "#8e44ad", "acknowledged": "#2471a3", "approved": "#2471a3"}
CHART_WIDTH, CHART_HEIGHT, MARK_BAND = 960, 180, 12

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}
td:first-child,th:first-child{text-align:left}tr[data-state=failed] td{background:#fdecea}
tr[data-state=blocked] td,tr[data-state=awaiting_approval] td{background:#f4ecf7}
.note{background:#fff8e1;border-left:4px solid #d9a01e;padding:.4rem .8rem}
section{margin:1rem 0}svg{border:1px solid #eee}.legend span{margin-right:1rem}
"""


@dataclass(frozen=True)
class Urls:
    """Where the pages link: the dashboard's own routes under ``prefix``, Airflow's UI under ``ui``."""

    prefix: str = "/omnisend"
    ui: str = ""

    def store(self, store_id: str) -> str:
        return f"{self.prefix}/stores/{quote(store_id)}"

    def run(self, dag_id: str, run_id: str) -> str:
        return f"{self.ui}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"

    def period_file(self, store_id: str, period: str, what: str) -> str:
        return f"{self.store(store_id)}/periods/{quote(period)}/{what}"


def _number(value: int | None) -> str:
    return "—" if value is None else str(value)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{body}</body></html>"
    )


def _notes(notes: Iterable[str]) -> str:
    return "".join(f'<p class="note" data-note>{escape(n)}</p>' for n in notes)


def message_page(title: str, message: str, *, login_url: str | None = None) -> str:
    """A refusal or error page (401: says to log in, with the link; 403, 404: says why)."""
    link = f' <a href="{escape(login_url)}" data-link="login">Log in</a>' if login_url else ""
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}{link}</p>")


# -- all stores ---------------------------------------------------------------------------------------


def _store_row(summary: StoreSummary, urls: Urls) -> str:
    sid = escape(summary.store_id)
    cells = "".join(
        f'<td data-field="{name}">{_number(summary.counts.get(name))}</td>' for name in STORE_FIELDS
    )
    last = escape(summary.last_run or "—")
    link = f'<a data-link="store" href="{escape(urls.store(summary.store_id))}">{sid}</a>'
    return (
        f'<tr data-store="{sid}"><td data-field="store_id">{link}</td>{cells}'
        f'<td data-field="last_run">{last}</td></tr>'
    )


def stores_page(summaries: Iterable[StoreSummary], urls: Urls, notes: Iterable[str] = ()) -> str:
    """``GET /omnisend/``: a row per store the user may read."""
    head = "".join(f"<th>{name.replace('_', '-')}</th>" for name in (*STORE_FIELDS, "last_run"))
    rows = "".join(_store_row(s, urls) for s in summaries)
    store_notes = [f"{s.store_id}: {n}" for s in summaries for n in s.notes]
    body = (
        "<h1>Omnisend backfills</h1>"
        f"{_notes([*notes, *store_notes])}"
        f'<table id="stores"><thead><tr><th>store</th>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )
    return _page("Omnisend backfills", body)


# -- one store ---------------------------------------------------------------------------------------


def _bar(period: PeriodSummary, x: float, width: float, scale: float) -> str:
    base = float(CHART_HEIGHT)
    rects = []
    for kind, colour in KINDS:
        height = (getattr(period, kind) or 0) * scale
        base -= height
        rects.append(
            f'<rect data-kind="{kind}" x="{x:.2f}" y="{base:.2f}" width="{width:.2f}" '
            f'height="{height:.2f}" fill="{colour}"/>'
        )
    mark = ""
    if period.mark:
        colour = MARK_COLOURS.get(period.mark, "#555")
        mark = (
            f'<rect class="mark" x="{x:.2f}" y="0" width="{width:.2f}" height="{MARK_BAND - 2}" '
            f'fill="{colour}"/>'
        )
    title = (
        f"{period.period}: {_number(period.accepted)} accepted, {_number(period.rejected)} rejected, "
        f"{_number(period.dead_lettered)} dead-lettered ({period.mark or period.state})"
    )
    attr = f' data-mark="{escape(period.mark)}"' if period.mark else ""
    key = escape(period.period)
    return f'<g data-period="{key}"{attr}><title>{escape(title)}</title>{"".join(rects)}{mark}</g>'


def chart_svg(periods: list[PeriodSummary]) -> str:
    """Bars in calendar order, stacked accepted / rejected / dead-lettered; a band on top marks a
    failed, blocked, acknowledged or approved period."""
    count = max(1, len(periods))
    width = CHART_WIDTH / count
    tallest = max(
        ((p.accepted or 0) + (p.rejected or 0) + (p.dead_lettered or 0) for p in periods), default=0
    )
    scale = (CHART_HEIGHT - MARK_BAND) / tallest if tallest else 0.0
    bars = "".join(
        _bar(p, i * width, max(width - (1 if width > 3 else 0), 0.5), scale) for i, p in enumerate(periods)
    )
    legend = "".join(f'<span style="color:{c}">■ {k.replace("_", "-")}</span>' for k, c in KINDS)
    marks = "".join(
        f'<span style="color:{c}">▀ {k}</span>' for k, c in MARK_COLOURS.items() if k != "approved"
    )
    return (
        f'<svg id="periods-chart" xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" '
        f'height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" '
        f'aria-label="events per period">{bars}</svg><p class="legend">{legend}{marks} / approved</p>'
    )


def _links(summary: StoreSummary, period: PeriodSummary, urls: Urls) -> str:
    links = []
    if period.run_id:
        href = urls.run(summary.dag_id, period.run_id)
        links.append(f'<a data-link="run" href="{escape(href)}">run</a>')
    for flag, what, label in (
        (period.has_report, "report", "report"),
        (period.has_rejected, "rejected", "rejected"),
        (period.has_dead_letters, "dead-letters", "dead letters"),
    ):
        if flag:
            kind = what.replace("dead-letters", "dead_letter")
            href = urls.period_file(summary.store_id, period.period, what)
            links.append(f'<a data-link="{kind}" href="{escape(href)}">{label}</a>')
    return " ".join(links)


def _period_row(summary: StoreSummary, period: PeriodSummary, urls: Urls) -> str:
    cells = "".join(f'<td data-field="{kind}">{_number(getattr(period, kind))}</td>' for kind, _ in KINDS)
    mark = f' data-mark="{escape(period.mark)}"' if period.mark else ""
    return (
        f'<tr data-period="{escape(period.period)}" data-state="{escape(period.state)}"{mark}>'
        f'<td data-field="period">{escape(period.period)}</td><td data-field="state">{escape(period.state)}'
        f"{' (' + escape(period.mark) + ')' if period.mark and period.mark != period.state else ''}</td>"
        f'{cells}<td data-field="ended">{escape(period.ended or period.started or "—")}</td>'
        f'<td data-field="links">{_links(summary, period, urls)}</td></tr>'
    )


def _reasons(summary: StoreSummary) -> str:
    items = "".join(
        f'<li data-reason="{escape(reason)}" data-count="{count}">{escape(reason)}: {count}</li>'
        for reason, count in summary.reasons
    )
    empty = "" if summary.reasons else "<p>No rejected events.</p>"
    return f'<h2>Top rejection reasons</h2><ol id="rejection-reasons">{items}</ol>{empty}'


def _check(summary: StoreSummary) -> str:
    check = summary.check
    lines = [f"<h2>Automation check: {escape(check['verdict'])}</h2>"]
    if check.get("period"):
        lines.append(
            f"<p>Latest check: period {escape(check['period'])}, "
            f"outcome {escape(check['outcome'] or '')}.</p>"
        )
    if check.get("reason"):
        lines.append(f'<p data-field="reason">{escape(check["reason"])}</p>')
    if check.get("automations"):
        names = "".join(f"<li>{escape(a['name'])} ({escape(a['id'])})</li>" for a in check["automations"])
        lines.append(f'<ul data-field="automations">{names}</ul>')
    if check.get("acknowledgement"):
        lines.append(f'<p data-field="acknowledgement">Acknowledged: {escape(check["acknowledgement"])}</p>')
    approval = summary.approval
    if approval:
        lines.append(
            f'<div data-field="approval"><p>Approved by {escape(approval.get("approved_by") or "?")} at '
            f"{escape(approval.get('approved_at') or '?')} "
            f"(until {escape(approval.get('expires_at') or '?')}) "
            f"for {approval.get('automations', 0)} automation(s).</p>"
            f'<p data-field="approval-reason">Reason: {escape(approval.get("reason") or "")}</p></div>'
        )
    return (
        f'<section id="automation-check" data-verdict="{escape(check["verdict"])}">{"".join(lines)}</section>'
    )


def _progress(progress: Progress | None) -> str:
    if progress is None:
        return (
            '<section id="progress" data-active="false"><h2>Progress</h2>'
            "<p>No backfill is running.</p></section>"
        )
    left = (
        "unknown until a period has sent"
        if progress.seconds_left is None
        else format_seconds(progress.seconds_left)
    )
    per = "—" if progress.requests_per_period is None else f"{progress.requests_per_period:.1f}"
    return (
        f'<section id="progress" data-active="true" data-backfill="{progress.backfill_id}">'
        f"<h2>Progress of backfill {progress.backfill_id}</h2>"
        f'<p><span data-field="periods_left">{progress.periods_left}</span> of '
        f'<span data-field="periods_total">{progress.periods_total}</span> periods left; about '
        f'<span data-field="time_left">{escape(left)}</span> of sending left at the brand\'s rate of '
        f'<span data-field="rate_per_minute">{progress.rate_per_minute}</span> requests/min '
        f"({per} requests per period so far).</p></section>"
    )


def store_page(summary: StoreSummary, urls: Urls) -> str:
    """``GET /omnisend/stores/{store_id}``: chart, periods, reasons, automation check, progress."""
    c = summary.counts
    totals = (
        f"<p>{c['periods']} periods: {c['done']} done, {c['running']} running, {c['failed']} failed, "
        f"{c['blocked']} blocked; {c['accepted']} events accepted, {c['rejected']} rejected, "
        f"{c['dead_lettered']} dead-lettered.</p>"
    )
    rows = "".join(_period_row(summary, p, urls) for p in summary.periods)
    head = "".join(
        f"<th>{h}</th>"
        for h in ("period", "state", "accepted", "rejected", "dead-lettered", "ended", "links")
    )
    body = (
        f'<p><a href="{escape(urls.prefix)}/">All stores</a> · '
        f'<a href="{escape(urls.ui)}/dags/{escape(quote(summary.dag_id))}">'
        f"DAG {escape(summary.dag_id)}</a></p>"
        f"<h1>Store {escape(summary.store_id)}</h1>{_notes(summary.notes)}{totals}"
        f"{chart_svg(summary.periods)}{_progress(summary.progress)}"
        f'<h2>Periods</h2><table id="periods"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        f"{_reasons(summary)}{_check(summary)}"
    )
    return _page(f"Omnisend store {summary.store_id}", body)
