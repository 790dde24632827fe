"""The emulator's record of everything: batches and their items, accepted and duplicate events, requests.

SQLite in WAL mode with exactly one writer thread: HTTP threads and the batch worker hand it writes
through a queue, it commits them in groups (``executemany`` per batch of items), and readers use their
own connections, which WAL lets run beside the writer. That is what keeps 200,000 events cheap.

Every public read first waits until the writer has committed what was queued before it (``flush``),
so a test that has just received a response always sees that request in ``request_log()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, api_version TEXT, method TEXT, endpoint TEXT,
    origin TEXT, status TEXT, total_count INTEGER, finished_count INTEGER, errors_count INTEGER,
    duplicate_count INTEGER, created_at TEXT, started_at TEXT, ended_at TEXT, stop_reason TEXT,
    key_fingerprint TEXT);
CREATE TABLE IF NOT EXISTS batch_results (
    batch_id TEXT PRIMARY KEY, responses BLOB NOT NULL, errors BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS accepted_events (
    event_id TEXT NOT NULL, event_time TEXT NOT NULL, event_name TEXT, order_id TEXT, batch_id TEXT,
    accepted_at TEXT, UNIQUE (event_id, event_time));
CREATE TABLE IF NOT EXISTS duplicate_events (
    event_id TEXT NOT NULL, event_time TEXT NOT NULL, event_name TEXT, order_id TEXT, batch_id TEXT,
    seen_at TEXT);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY, mono REAL, responded_mono REAL, wall TEXT, method TEXT, path TEXT,
    api_version TEXT, key_fingerprint TEXT, status INTEGER, retry_after REAL, fault TEXT, batch_id TEXT,
    dropped INTEGER);
CREATE TABLE IF NOT EXISTS batch_items (batch_id TEXT PRIMARY KEY, items BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS key_changes (
    key_hash TEXT PRIMARY KEY, permissions TEXT, revoked INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    """An event Omnisend took in (the first time its ``(eventID, eventTime)`` was seen)."""

    event_id: str
    event_time: str
    event_name: str | None
    order_id: str | None
    batch_id: str
    accepted_at: str


@dataclass(frozen=True, slots=True)
class DuplicateEvent:
    """A successful item not recorded again: its ``(eventID, eventTime)`` had already been accepted."""

    event_id: str
    event_time: str
    event_name: str | None
    order_id: str | None
    batch_id: str
    seen_at: str


@dataclass(frozen=True, slots=True)
class BatchRecord:
    batch_id: str
    api_version: str
    method: str
    endpoint: str
    origin: str
    status: str
    total_count: int
    finished_count: int
    errors_count: int
    duplicate_count: int
    created_at: str
    started_at: str | None
    ended_at: str | None
    stop_reason: str | None
    key_fingerprint: str
    #: answered without its counters (a fault; not persisted: a reloaded batch has them)
    omit_counters: bool = False


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One API request as the emulator saw it. ``key_fingerprint`` is a hash prefix, never the key.

    ``mono``/``responded_mono`` are ``time.monotonic()`` of arrival and of the response being written
    (same clock as the test process when the emulator runs in-process). ``status`` is what was (or, when
    ``dropped``, would have been) answered; ``retry_after`` the seconds a 429 named; ``fault`` the injected
    fault, if any (``5xx``, ``429-burst``, ``slow``, ``drop``, ``refused-window``; ``rate-limit`` for a real
    limit hit).
    """

    mono: float
    responded_mono: float
    wall: str
    method: str
    path: str
    api_version: str | None
    key_fingerprint: str
    status: int
    retry_after: float | None
    fault: str | None
    batch_id: str | None
    dropped: bool


@dataclass(frozen=True, slots=True)
class RetryAfterViolation:
    """A request that arrived sooner after a 429 than the 429 said to wait."""

    key_fingerprint: str
    refused_at: float
    retry_after: float
    next_request_at: float

    @property
    def early_by(self) -> float:
        return self.refused_at + self.retry_after - self.next_request_at


class _Op:
    __slots__ = ("done", "error", "fn")

    def __init__(self, fn: Callable[[sqlite3.Connection], object] | None, wait: bool) -> None:
        self.fn = fn
        self.done = threading.Event() if wait else None
        self.error: BaseException | None = None


class EmulatorStore:
    """Thread-safe record of the emulator. Reads are public API; ``_``-less write methods are for the
    emulator itself."""

    def __init__(self, path: str | None = None) -> None:
        if path is None:
            fd, path = tempfile.mkstemp(prefix="omnisend-emulator-", suffix=".sqlite3")
            os.close(fd)
            self._temporary = True
        else:
            self._temporary = False
        self.path = path
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        conn = self._connect()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        self._writer_conn = conn
        self._writer = threading.Thread(target=self._write_loop, name="omnisend-emulator-store", daemon=True)
        self._writer.start()

    # ---- plumbing -------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        # a test record, not a ledger: losing the tail on a power cut is fine, fsyncs are not
        conn.execute("PRAGMA synchronous=OFF")
        return conn

    def _write_loop(self) -> None:
        conn = self._writer_conn
        stop = False
        while not stop:
            ops = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(ops) < 2000:
                    ops.append(self._queue.get_nowait())
            conn.execute("BEGIN")
            for op in ops:
                if op.fn is None:
                    if op.done is None:  # the close sentinel
                        stop = True
                    continue
                try:
                    op.fn(conn)
                except Exception as exc:
                    op.error = exc
                    log.exception("emulator store write failed")
            conn.execute("COMMIT")
            for op in ops:
                if op.done is not None:
                    op.done.set()
        conn.close()

    def submit(self, fn: Callable[[sqlite3.Connection], object], *, wait: bool = False) -> None:
        """Queue a write; with ``wait``, return once it is committed (and raise what it raised)."""
        if self._closed:
            if wait:
                raise RuntimeError("the emulator store is closed (the emulator was stopped)")
            return  # a request answered while the emulator stops: nobody can read its log entry any more
        op = _Op(fn, wait)
        self._queue.put(op)
        if op.done is not None:
            op.done.wait()
            if op.error is not None:
                raise op.error

    def flush(self) -> None:
        """Return once every write queued before this call is committed."""
        if self._closed:
            return
        op = _Op(None, wait=True)
        self._queue.put(op)
        assert op.done is not None
        op.done.wait()

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            conn = self._connect()
            with self._readers_lock:
                self._all_readers.append(conn)
        try:
            yield conn
        finally:
            self._readers.put(conn)

    def _query(self, sql: str, params: Sequence[Any] = (), *, flush: bool = True) -> list[Any]:
        if self._closed:
            raise RuntimeError("the emulator store is closed (the emulator was stopped)")
        if flush:
            self.flush()
        with self._reader() as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Commit what is queued, stop the writer, close connections; delete the file if it was temporary."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._queue.put(_Op(None, wait=False))
        self._writer.join(timeout=30)
        with self._readers_lock:
            for conn in self._all_readers:
                conn.close()
        if self._temporary:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)

    # ---- writes (emulator internals) ------------------------------------------------------------
    def save_batch(self, row: BatchRecord, seq: int) -> None:
        values = (row.batch_id, seq, row.api_version, row.method, row.endpoint, row.origin, row.status,
                  row.total_count, row.finished_count, row.errors_count, row.duplicate_count, row.created_at,
                  row.started_at, row.ended_at, row.stop_reason, row.key_fingerprint)  # fmt: skip
        self.submit(
            lambda c: c.execute(f"INSERT OR REPLACE INTO batches VALUES ({','.join('?' * 16)})", values)
        )

    def save_new_batch(self, row: BatchRecord, seq: int, items: bytes) -> None:
        """Queue a new batch with its items (JSON array), kept until processed so that an emulator
        restarted before then processes it (:meth:`pending_items`)."""
        self.save_batch(row, seq)
        self.submit(
            lambda c: c.execute("INSERT OR REPLACE INTO batch_items VALUES (?, ?)", (row.batch_id, items))
        )

    def save_processed_items(
        self,
        batch_id: str,
        responses: bytes,
        errors: bytes,
        accepted: Sequence[tuple[Any, ...]],
        duplicates: Sequence[tuple[Any, ...]],
    ) -> None:
        """Commit a processed batch's results (its ``responses`` and ``errors`` JSON arrays, rendered once:
        every poll embeds them as they are) and events; returns once they are readable."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO batch_results VALUES (?, ?, ?)", (batch_id, responses, errors)
            )
            conn.executemany("INSERT OR IGNORE INTO accepted_events VALUES (?, ?, ?, ?, ?, ?)", accepted)
            conn.executemany("INSERT INTO duplicate_events VALUES (?, ?, ?, ?, ?, ?)", duplicates)
            conn.execute("DELETE FROM batch_items WHERE batch_id = ?", (batch_id,))

        self.submit(write, wait=True)

    def log_request(self, record: RequestRecord) -> None:
        values = (record.mono, record.responded_mono, record.wall, record.method, record.path,
                  record.api_version, record.key_fingerprint, record.status, record.retry_after, record.fault,
                  record.batch_id, int(record.dropped))  # fmt: skip
        self.submit(lambda c: c.execute(f"INSERT INTO requests VALUES (NULL, {','.join('?' * 12)})", values))

    # ---- reads used by the emulator ---------------------------------------------------------------
    def batch_results(self, batch_id: str) -> tuple[bytes, bytes]:
        """A processed batch's ``responses`` and ``errors`` (JSON arrays). No flush: the worker commits
        them before it publishes the batch's end, so whoever saw the end sees them."""
        rows = self._query(
            "SELECT responses, errors FROM batch_results WHERE batch_id = ?", (batch_id,), flush=False
        )
        return (bytes(rows[0][0]), bytes(rows[0][1])) if rows else (b"[]", b"[]")

    def pending_items(self, batch_id: str) -> bytes | None:
        """The items (JSON array) of a batch not processed yet, or None."""
        rows = self._query("SELECT items FROM batch_items WHERE batch_id = ?", (batch_id,))
        return bytes(rows[0][0]) if rows else None

    def has_results(self, batch_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM batch_results WHERE batch_id = ?", (batch_id,)))

    def batch_duplicate_count(self, batch_id: str) -> int:
        return int(self._query("SELECT count(*) FROM duplicate_events WHERE batch_id = ?", (batch_id,))[0][0])

    def save_key_change(self, key_hash: str, permissions: str | None, revoked: bool) -> None:
        """Record the last change of one key (by its SHA-256, never the key), committed on return."""
        self.submit(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO key_changes VALUES (?, ?, ?)", (key_hash, permissions, int(revoked))
            ),
            wait=True,
        )

    def key_changes(self) -> list[tuple[str, str | None, bool]]:
        """``(key SHA-256, permissions JSON or None, revoked)`` of every key changed at runtime."""
        rows = self._query("SELECT key_hash, permissions, revoked FROM key_changes")
        return [(r[0], r[1], bool(r[2])) for r in rows]

    def accepted_keys(self) -> set[tuple[str, str]]:
        return {(a, b) for a, b in self._query("SELECT event_id, event_time FROM accepted_events")}

    # ---- public reads -----------------------------------------------------------------------------
    def accepted_events(self) -> list[AcceptedEvent]:
        """Every accepted event, in the order it was accepted."""
        rows = self._query(
            "SELECT event_id, event_time, event_name, order_id, batch_id, accepted_at "
            "FROM accepted_events ORDER BY rowid"
        )
        return [AcceptedEvent(*row) for row in rows]

    def accepted_count(self) -> int:
        return int(self._query("SELECT count(*) FROM accepted_events")[0][0])

    def duplicates(self) -> list[DuplicateEvent]:
        rows = self._query(
            "SELECT event_id, event_time, event_name, order_id, batch_id, seen_at FROM duplicate_events "
            "ORDER BY rowid"
        )
        return [DuplicateEvent(*row) for row in rows]

    def duplicate_count(self) -> int:
        """How many successful items repeated an already accepted ``(eventID, eventTime)``."""
        return int(self._query("SELECT count(*) FROM duplicate_events")[0][0])

    def batches(self) -> list[BatchRecord]:
        """Every batch, in creation order, as last saved (the end state once a batch has ended)."""
        rows = self._query(
            "SELECT batch_id, api_version, method, endpoint, origin, status, total_count, finished_count, "
            "errors_count, duplicate_count, created_at, started_at, ended_at, stop_reason, key_fingerprint "
            "FROM batches ORDER BY seq"
        )
        return [BatchRecord(*row) for row in rows]

    def request_log(self) -> list[RequestRecord]:
        """Every API request (control-API calls are not logged), in arrival order."""
        rows = self._query(
            "SELECT mono, responded_mono, wall, method, path, api_version, key_fingerprint, status, "
            "retry_after, fault, batch_id, dropped FROM requests ORDER BY id"
        )
        return [
            RequestRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], bool(r[11]))
            for r in rows
        ]

    def request_count(
        self, path_prefix: str | None = None, *, method: str | None = None, status: int | None = None
    ) -> int:
        """Requests whose path starts with ``path_prefix`` (e.g. ``/v5/batches``), optionally filtered."""
        sql, params = "SELECT count(*) FROM requests WHERE 1=1", []
        if path_prefix is not None:
            sql += " AND substr(path, 1, ?) = ?"
            params += [len(path_prefix), path_prefix]
        if method is not None:
            sql += " AND method = ?"
            params.append(method.upper())
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        return int(self._query(sql, params)[0][0])

    def retry_after_violations(self, tolerance: float = 0.0) -> list[RetryAfterViolation]:
        """Requests sent (per key) sooner after a 429's response than its ``retry_after``, measured from
        the moment the 429 was written to the moment the next request arrived. Requests that arrived
        before the 429 was written were already in flight and are not counted."""
        violations: list[RetryAfterViolation] = []
        pending: dict[str, tuple[float, float]] = {}
        for rec in sorted(self.request_log(), key=lambda r: r.mono):
            refused = pending.get(rec.key_fingerprint)
            if refused is not None and rec.mono >= refused[0]:
                del pending[rec.key_fingerprint]
                if rec.mono + tolerance < refused[0] + refused[1]:
                    violations.append(
                        RetryAfterViolation(rec.key_fingerprint, refused[0], refused[1], rec.mono)
                    )
            if rec.status == 429 and rec.retry_after is not None:
                pending[rec.key_fingerprint] = (rec.responded_mono, rec.retry_after)
        return violations
