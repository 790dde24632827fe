"""``make demo`` (``airflow-omnisend demo``) end to end, twice: the second run sends no batch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("airflow-omnisend"))


def _demo(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "demo", "--home", str(home), "--dags-folder", str(REPO / "dags")],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def test_demo_backfills_seven_days_and_a_second_run_sends_nothing(tmp_path: Path) -> None:
    first = _demo(tmp_path / "demo")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    days = re.findall(r"^(2024-03-(?:0[4-9]|10)): success .* -> (\S+report\.json)$", first.stdout, re.M)
    assert [d for d, _ in days] == [f"2024-03-{n:02d}" for n in range(4, 11)]
    assert all(Path(path).is_file() for _, path in days)
    sent = re.search(r"7 days in \d+s: (\d+) batches sent this run, (\d+) new events accepted", first.stdout)
    assert sent, first.stdout
    assert int(sent.group(1)) >= 7
    assert int(sent.group(2)) > 0

    second = _demo(tmp_path / "demo")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "7 days in" in second.stdout
    assert ": 0 batches sent this run, 0 new events accepted" in second.stdout
    assert "Nothing was sent" in second.stdout
