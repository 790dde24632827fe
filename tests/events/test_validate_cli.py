"""``airflow-omnisend validate``: summary line, output files, exit codes 0/1/2, no Airflow, fast start."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from airflow_omnisend.cli import main

if TYPE_CHECKING:
    from pathlib import Path

GOOD = {
    "eventName": "placed order",
    "eventID": "f1eeb5bd-736c-42c7-9cfe-6990f7f59b35",
    "eventTime": "2024-01-01T00:00:00Z",
    "eventVersion": "v2",
    "origin": "api",
    "contact": {"email": "customer@example.com"},
    "properties": {"orderID": "4122111", "currency": "EUR", "totalPrice": 39.98, "lineItems": []},
}


def with_props(**props: Any) -> dict[str, Any]:
    """GOOD with other properties, and an eventID of its own (one eventID+eventTime per event)."""
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, repr(sorted(props.items()))))
    return {**GOOD, "eventID": event_id, "properties": {**GOOD["properties"], **props}}


def write_ndjson(path: Path, *events: Any) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def cli(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_omnisend.cli", "validate", *map(str, args)],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_all_valid_exits_0_with_a_one_line_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", GOOD, with_props(orderID="2"))
    valid = tmp_path / "valid.ndjson"
    assert main(["validate", str(events), "--valid", str(valid)]) == 0
    out, err = capsys.readouterr()
    assert out == "2 events: 2 valid, 0 rejected, 0 warnings\n"
    assert err == ""
    assert valid.read_bytes() == events.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.ndjson", "valid.ndjson"]


def test_rejections_exit_1_and_go_to_the_rejected_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_total = {**with_props(), "properties": {"orderID": "3", "currency": "EUR", "lineItems": []}}
    events = write_ndjson(
        tmp_path / "events.ndjson",
        GOOD,
        with_props(orderID="1", currency="eur"),
        with_props(orderID="2", currency="EURO", totalPrice=-1),
        no_total,
    )
    rejected = tmp_path / "rejected.ndjson"
    assert main(["validate", str(events), "--rejected", str(rejected)]) == 1
    out, _ = capsys.readouterr()
    assert out == (
        "4 events: 2 valid, 2 rejected (top reasons: currency_not_iso4217 2, negative_money 1), 1 warning\n"
    )
    records = [orjson.loads(line) for line in rejected.read_bytes().splitlines()]
    assert [r["event"]["properties"]["orderID"] for r in records] == ["1", "2"]
    assert records[0]["errors"] == [
        {
            "path": "properties.currency",
            "message": "'eur' is not an ISO 4217 currency code (upper case, e.g. EUR)",
            "code": "currency_not_iso4217",
        }
    ]


def test_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", GOOD, {"eventName": "viewed product"})
    assert main(["validate", str(events), "--json"]) == 1
    summary = orjson.loads(capsys.readouterr().out)
    assert summary["events"] == 2
    assert summary["by_event_name"]["(unknown)"] == {"total": 1, "valid": 0, "rejected": 1}
    assert summary["rejects_by_reason"] == {"unknown_event_name": 1}


def test_missing_file_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    result = cli(tmp_path / "nope.ndjson", "--valid", tmp_path / "valid.ndjson")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "nope.ndjson" in result.stderr
    assert "cannot read the events file: No such file or directory" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_directory_is_unusable_input(tmp_path: Path) -> None:
    result = cli(tmp_path)
    assert result.returncode == 2
    assert "cannot read the events file" in result.stderr


def test_a_line_that_is_not_json_exits_2_naming_the_line_and_leaves_outputs_alone(tmp_path: Path) -> None:
    events = tmp_path / "events.ndjson"
    events.write_bytes(orjson.dumps(GOOD) + b"\n\n" + b'{"eventName": "placed order",\n' + orjson.dumps(GOOD))
    valid = tmp_path / "valid.ndjson"
    valid.write_bytes(b"from an earlier run\n")
    result = cli(events, "--valid", valid, "--rejected", tmp_path / "rejected.ndjson")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "line 3: not JSON" in result.stderr
    assert result.stderr.count("\n") == 1
    assert valid.read_bytes() == b"from an earlier run\n"  # not replaced by half a run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.ndjson", "valid.ndjson"]


def test_a_line_that_is_not_an_object_exits_2(tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", GOOD, [GOOD])
    result = cli(events)
    assert result.returncode == 2
    assert "line 2: an array where an event (a JSON object) was expected" in result.stderr


def test_unwritable_output_exits_2(tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", GOOD)
    result = cli(events, "--rejected", tmp_path / "no" / "such" / "dir" / "rejected.ndjson")
    assert result.returncode == 2
    assert "cannot write --rejected" in result.stderr


@pytest.mark.parametrize(
    ("valid", "rejected", "message"),
    [
        ("out.ndjson", "out.ndjson", "--rejected out.ndjson is the same file as --valid"),
        ("events.ndjson", None, "--valid events.ndjson is the same file as EVENTS.ndjson"),
    ],
)
def test_outputs_that_would_overwrite_each_other_or_the_input_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    valid: str,
    rejected: str | None,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    events = write_ndjson(tmp_path / "events.ndjson", GOOD)
    before = events.read_bytes()
    args = ["validate", "events.ndjson", "--valid", valid] + (["--rejected", rejected] if rejected else [])
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert events.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.ndjson"]


def test_reads_standard_input() -> None:
    result = cli("-", stdin=orjson.dumps(GOOD) + b"\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1 events: 1 valid, 0 rejected, 0 warnings\n"


def test_help_names_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_omnisend.cli", "validate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    for option in ("--valid", "--rejected", "--json", "EVENTS.ndjson"):
        assert option in result.stdout


def test_never_imports_airflow_and_starts_fast(tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", GOOD, with_props(currency="eur"))
    code = (
        "import sys\n"
        "from airflow_omnisend.cli import main\n"
        f"rc = main(['validate', {str(events)!r}])\n"
        "leaked = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not leaked, leaked\n"
        "sys.exit(rc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1, (
        result.stderr
    )  # one rejected event: the rejection path (jsonschema) ran too
    assert "AssertionError" not in result.stderr
    # "well under a second": ~0.1-0.2 s here; the bound leaves room for a loaded CI machine
    assert elapsed < 1.5, elapsed


def test_an_output_that_is_a_symlink_is_written_through(tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", GOOD)
    real = tmp_path / "kept" / "valid.ndjson"
    real.parent.mkdir()
    real.write_bytes(b"old\n")
    link = tmp_path / "valid-link.ndjson"
    link.symlink_to(real)
    assert main(["validate", str(events), "--valid", str(link)]) == 0
    assert link.is_symlink()
    assert link.resolve() == real
    assert real.read_bytes() == orjson.dumps(GOOD) + b"\n"
    assert not list(tmp_path.glob("*.partial"))
    assert not list(real.parent.glob("*.partial"))


def test_an_output_that_is_a_device_or_fifo_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO in tmp_path stands for a device (replacing /dev/null as root would break the machine)."""
    events = write_ndjson(tmp_path / "events.ndjson", GOOD)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "pipe-link"
    link.symlink_to(fifo)
    for target in (fifo, link):
        assert main(["validate", str(events), "--valid", str(target)]) == 2
        assert "is not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert link.is_symlink()


def test_an_output_that_is_a_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", GOOD)
    assert main(["validate", str(events), "--rejected", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def _codes(rejected: Path) -> list[str]:
    return [e["code"] for line in rejected.read_bytes().splitlines() for e in orjson.loads(line)["errors"]]


def test_the_cli_applies_the_dag_rules_collision_body_limit_and_min_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    recent = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    big = with_props(orderID="big", note="x" * 1_000_000)
    events = write_ndjson(
        tmp_path / "events.ndjson",
        GOOD,
        {**GOOD, "properties": {**GOOD["properties"], "totalPrice": 1}},  # GOOD's eventID + eventTime
        big,
        {**with_props(orderID="recent"), "eventTime": recent},
    )
    rejected = tmp_path / "rejected.ndjson"
    assert main(["validate", str(events), "--rejected", str(rejected)]) == 1
    assert "1 valid, 3 rejected" in capsys.readouterr().out
    assert _codes(rejected) == ["event_id_collision", "over_body_limit", "event_time_too_recent"]
    # with the limits relaxed the same file only has the collision
    assert main(
        ["validate", str(events), "--rejected", str(rejected), "--max-payload-bytes", "2000000",
         "--min-age-seconds", "0"]
    ) == 1  # fmt: skip
    assert _codes(rejected) == ["event_id_collision"]


def test_bad_limits_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = write_ndjson(tmp_path / "events.ndjson", GOOD)
    for option, value in (
        ("--max-payload-bytes", "10"),
        ("--min-age-seconds", "-1"),
        ("--max-line-bytes", "5"),
    ):
        assert main(["validate", str(events), option, value]) == 2
        assert option.lstrip("-").replace("-", "_") in capsys.readouterr().err.replace("-", "_")


def test_the_cli_min_age_is_the_dags_and_the_safety_checks_default() -> None:
    """One rule, defined in events/timefmt.py and imported by the CLI, the DAGs and the safety check."""
    import inspect

    from airflow_omnisend.events.timefmt import DEFAULT_MIN_EVENT_AGE as RULE
    from airflow_omnisend.events.validate_cli import DEFAULT_MIN_EVENT_AGE
    from airflow_omnisend.operators.partition import DEFAULT_MIN_EVENT_AGE as DAG_DEFAULT
    from airflow_omnisend.operators.safety import OmnisendAutomationSafetyOperator

    assert DEFAULT_MIN_EVENT_AGE is DAG_DEFAULT is RULE
    check = inspect.signature(OmnisendAutomationSafetyOperator.__init__).parameters["min_event_age"]
    assert check.default is RULE


def test_times_in_the_events_contract_forms_validate_and_are_written_canonical(tmp_path: Path) -> None:
    """Issue 11 §3: a file with the 2026-03-15 contract's other eventTime forms passes the command (a
    real process), and --valid holds the canonical UTC strings; other forms are rejected with the reason."""
    forms = {
        "2024-01-01 02:00:00+02:00": "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.1234567Z": "2024-01-01T00:00:00.123456Z",
        "2023-12-31t19:00:00-0500": "2024-01-01T00:00:00Z",
        "2024-01-01T03:00:00.250+03": "2024-01-01T00:00:00.250Z",
    }
    events = [
        {**with_props(orderID=str(i)), "eventTime": written}
        for i, written in enumerate([*forms, "2024-01-01 00:00:00"])
    ]
    source = write_ndjson(tmp_path / "events.ndjson", *events)
    valid, rejected = tmp_path / "valid.ndjson", tmp_path / "rejected.ndjson"
    result = cli(source, "--valid", valid, "--rejected", rejected)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("5 events: 4 valid, 1 rejected (top reasons: event_time_format 1)")
    written = [orjson.loads(line) for line in valid.read_bytes().splitlines()]
    assert written == [
        {**e, "eventTime": canonical} for e, canonical in zip(events, forms.values(), strict=False)
    ]
    (record,) = [orjson.loads(line) for line in rejected.read_bytes().splitlines()]
    assert record["line"] == 5
    assert "a UTC offset" in record["errors"][0]["message"]
