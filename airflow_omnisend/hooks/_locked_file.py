"""A small state file shared by every process of one machine, read and rewritten whole under ``flock``.

The brand budget and the shared batch listing both keep a few hundred bytes of JSON beside each other
under ``brand_budget_dir``. The lock is held only while the state is read and rewritten, never while
waiting; threads of one process queue on their own lock first (``flock`` is per open file, not per
thread).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import TYPE_CHECKING

from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["LockedFile", "locked_file"]


class LockedFile:
    """The content of a file held under an exclusive ``flock``: ``raw`` as read, ``replace`` to rewrite."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        self.raw = b"".join(chunks)

    def replace(self, data: bytes) -> None:
        """Rewrite the whole file with ``data`` (still under the lock)."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)
        os.ftruncate(self._fd, len(data))
        self.raw = data


@contextlib.contextmanager
def locked_file(path: Path, thread_lock: threading.Lock) -> Iterator[LockedFile]:
    """``path`` (created, with its folder, when missing) locked for this thread and process.

    A folder that cannot be written is a configuration error naming ``brand_budget_dir``, the extra
    that chooses it."""
    with thread_lock:
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise OmnisendConfigError(
                f"brand budget directory {str(path.parent)!r} is not writable ({err.strerror}). "
                "Fix: set the connection extra brand_budget_dir to a directory every task process "
                "can write, or brand_budget to redis or process."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield LockedFile(fd)
        finally:
            os.close(fd)  # closing releases the lock
