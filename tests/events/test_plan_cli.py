"""``airflow-omnisend plan``: periods (the store's, or ``--period``), events, bodies and requests per API
version, exit codes 0/1/2, no Airflow import."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from airflow_omnisend.cli import main
from airflow_omnisend.hooks._profile import PROFILES
from airflow_omnisend.testing.sample_store import build_sample_store

REPO = Path(__file__).resolve().parent.parent.parent


def event(number: int) -> dict[str, Any]:
    return {
        "eventName": "placed order",
        "eventID": str(uuid.UUID(int=number + 1)),
        "eventTime": "2024-01-01T00:00:00Z",
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"email": f"customer{number}@example.com"},
        "properties": {"orderID": f"o{number}", "currency": "EUR", "totalPrice": 39.98, "lineItems": []},
    }


def write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    rc = main(["plan", *args, "--json"])
    return rc, orjson.loads(capsys.readouterr().out)


def test_an_events_file_is_planned_for_every_api_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_events(tmp_path / "events.ndjson", [event(i) for i in range(250)])
    rc, plan = plan_json(capsys, str(path), "--rate", "120")
    assert rc == 0
    (period,) = plan["periods"]
    assert (period["period"], period["events"], period["valid"], period["rejected"]) == (
        "events.ndjson",
        250,
        250,
        0,
    )
    assert set(period["versions"]) == set(PROFILES)
    for version, figures in period["versions"].items():
        bodies = -(-250 // PROFILES[version].max_items_per_batch)  # the batch size decides the bodies
        assert figures["bodies"] == bodies
        assert figures["total_requests"] == 2 * bodies  # one POST and one poll per body
        assert figures["minutes"] == pytest.approx(2 * bodies / 120, abs=1e-3)
    assert period["versions"]["v5"]["bodies"] == 1
    assert period["versions"]["2026-03-15"]["bodies"] == 3


def test_rejected_events_exit_1_and_the_text_names_each_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {**event(1), "properties": {**event(1)["properties"], "currency": "euro"}}
    path = write_events(tmp_path / "events.ndjson", [event(0), bad])
    assert main(["plan", str(path)]) == 1
    out = capsys.readouterr().out
    assert "2 events, 1 valid, 1 rejected" in out
    assert "API v5: 1 bodies, 2 requests" in out
    assert "API 2026-03-15: 1 bodies, 2 requests" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.ndjson"], "cannot read the events file"),
        (["x.ndjson", "--store", "demo"], "either EVENTS.ndjson or --store"),
        (["--store", "demo", "--from", "2024-03-04"], "--store needs --from DAY and --to DAY"),
        (["x.ndjson", "--rate", "0"], "--rate must be > 0"),
    ],
)
def test_unusable_input_exits_2_naming_the_fix(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plan", *args]) == 2
    assert message in capsys.readouterr().err


def _stores_file(tmp_path: Path, start_date: str = "2024-03-04", **source: str) -> Path:
    lines = [
        "stores:",
        "  - store_id: shop",
        "    omnisend_conn_id: omnisend_shop",
        "    timezone: Europe/Vilnius",
        f"    start_date: {start_date}",
        *(f"    {key}: {value}" for key, value in source.items()),
    ]
    path = tmp_path / "stores.yaml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_a_store_with_a_sqlite_source_is_planned_day_by_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shop.sqlite"
    summary = build_sample_store(db, 300, 7, timezone="Europe/Vilnius", start=date(2024, 3, 4), days=3)
    stores = _stores_file(tmp_path, source_conn_id="shop_db")
    args = ["--store", "shop", "--stores", str(stores), "--from", "2024-03-04", "--to", "2024-03-06"]
    rc, plan = plan_json(capsys, *args, "--sqlite", str(db))
    assert [p["period"] for p in plan["periods"]] == ["2024-03-04", "2024-03-05", "2024-03-06"]
    totals = plan["totals"]
    assert totals["events"] == sum(p["events"] for p in plan["periods"]) > 0
    assert totals["valid"] + totals["rejected"] == totals["events"]
    assert rc == (1 if totals["rejected"] else 0)  # the sample store is dirty on purpose
    assert totals["events"] <= summary.total_events  # events after 2024-03-06 fall outside the range
    for version, figures in totals["versions"].items():
        assert figures["bodies"] == sum(p["versions"][version]["bodies"] for p in plan["periods"])
    # without --sqlite the Airflow connection would be needed: refused with the fix
    assert main(["plan", *args]) == 2
    assert "pass --sqlite PATH" in capsys.readouterr().err


def test_a_month_store_is_planned_by_month_and_period_overrides_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shop.sqlite"
    build_sample_store(db, 200, 3, timezone="Europe/Vilnius", start=date(2024, 3, 29), days=5)
    stores = _stores_file(tmp_path, "2024-03-01", source_conn_id="shop_db", period="month")
    store = ["--store", "shop", "--stores", str(stores), "--sqlite", str(db)]
    # the store's period: every month with a day in the range, whole (the DST change of 03-31 inside)
    rc, by_month = plan_json(capsys, *store, "--from", "2024-03-15", "--to", "2024-04-02")
    assert [p["period"] for p in by_month["periods"]] == ["2024-03", "2024-04"]
    rc_keys, by_keys = plan_json(capsys, *store, "--from", "2024-03", "--to", "2024-04")
    assert (rc_keys, by_keys) == (rc, by_month)  # month keys name the same range
    _, by_day = plan_json(capsys, *store, "--period", "day", "--from", "2024-03-01", "--to", "2024-04-30")
    assert len(by_day["periods"]) == 61
    assert by_day["periods"][0]["period"] == "2024-03-01"
    assert by_day["totals"]["events"] == by_month["totals"]["events"] > 0  # each event in one period
    assert by_day["totals"]["valid"] == by_month["totals"]["valid"]
    _, by_week = plan_json(capsys, *store, "--period", "week", "--from", "2024-03-29", "--to", "2024-W14")
    assert [p["period"] for p in by_week["periods"]] == ["2024-W13", "2024-W14"]


def test_a_day_store_defaults_to_days_and_period_fits_the_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_events(tmp_path / "source.ndjson", [event(i) for i in range(3)])
    stores = _stores_file(tmp_path, source_path=str(source))
    args = ["--store", "shop", "--stores", str(stores), "--from", "2024-01-01", "--to", "2024-01-01"]
    assert main(["plan", *args]) == 0
    assert capsys.readouterr().out.startswith("2024-01-01: 3 events, 3 valid, 0 rejected")
    assert main(["plan", *args, "--period", "month"]) == 0
    assert capsys.readouterr().out.startswith("2024-01: 3 events, 3 valid, 0 rejected")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x.ndjson", "--period", "month"], "--period plans a store"),
        (["--period", "month", "--from", "2024-03", "--to", "2024-02"], "is before --from"),
        (["--period", "week", "--from", "2024-03", "--to", "2024-W10"], "--from '2024-03' is not a day"),
    ],
)
def test_a_period_that_does_not_fit_exits_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_events(tmp_path / "source.ndjson", [event(0)])
    stores = _stores_file(tmp_path, source_path=str(source))
    store = [] if "x.ndjson" in args else ["--store", "shop", "--stores", str(stores)]
    assert main(["plan", *store, *args]) == 2
    assert message in capsys.readouterr().err


def test_a_store_with_an_events_file_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = [event(i) for i in range(5)]
    source = write_events(tmp_path / "source.ndjson", events)
    stores = _stores_file(tmp_path, source_path=str(source))
    args = ["--store", "shop", "--stores", str(stores), "--from", "2024-01-01", "--to", "2024-01-01"]
    rc, plan = plan_json(capsys, *args)
    assert rc == 0
    assert plan["totals"]["valid"] == 5


def test_never_imports_airflow(tmp_path: Path) -> None:
    path = write_events(tmp_path / "events.ndjson", [event(0)])
    code = (
        "import sys\n"
        "from airflow_omnisend.cli import main\n"
        f"rc = main(['plan', {str(path)!r}])\n"
        "leaked = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not leaked, leaked\n"
        "sys.exit(rc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "API v5: 1 bodies" in result.stdout
