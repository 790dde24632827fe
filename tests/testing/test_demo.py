"""``make demo`` (``airflow-omnisend demo``) end to end, twice: the second run sends no batch.

The first run has ``--keep-up``: it prints the dashboard's URL, stays up (Airflow answering) until
Ctrl-C, then stops cleanly; the second is ``make demo``'s default and ends by itself.
"""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from airflow_omnisend.testing.demo import DASHBOARD_PATH, KEEP_UP_LINE

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("airflow-omnisend"))
DEMO_TIMEOUT = 900.0


def _argv(home: Path, *extra: str) -> list[str]:
    return [CLI, "demo", "--home", str(home), "--dags-folder", str(REPO / "dags"), *extra]


def _demo(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(home), cwd=REPO, capture_output=True, text=True, timeout=DEMO_TIMEOUT, check=False
    )


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _demo_kept_up(home: Path) -> tuple[int, str, str]:
    """Run the demo with ``--keep-up``; once it says it stays up, check Airflow answers at the printed
    dashboard URL's server, press Ctrl-C (SIGINT), and check it stopped. Returns (code, stdout, url)."""
    process = subprocess.Popen(
        _argv(home, "--keep-up"), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=DEMO_TIMEOUT)
            assert line is not None, "the demo ended without staying up:\n" + "".join(seen)[-4000:]
            seen.append(line)
            if line.startswith(KEEP_UP_LINE):
                break
        found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/\S*)", line)
        assert found, line
        url = found.group(1)
        api = urlsplit(url)
        assert api.path == DASHBOARD_PATH
        assert _status(f"{api.scheme}://{api.netloc}/api/v2/monitor/health") == 200
        assert _status(url) in (200, 401, 404)  # the api-server answers (404 without the dashboard)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    while (rest := lines.get(timeout=60)) is not None:  # the reader's end mark: stdout closed
        seen.append(rest)
    with pytest.raises(ConnectionRefusedError):  # nothing listens there any more
        socket.create_connection((api.hostname, api.port), timeout=5).close()
    return code, "".join(seen), url


def test_demo_backfills_seven_days_and_a_second_run_sends_nothing(tmp_path: Path) -> None:
    code, stdout, url = _demo_kept_up(tmp_path / "demo")
    assert code == 0, stdout[-6000:]
    assert f"dashboard: {url}" in stdout
    assert "Ctrl-C: stopping Airflow" in stdout
    days = re.findall(r"^(2024-03-(?:0[4-9]|10)): success .* -> (\S+report\.json)$", stdout, re.M)
    assert [d for d, _ in days] == [f"2024-03-{n:02d}" for n in range(4, 11)]
    assert all(Path(path).is_file() for _, path in days)
    sent = re.search(r"7 days in \d+s: (\d+) batches sent this run, (\d+) new events accepted", stdout)
    assert sent, stdout
    assert int(sent.group(1)) >= 7
    assert int(sent.group(2)) > 0

    second = _demo(tmp_path / "demo")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "7 days in" in second.stdout
    assert "dashboard: http://127.0.0.1:" in second.stdout
    assert KEEP_UP_LINE not in second.stdout
    assert ": 0 batches sent this run, 0 new events accepted" in second.stdout
    assert "Nothing was sent" in second.stdout
