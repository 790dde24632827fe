"""SQLite text that is not UTF-8: read the query again leniently, and report the rows that hold it.

SQLite stores whatever bytes it is given; ``sqlite3`` then fails the whole fetch (``Could not decode to
UTF-8 column ...``), which would end the partition on one dirty row. Decoding every cell through a
Python callable would cost every row, so a connection is read strictly (its own fast default) until a
fetch fails that way; then it switches to lenient decoding for the rest of the extraction and the query
is run again (:class:`QueryReader`). Undecodable bytes become lone surrogates (``surrogateescape``):
:func:`undecodable_column` finds them in a row and :func:`undecodable_rejection` reports the row. The
connection's own decoder is restored at the end.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Final

from airflow_omnisend.sources.base import RowRejection
from airflow_omnisend.sources.sql_cursors import fetch_batch, open_cursor

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)

_UNDECODED: Final = re.compile("[\udc80-\udcff]")


class TextDecoding:
    """How a connection decodes text: strictly until :meth:`switch`, leniently after, until
    :meth:`restore`. Shared by the streams of one extraction (one switch serves them all)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lenient = False
        self._saved: Any = None

    def undecodable(self, exc: Exception) -> bool:
        """``exc`` is sqlite3 failing on text that is not UTF-8, on a connection that can switch."""
        return (
            type(exc).__module__.split(".")[0] == "sqlite3"
            and "Could not decode to UTF-8" in str(exc)
            and hasattr(self.conn, "text_factory")
        )

    def switch(self, *, announce: bool = True) -> None:
        if not self.lenient:
            self._saved = self.conn.text_factory
            self.conn.text_factory = _lenient_text
            self.lenient = True
            if announce:
                log.warning("some text in the shop database is not UTF-8: reading it again leniently")

    def restore(self) -> None:
        if self.lenient:
            self.conn.text_factory = self._saved
            self.lenient = False


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class QueryReader:
    """One query's cursor and its rows, run again leniently when its text turns out not to be UTF-8.

    :meth:`start` runs the query and returns its first rows (reading again at once if they cannot be
    decoded); :meth:`fetch` returns the next rows, or ``None`` when they cannot be decoded: the caller
    then forgets what it had not finished and calls :meth:`reread`.
    """

    def __init__(self, conn: Any, fetch_size: int, decoding: TextDecoding, sql: str, args: Any) -> None:
        self._conn = conn
        self._fetch_size = fetch_size
        self._batch = fetch_batch(conn, fetch_size)
        self._decoding = decoding
        self._sql = sql
        self._args = args
        self._cursor = open_cursor(conn, fetch_size)

    @property
    def description(self) -> Any:
        return self._cursor.description

    def start(self) -> list[Any]:
        self._cursor.execute(self._sql, self._args)
        rows = self.fetch()
        return self.reread() if rows is None else rows

    def fetch(self) -> list[Any] | None:
        try:
            rows: list[Any] = self._cursor.fetchmany(self._batch)
        except Exception as exc:
            if not self._decoding.undecodable(exc):
                raise
            return None
        return rows

    def reread(self) -> list[Any]:
        """Switch to lenient decoding and run the query again: its first rows."""
        self._decoding.switch()
        self._cursor.close()
        self._cursor = open_cursor(self._conn, self._fetch_size)
        self._cursor.execute(self._sql, self._args)
        rows: list[Any] = self._cursor.fetchmany(self._batch)
        return rows

    def close(self) -> None:
        self._cursor.close()


def undecodable_column(row: Sequence[Any]) -> int | None:
    """The position of the first cell of ``row`` that holds undecodable bytes, or ``None``."""
    for i, cell in enumerate(row):
        if type(cell) is str and not cell.isascii() and _UNDECODED.search(cell):
            return i
    return None


def undecodable_rejection(
    event_name: str, order_id: Any, refund_id: Any, column: str, cell: str
) -> RowRejection:
    """The rejection of a row whose ``column`` holds ``cell``, text that is not UTF-8."""
    match = _UNDECODED.search(cell)
    at = match.start() if match else 0
    start, end = max(0, at - 60), at + 60  # lines_json holds all the lines: show where the bytes are
    shown = cell[start:end].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    shown = ("..." if start else "") + shown + ("..." if end < len(cell) else "")
    return RowRejection(
        event_name=event_name,
        order_id=order_id,
        refund_id=refund_id,
        column=column,
        value=shown,
        code="text_not_utf8",
        reason=f"column {column!r} holds text that is not UTF-8 ({shown!r}); "
        "fix its encoding in the shop database and rerun the partition",
    )
