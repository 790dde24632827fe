"""The dashboard's numbers: per-store and per-period summaries built from what runs leave behind.

Inputs are plain values: the store's runs (:class:`RunRecord`, read from the metadata DB by the app)
and its staging folder on this machine, when there is one. Per period only the small files are read -
``report.json``, ``automation_check.json`` and ``validation.json`` (its ``rejects_by_reason`` gives the
rejection reasons without opening ``rejected.ndjson``) - through a cache keyed by file mtime and size,
so a store of a thousand periods costs a few thousand ``stat`` calls once its files are cached.

No Airflow and no FastAPI here: the module is tested, and benchmarked, on its own. Nothing that
leaves it carries an email address: every text from a file goes through :func:`redact`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

import orjson

from airflow_omnisend.approvals import APPROVAL_FILE
from airflow_omnisend.events.partition import canonical_partition_label
from airflow_omnisend.exceptions import OmnisendError
from airflow_omnisend.staging import DEAD_LETTERS_DIR, FILES

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from pathlib import Path

__all__ = [
    "JsonCache",
    "PeriodSummary",
    "Progress",
    "RunRecord",
    "StoreSource",
    "StoreSummary",
    "dead_letter_view",
    "redact",
    "rejected_view",
    "summarize_store",
]

#: DagRun states that end a run; the others (queued, running) count as running
TERMINAL_STATES: Final = frozenset({"success", "failed"})
#: check outcomes that stop a period until a person acts
BLOCKING_OUTCOMES: Final = frozenset({"blocked", "awaiting_approval"})
#: reasons listed on a store's page
TOP_REASONS: Final = 10
#: lines of a rejected or dead-letter file served by one request
MAX_FILE_LINES: Final = 1000

_EMAIL = re.compile(r"[^\s@\"'<>(),;:]+@[^\s@\"'<>(),;:]+")


def redact(text: object) -> str:
    """``text`` as a string with every email address replaced by ``<email>``."""
    return _EMAIL.sub("<email>", str(text))


def file_name(name: str) -> str:
    """The file name of a staged file by its logical name (``staging.FILES``)."""
    return FILES[name][0]


@dataclass(frozen=True)
class RunRecord:
    """One DagRun of a store's DAG, as the dashboard needs it (times are ISO-8601 UTC strings)."""

    period: str
    run_id: str
    state: str
    run_type: str = ""
    started: str | None = None
    ended: str | None = None
    backfill_id: int | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class StoreSource:
    """What the app hands over for one store.

    :param staging_dir: ``<staging root>/<store_id>`` when the root is a folder on this machine, else
        None; then ``staging_note`` says why, and the page shows run states only.
    :param active_backfill: id of the store's backfill that has not completed, if any.
    :param rate_per_minute: requests the brand may start per minute (its Omnisend connection's
        ``brand_budget_per_minute``).
    """

    store_id: str
    dag_id: str
    runs: tuple[RunRecord, ...] = ()
    staging_dir: Path | None = None
    staging_note: str | None = None
    active_backfill: int | None = None
    rate_per_minute: int = 400


@dataclass(frozen=True)
class PeriodSummary:
    """One period: its latest run's state, the mark it carries, its counts and which files it has."""

    period: str
    state: str
    mark: str | None = None
    run_id: str | None = None
    run_type: str | None = None
    started: str | None = None
    ended: str | None = None
    accepted: int | None = None
    rejected: int | None = None
    dead_lettered: int | None = None
    requests: int | None = None
    check_outcome: str | None = None
    has_report: bool = False
    has_rejected: bool = False
    has_dead_letters: bool = False


@dataclass(frozen=True)
class Progress:
    """A running backfill: its periods, those left, and the send time left at the brand's rate."""

    backfill_id: int
    periods_total: int
    periods_left: int
    requests_per_period: float | None
    rate_per_minute: int
    seconds_left: float | None


@dataclass(frozen=True)
class StoreSummary:
    """Everything the pages show of one store (``to_dict`` is the JSON API's answer)."""

    store_id: str
    dag_id: str
    periods: list[PeriodSummary]
    counts: dict[str, int]
    last_run: str | None
    reasons: list[tuple[str, int]]
    check: dict[str, Any]
    approval: dict[str, Any] | None
    progress: Progress | None
    staging_readable: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = [{"reason": r, "count": c} for r, c in self.reasons]
        return data

    def period(self, key: str) -> PeriodSummary | None:
        return next((p for p in self.periods if p.period == key), None)


class JsonCache:
    """Parsed JSON objects by path, kept while the file's mtime and size stay the same.

    A missing, unreadable or non-object file reads as None. At most ``max_entries`` files are kept
    (the oldest entries go first), so memory stays bounded however many periods there are.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[Path, tuple[tuple[int, int], dict[str, Any] | None]] = {}

    def read(self, path: Path) -> dict[str, Any] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        hit = self._entries.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            data = None
        value = data if isinstance(data, dict) else None
        if len(self._entries) >= self.max_entries:
            for stale in list(self._entries)[: max(1, self.max_entries // 2)]:
                del self._entries[stale]
        self._entries[path] = (stamp, value)
        return value


# -- periods ------------------------------------------------------------------------------------------


def is_period(name: str) -> bool:
    """Whether ``name`` is a period key in its one spelling (so never a path)."""
    try:
        return canonical_partition_label(name) == name
    except (OmnisendError, ValueError):
        return False


def staged_periods(store_dir: Path) -> list[str]:
    """Period folders under ``<staging root>/<store_id>`` (other folders, e.g. approvals, skipped)."""
    try:
        with os.scandir(store_dir) as entries:
            return [e.name for e in entries if e.is_dir() and is_period(e.name)]
    except OSError:
        return []


def latest_runs(runs: Iterable[RunRecord]) -> dict[str, RunRecord]:
    """Period -> its latest run (latest start; a run not started yet counts as the latest)."""
    latest: dict[str, RunRecord] = {}
    for run in runs:
        seen = latest.get(run.period)
        if seen is None or (run.started or "\uffff") >= (seen.started or "\uffff"):
            latest[run.period] = run
    return latest


def period_state(run: RunRecord | None, outcome: str | None) -> tuple[str, str | None]:
    """``(state, mark)`` of a period from its latest run and its automation check's outcome."""
    if run is None:
        return "no_run", None
    if not run.terminal:
        if outcome == "awaiting_approval":
            return "awaiting_approval", "blocked"
        return "running", None
    if run.state == "failed":
        return ("blocked", "blocked") if outcome in BLOCKING_OUTCOMES else ("failed", "failed")
    if outcome in ("acknowledged", "approved"):
        return run.state, outcome
    return run.state, None


def _count(report: Mapping[str, Any] | None, key: str) -> int | None:
    value = report.get(key) if report else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def summarize_period(
    period: str, run: RunRecord | None, period_dir: Path | None, cache: JsonCache
) -> tuple[PeriodSummary, dict[str, Any] | None, dict[str, Any] | None]:
    """The period's summary, plus its check and validation records (for the store-wide parts)."""
    report = check = validation = None
    if period_dir is not None:
        report = cache.read(period_dir / file_name("report"))
        check = cache.read(period_dir / file_name("automation_check"))
        validation = cache.read(period_dir / file_name("validation"))
    outcome = check.get("outcome") if check else None
    state, mark = period_state(run, outcome if isinstance(outcome, str) else None)
    summary = PeriodSummary(
        period=period,
        state=state,
        mark=mark,
        run_id=run.run_id if run else None,
        run_type=run.run_type if run else None,
        started=run.started if run else None,
        ended=run.ended if run else None,
        accepted=_count(report, "events_accepted"),
        rejected=_count(report, "events_rejected") if report else _count(validation, "rejected"),
        dead_lettered=_count(report, "events_dead_lettered"),
        requests=_count(report, "requests"),
        check_outcome=outcome if isinstance(outcome, str) else None,
        has_report=report is not None,
        # a period that stopped before its report (failed, blocked) still has validation's rejected file
        has_rejected=bool(report.get("rejected_file")) if report else bool(_count(validation, "rejected")),
        has_dead_letters=bool(report and report.get("dead_letter_files")),
    )
    return summary, check, validation


# -- the store ---------------------------------------------------------------------------------------


def _verdict(check: Mapping[str, Any] | None) -> str:
    if check is None:
        return "unknown"
    outcome = check.get("outcome")
    if outcome in BLOCKING_OUTCOMES:
        return "block"
    if outcome in ("acknowledged", "approved"):
        return "warn"
    if outcome == "passed":
        return "warn" if check.get("warnings") else "pass"
    return "unknown"


def check_section(check: Mapping[str, Any] | None, period: str | None) -> dict[str, Any]:
    """The latest automation check of the store: verdict, reason and the automations it matched
    (``unknown`` when no period has one, or staging cannot be read)."""
    if check is None:
        return {"verdict": "unknown", "period": None, "outcome": None, "reason": None,
                "acknowledgement": None, "automations": [], "checked_at": None}  # fmt: skip
    matched = check.get("automations_matched") or []
    return {
        "verdict": _verdict(check),
        "period": period,
        "outcome": check.get("outcome"),
        "reason": redact(check["reason"]) if check.get("reason") else None,
        "acknowledgement": redact(check["acknowledgement"]) if check.get("acknowledgement") else None,
        "automations": [
            {"id": str(m.get("id")), "name": redact(m.get("name") or "")}
            for m in matched
            if isinstance(m, dict)
        ],
        "checked_at": check.get("checked_at"),
    }


def approval_section(store_dir: Path | None, cache: JsonCache) -> dict[str, Any] | None:
    """The store's kept approval (``approvals.APPROVAL_FILE``): who, when, why, until when."""
    if store_dir is None:
        return None
    data = cache.read(store_dir / APPROVAL_FILE)
    if data is None:
        return None
    keys = ("approved_by", "approved_at", "expires_at", "partition", "run_id")
    section: dict[str, Any] = {k: redact(data[k]) if data.get(k) is not None else None for k in keys}
    section["reason"] = redact(data.get("reason") or "")
    section["automations"] = len(data.get("automations") or [])
    return section


def progress_of(source: StoreSource, periods: list[PeriodSummary]) -> Progress | None:
    """Periods left in the active backfill and the send time they need at the brand's rate."""
    if source.active_backfill is None:
        return None
    runs = [r for r in source.runs if r.backfill_id == source.active_backfill]
    left = sum(1 for r in runs if not r.terminal)
    sent = [p.requests for p in periods if p.requests]
    per_period = sum(sent) / len(sent) if sent else None
    seconds = None
    if per_period is not None and source.rate_per_minute > 0:
        seconds = left * per_period / source.rate_per_minute * 60.0
    return Progress(source.active_backfill, len(runs), left, per_period, source.rate_per_minute, seconds)


def _counts(periods: list[PeriodSummary]) -> dict[str, int]:
    states = Counter(p.state for p in periods)
    return {
        "done": states["success"],
        "running": states["running"] + states["awaiting_approval"],
        "failed": states["failed"],
        "blocked": states["blocked"] + states["awaiting_approval"],
        "accepted": sum(p.accepted or 0 for p in periods),
        "rejected": sum(p.rejected or 0 for p in periods),
        "dead_lettered": sum(p.dead_lettered or 0 for p in periods),
        "periods": len(periods),
    }


def _reasons(validations: Iterable[Mapping[str, Any] | None]) -> list[tuple[str, int]]:
    total: Counter[str] = Counter()
    for validation in validations:
        by_reason = (validation or {}).get("rejects_by_reason") or {}
        if isinstance(by_reason, dict):
            total.update({redact(k): v for k, v in by_reason.items() if isinstance(v, int)})
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]


def summarize_store(source: StoreSource, cache: JsonCache | None = None) -> StoreSummary:
    """The store's summary: every period it has a run or a staging folder for, in calendar order."""
    cache = cache or JsonCache()
    runs = latest_runs(source.runs)
    store_dir = source.staging_dir
    readable = store_dir is not None and store_dir.is_dir()
    keys = set(runs) | set(staged_periods(store_dir) if readable and store_dir else [])
    periods: list[PeriodSummary] = []
    latest_check: tuple[str, dict[str, Any]] | None = None
    validations = []
    for key in sorted(keys):
        period_dir = store_dir / key if readable and store_dir else None
        summary, check, validation = summarize_period(key, runs.get(key), period_dir, cache)
        periods.append(summary)
        validations.append(validation)
        if check is not None:
            latest_check = (key, check)
    notes = [] if readable else [staging_missing_note(source)]
    started = [t for r in source.runs if (t := r.ended or r.started)]
    return StoreSummary(
        store_id=source.store_id,
        dag_id=source.dag_id,
        periods=periods,
        counts=_counts(periods),
        last_run=max(started) if started else None,
        reasons=_reasons(validations),
        check=check_section(*(latest_check[::-1] if latest_check else (None, None))),
        approval=approval_section(store_dir if readable else None, cache),
        progress=progress_of(source, periods),
        staging_readable=readable,
        notes=notes,
    )


def staging_missing_note(source: StoreSource) -> str:
    """What the page says when the staging folder cannot be read here."""
    why = source.staging_note or (
        f"the staging folder {source.staging_dir} does not exist on this api-server"
        if source.staging_dir is not None
        else "the staging root is not a folder on this api-server"
    )
    return (
        f"{why}: showing run states only (no event counts, rejection reasons, automation check, approval "
        "or file links). Mount the staging root on the api-server, or read each run's report task log."
    )


# -- files behind the links ---------------------------------------------------------------------------


def _ndjson(path: Path, limit: int) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for count, line in enumerate(handle):
            if count >= limit:
                return
            if line.strip():
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    yield value


def rejected_view(period_dir: Path, limit: int = MAX_FILE_LINES) -> list[dict[str, Any]]:
    """The period's rejected events as ``{"line", "errors": [{"path", "code"}]}``: where and why, never
    the event itself (it holds the customer's email and name)."""
    path = period_dir / file_name("rejected")
    if not path.is_file():
        return []
    rows = []
    for row in _ndjson(path, limit):
        errors = [e for e in row.get("errors") or [] if isinstance(e, dict)]
        where = [{"path": redact(e.get("path", "")), "code": redact(e.get("code", ""))} for e in errors]
        rows.append({"line": row.get("line"), "errors": where})
    return rows


def dead_letter_view(period_dir: Path, limit: int = MAX_FILE_LINES) -> list[dict[str, Any]]:
    """The period's dead letters as ``{"eventID", "stage", "response_code", "reason"}`` (reason
    redacted), from every file in ``dead_letters/``; never the event body."""
    folder = period_dir / DEAD_LETTERS_DIR
    if not folder.is_dir():
        return []
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.ndjson")):
        for row in _ndjson(path, limit - len(rows)):
            event = row.get("event")
            event = event if isinstance(event, dict) else {}
            rows.append({
                "eventID": redact(event.get("eventID", "")),
                "stage": row.get("stage"),
                "response_code": row.get("response_code"),
                "reason": redact(row.get("reason", "")),
            })  # fmt: skip
        if len(rows) >= limit:
            break
    return rows
