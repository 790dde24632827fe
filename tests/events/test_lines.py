"""The line cap: a line longer than the cap fails naming the line and the cap, with memory kept flat."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from airflow_omnisend.events.lines import (
    MAX_LINE_BYTES,
    LineTooLongError,
    capped_lines,
    capped_text_lines,
    check_line_cap,
)
from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    from pathlib import Path


def test_lines_up_to_the_cap_pass_unchanged() -> None:
    data = b"a" * 1024 + b"\n" + b"b\n" + b"c"
    assert list(capped_lines(io.BytesIO(data), limit=1024)) == [b"a" * 1024 + b"\n", b"b\n", b"c"]


def test_a_line_over_the_cap_names_its_number_and_the_cap() -> None:
    data = b"ok\n" + b"x" * 1025 + b"\n"
    with pytest.raises(LineTooLongError, match=r"events: line 2 is longer than 1024 bytes \(the line cap\)"):
        list(capped_lines(io.BytesIO(data), limit=1024, what="events"))


def test_text_lines_are_capped_too() -> None:
    with pytest.raises(LineTooLongError, match="line 1 is longer than 1024"):
        list(capped_text_lines(io.StringIO("y" * 5000), limit=1024))
    assert list(capped_text_lines(io.StringIO("a,b\n1,2\n"), limit=1024)) == ["a,b\n", "1,2\n"]


@pytest.mark.parametrize("cap", [0, 1023, True, "4MB", (1 << 30) + 1])
def test_a_cap_out_of_range_is_a_config_error(cap: object) -> None:
    with pytest.raises(OmnisendConfigError, match="max_line_bytes"):
        check_line_cap(cap)  # type: ignore[arg-type]


def test_the_default_cap_is_well_above_the_body_limit() -> None:
    assert MAX_LINE_BYTES >= 4 * (1 << 20)


@pytest.fixture(scope="module")
def line_of_100_mb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "no-newline.ndjson"
    with path.open("wb") as out:
        chunk = b"0" * (1 << 20)
        for _ in range(100):
            out.write(chunk)
    return path


# VmHWM is the peak of this process's own memory map: unlike ru_maxrss, which Linux carries across
# exec, it does not start at the size of the (large, long-running) pytest process that forked it
_PEAK_RSS = """
import sys
{body}
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def _peak_rss_mb(body: str) -> tuple[int, str]:
    """Run ``body`` in a fresh interpreter; return its peak RSS in MB and its stderr."""
    code = _PEAK_RSS.format(body=textwrap.dedent(body))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) // 1024, done.stderr


@pytest.mark.parametrize(
    "reader",
    [
        "from airflow_omnisend.events.validate_cli import run as _unused\n"
        "from airflow_omnisend.cli import main\n"
        "code = main(['validate', PATH])\n"
        "assert code == 2, code",
        "from airflow_omnisend.sources.files import NdjsonEventSource\n"
        "from airflow_omnisend.events.partition import PartitionWindow\n"
        "from airflow_omnisend.events.lines import LineTooLongError\n"
        "try:\n"
        "    list(NdjsonEventSource(PATH).iter_events('s', PartitionWindow.for_day('2024-01-01', 'UTC'),"
        " print))\n"
        "except LineTooLongError as exc:\n"
        "    sys.stderr.write(str(exc))\n"
        "else:\n"
        "    raise SystemExit('not refused')",
        "from airflow_omnisend.sources.files import OrderCsvSource\n"
        "from airflow_omnisend.events.lines import LineTooLongError\n"
        "try:\n"
        "    OrderCsvSource(PATH)\n"
        "except LineTooLongError as exc:\n"
        "    sys.stderr.write(str(exc))\n"
        "else:\n"
        "    raise SystemExit('not refused')",
    ],
    ids=["validate-cli", "ndjson-events-source", "csv-source"],
)
@pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="peak RSS is read from /proc/self/status (Linux only)"
)
def test_a_100_mb_line_without_newline_is_refused_with_flat_memory(line_of_100_mb: Path, reader: str) -> None:
    peak_mb, stderr = _peak_rss_mb(f"PATH = {str(line_of_100_mb)!r}\n{reader}")
    assert "line 1 is longer than 4194304 bytes" in stderr
    assert peak_mb < 200, f"peak RSS {peak_mb} MB"
