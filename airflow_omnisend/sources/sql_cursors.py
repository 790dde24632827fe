"""DB-API cursors of the SQL source: streaming ones, how many rows a fetch takes, ending the read.

The source only reads, and it reads a partition with five queries side by side; each gets its own
cursor, which streams (bounded memory) whatever the driver.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

log = logging.getLogger(__name__)

#: Rows per ``fetchmany`` from an in-process ``sqlite3`` connection (see :func:`fetch_batch`).
IN_PROCESS_BATCH: Final = 64


def _driver(conn: Any) -> str:
    return type(conn).__module__.split(".")[0]


def open_cursor(conn: Any, fetch_size: int) -> Any:
    """A streaming cursor that yields plain tuples: server-side on PostgreSQL (bounded memory)."""
    driver = _driver(conn)
    name = f"omnisend_{uuid.uuid4().hex[:16]}"
    if driver == "psycopg":
        from psycopg.rows import tuple_row

        cur = conn.cursor(name=name, row_factory=tuple_row)
        cur.itersize = fetch_size
        return cur
    if driver == "psycopg2":
        import psycopg2.extensions

        cur = conn.cursor(name=name, cursor_factory=psycopg2.extensions.cursor)
        cur.itersize = fetch_size
        return cur
    cur = conn.cursor()
    cur.arraysize = fetch_size
    return cur


def fetch_batch(conn: Any, fetch_size: int) -> int:
    """Rows per ``fetchmany``: ``fetch_size``, but at most :data:`IN_PROCESS_BATCH` from ``sqlite3``.

    A fetch from a server is a round trip, so it takes as many rows as the memory bound allows. From
    SQLite it only steps the statement in this process: small fetches map each row while it is still in
    the CPU cache, and five streams keep few fetched rows alive (measured in docs/prep-path.md).
    """
    if _driver(conn) == "sqlite3":
        return min(fetch_size, IN_PROCESS_BATCH)
    return fetch_size


def end_read(conn: Any) -> None:
    """End the read transaction (PostgreSQL server-side cursors live in one); harmless elsewhere."""
    try:
        if not getattr(conn, "autocommit", False):
            conn.rollback()
    except Exception:  # a closed or broken connection has nothing left to end
        log.debug("rollback after reading failed", exc_info=True)
