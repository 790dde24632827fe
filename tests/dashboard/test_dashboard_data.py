"""The dashboard's data layer on synthetic staging: states and marks, counts, reasons, the check, the
approval, progress, the note without staging, and no email anywhere."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from airflow_omnisend.dashboard import data
from airflow_omnisend.dashboard.data import (
    JsonCache,
    RunRecord,
    StoreSource,
    dead_letter_view,
    period_state,
    rejected_view,
    summarize_store,
)
from airflow_omnisend.testing.dashboard_staging import (
    CUSTOMER_EMAIL,
    SyntheticPeriod,
    write_approval,
    write_period,
    write_store,
)

DAG = "omnisend_orders__demo"


def _run(period: str, state: str) -> RunRecord:
    return RunRecord(period, f"backfill__{period}", state, "backfill", "2026-12-01T10:00:00Z")


def _world(tmp_path: Path) -> StoreSource:
    store_dir = tmp_path / "demo"
    periods = [
        SyntheticPeriod("2024-03-05", accepted=120, rejected=3, reasons={"format": 2, "required": 1}),
        SyntheticPeriod("2024-03-06", accepted=0, rejected=0, outcome=None, report=False),
        SyntheticPeriod("2024-03-07", accepted=0, rejected=1, outcome="blocked", report=False),
        SyntheticPeriod("2024-03-08", accepted=90, rejected=0, dead_lettered=2, outcome="approved"),
    ]
    for period in periods:
        write_period(store_dir, "demo", period)
    write_approval(store_dir)
    runs = (
        _run("2024-03-05", "success"),
        _run("2024-03-06", "failed"),
        _run("2024-03-07", "failed"),
        _run("2024-03-08", "success"),
    )
    return StoreSource("demo", DAG, runs, store_dir)


def test_states_marks_and_counts(tmp_path: Path) -> None:
    summary = summarize_store(_world(tmp_path))
    states = {p.period: (p.state, p.mark) for p in summary.periods}
    assert states == {
        "2024-03-05": ("success", None),
        "2024-03-06": ("failed", "failed"),
        "2024-03-07": ("blocked", "blocked"),
        "2024-03-08": ("success", "approved"),
    }
    assert [p.period for p in summary.periods] == sorted(states)
    assert summary.counts == {
        "done": 2,
        "running": 0,
        "failed": 1,
        "blocked": 1,
        "accepted": 210,
        "rejected": 4,  # 3 from the report, 1 from the blocked day's validation.json
        "dead_lettered": 2,
        "periods": 4,
    }
    first, last = summary.period("2024-03-05"), summary.period("2024-03-08")
    assert first is not None
    assert (first.has_report, first.has_rejected, first.has_dead_letters) == (
        True,
        True,
        False,
    )
    blocked = summary.period("2024-03-07")
    assert blocked is not None
    assert (blocked.has_report, blocked.has_rejected) == (False, True)
    assert last is not None
    assert last.has_dead_letters
    assert not last.has_rejected
    assert summary.reasons == [("format", 2 + 3 * 2), ("required", 1)]  # 3 periods of {"format": 2}
    assert summary.last_run == "2026-12-01T10:00:00Z"


def test_latest_check_and_the_kept_approval(tmp_path: Path) -> None:
    summary = summarize_store(_world(tmp_path))
    assert summary.check["verdict"] == "warn"
    assert summary.check["period"] == "2024-03-08"
    assert summary.check["automations"] == [{"id": "64b0c0ffee", "name": "Order confirmation"}]
    assert summary.approval is not None
    assert summary.approval["reason"].startswith("history only")
    assert summary.approval["approved_by"] == "admin"


def test_verdicts_by_outcome() -> None:
    assert data.check_section({"outcome": "blocked"}, "p")["verdict"] == "block"
    assert data.check_section({"outcome": "awaiting_approval"}, "p")["verdict"] == "block"
    assert data.check_section({"outcome": "acknowledged"}, "p")["verdict"] == "warn"
    assert data.check_section({"outcome": "passed", "warnings": []}, "p")["verdict"] == "pass"
    assert data.check_section({"outcome": "passed", "warnings": ["w"]}, "p")["verdict"] == "warn"
    assert data.check_section(None, None)["verdict"] == "unknown"


def test_running_and_awaiting_periods() -> None:
    running = RunRecord("2024-03-09", "r", "running")
    assert period_state(running, None) == ("running", None)
    assert period_state(running, "awaiting_approval") == ("awaiting_approval", "blocked")
    assert period_state(RunRecord("2024-03-09", "r", "success"), "acknowledged") == (
        "success",
        "acknowledged",
    )
    assert period_state(None, "passed") == ("no_run", None)


def test_the_latest_run_of_a_period_counts(tmp_path: Path) -> None:
    old = RunRecord("2024-03-05", "a", "failed", started="2026-12-01T09:00:00Z")
    new = RunRecord("2024-03-05", "b", "success", started="2026-12-01T10:00:00Z")
    summary = summarize_store(StoreSource("demo", DAG, (new, old), tmp_path / "none"))
    (period,) = summary.periods
    assert (period.run_id, period.state) == ("b", "success")


def test_progress_of_the_active_backfill(tmp_path: Path) -> None:
    keys = write_store(tmp_path, "demo", 4)
    runs = tuple(
        RunRecord(p, f"r{i}", "success" if i < 2 else "queued", backfill_id=7) for i, p in enumerate(keys)
    )
    source = StoreSource("demo", DAG, runs, tmp_path / "demo", active_backfill=7, rate_per_minute=60)
    progress = summarize_store(source).progress
    assert progress is not None
    assert (progress.periods_total, progress.periods_left, progress.requests_per_period) == (4, 2, 1.0)
    assert progress.seconds_left == 2 * 1.0 / 60 * 60
    assert summarize_store(StoreSource("demo", DAG, runs, tmp_path / "demo")).progress is None


def test_without_staging_it_shows_run_states_and_says_what_is_missing(tmp_path: Path) -> None:
    runs = (_run("2024-03-05", "success"), _run("2024-03-06", "failed"))
    why = "the staging root s3://aws@bucket/stage is not a folder on this api-server"
    summary = summarize_store(StoreSource("demo", DAG, runs, None, staging_note=why))
    assert [(p.period, p.state, p.accepted) for p in summary.periods] == [
        ("2024-03-05", "success", None),
        ("2024-03-06", "failed", None),
    ]
    assert not summary.staging_readable
    (note,) = summary.notes
    assert why in note
    assert "run states only" in note
    assert summary.check["verdict"] == "unknown"
    missing = summarize_store(StoreSource("demo", DAG, runs, tmp_path / "absent"))
    assert "does not exist" in missing.notes[0]


def test_nothing_carries_an_email(tmp_path: Path) -> None:
    summary = summarize_store(_world(tmp_path))
    assert CUSTOMER_EMAIL not in json.dumps(summary.to_dict())
    rejected = rejected_view(tmp_path / "demo" / "2024-03-05")
    assert len(rejected) == 3
    assert rejected[0] == {"line": 1, "errors": [{"path": "/contact/email", "code": "format"}]}
    dead = dead_letter_view(tmp_path / "demo" / "2024-03-08")
    assert dead == [
        {"eventID": "e9", "stage": "send", "response_code": 400, "reason": "contact <email> is blocked"}
    ]
    assert data.redact("write to a.b+c@shop.example, please") == "write to <email>, please"


def test_the_cache_rereads_a_changed_file_only(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text('{"a": 1}')
    cache = JsonCache()
    first = cache.read(path)
    assert first == {"a": 1}
    assert cache.read(path) is first
    path.write_text('{"a": 22}')
    assert cache.read(path) == {"a": 22}
    path.write_text("[1]")
    assert cache.read(path) is None
    assert cache.read(tmp_path / "missing.json") is None
    small = JsonCache(max_entries=2)
    for name in "abc":
        (tmp_path / name).write_text("{}")
        assert small.read(tmp_path / name) == {}
    assert len(small._entries) <= 2


def test_only_period_folders_count(tmp_path: Path) -> None:
    write_store(tmp_path, "demo", 2)
    write_approval(tmp_path / "demo")
    (tmp_path / "demo" / "file-imports").mkdir()
    assert sorted(data.staged_periods(tmp_path / "demo")) == ["2022-01-01", "2022-01-02"]
    assert not data.is_period("../etc")
    assert data.is_period("2024-W10")
    assert data.is_period("2024-03")


def test_the_data_layer_imports_neither_airflow_nor_fastapi() -> None:
    tree = ast.parse(Path(data.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in names if m.split(".")[0] in ("airflow", "fastapi", "starlette")}
