"""Reading NDJSON and CSV lines with a cap on a line's length, so that memory stays flat.

A file without a newline (a device, an endless stream, a 2 GB file of zeros) would otherwise be read
into memory whole as its "first line". Every reader of event, order and CSV lines goes through
:func:`capped_lines` (bytes) or :func:`capped_text_lines` (text, for :mod:`csv`): a line longer than the
cap fails at once, naming the line number and the cap; at most the cap is ever held in memory.

The default cap, :data:`MAX_LINE_BYTES` (4 MiB), is four times the largest request body Omnisend takes
(1 MiB): no valid event, order or CSV row comes near it.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Final

from airflow_omnisend.checks import check_int
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["MAX_LINE_BYTES", "LineTooLongError", "capped_lines", "capped_text_lines", "check_line_cap"]

#: The longest line (without its newline) any reader accepts by default: 4 MiB.
MAX_LINE_BYTES: Final = 4 * 1024 * 1024
_LARGEST_CAP: Final = 1 << 30


class LineTooLongError(OmnisendInputError):
    """A line is longer than the cap (usually: the file has no newlines, or is not NDJSON/CSV at all)."""


def check_line_cap(limit: int) -> int:
    """``limit`` when it is a usable line cap (1 KiB to 1 GiB); raises naming the fix otherwise."""
    fix = f"pass a cap in bytes, e.g. {MAX_LINE_BYTES}"
    check_int("max_line_bytes", limit, minimum=1024, fix=fix)
    if limit > _LARGEST_CAP:
        raise OmnisendConfigError(f"max_line_bytes must be <= {_LARGEST_CAP}, got {limit}; {fix}")
    return limit


def _too_long(what: str, number: int, limit: int) -> LineTooLongError:
    return LineTooLongError(
        f"{what}: line {number} is longer than {limit} bytes (the line cap) without a newline; "
        "is it NDJSON/CSV (one record per line)? Split the file into lines, or raise max_line_bytes"
    )


def capped_lines(src: IO[bytes], *, limit: int = MAX_LINE_BYTES, what: str = "input") -> Iterator[bytes]:
    """The lines of ``src`` (each with its newline, as iterating the file gives them), refusing one
    longer than ``limit`` bytes with :class:`LineTooLongError`."""
    readline = src.readline
    size = limit + 1
    number = 0
    while raw := readline(size):
        number += 1
        if len(raw) == size and raw[-1:] != b"\n":
            raise _too_long(what, number, limit)
        yield raw


def capped_text_lines(src: IO[str], *, limit: int = MAX_LINE_BYTES, what: str = "input") -> Iterator[str]:
    """As :func:`capped_lines` for a text file (the cap counts characters, which is at most the bytes)."""
    readline = src.readline
    size = limit + 1
    number = 0
    while raw := readline(size):
        number += 1
        if len(raw) == size and raw[-1:] != "\n":
            raise _too_long(what, number, limit)
        yield raw
