"""locked_file: one small state file, read and rewritten whole by one holder at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from typing import TYPE_CHECKING

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.hooks._locked_file import locked_file

if TYPE_CHECKING:
    from pathlib import Path

_COUNTER = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from airflow_omnisend.hooks._locked_file import locked_file
    path, rounds = Path(sys.argv[1]), int(sys.argv[2])
    lock = threading.Lock()

    def count():
        for _ in range(rounds):
            with locked_file(path, lock) as state:
                state.replace(str(int(state.raw or b"0") + 1).encode())

    threads = [threading.Thread(target=count) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    """
)


def test_a_new_file_is_created_empty_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "state" / "brand.json"
    lock = threading.Lock()
    with locked_file(path, lock) as state:
        assert state.raw == b""
        state.replace(b'{"starts":[1.0,2.0,3.0]}')
    with locked_file(path, lock) as state:
        assert state.raw == b'{"starts":[1.0,2.0,3.0]}'
        state.replace(b"{}")  # shorter: nothing of the old content stays behind
    assert path.read_bytes() == b"{}"
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


def test_processes_and_threads_never_lose_an_update(tmp_path: Path) -> None:
    """Four processes of three threads each add 1 under the lock 50 times: no increment is lost."""
    path = tmp_path / "counter"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", _COUNTER, str(path), "50"], env=env) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert path.read_bytes() == b"600"


def test_a_folder_that_cannot_be_written_names_the_extra_to_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    refused = pytest.raises(OmnisendConfigError, match=r"not writable.*brand_budget_dir")
    with refused as caught, locked_file(blocker / "brand.json", threading.Lock()):
        pass
    assert str(blocker) in str(caught.value)
