"""The emulator as a real HTTP server on loopback, startable in-process or as a process (``cli.py``).

``ThreadingHTTPServer`` with HTTP/1.1 keep-alive, so clients behave as they do against Omnisend (one
pooled connection, reused). The request body is always read before answering, even when it is refused,
so a refused request never leaves bytes on a kept-alive connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from airflow_omnisend.testing.emulator.api import EmulatorApi, Request, Response, fingerprint
from airflow_omnisend.testing.emulator.automations import AutomationCatalog
from airflow_omnisend.testing.emulator.batches import BatchRegistry
from airflow_omnisend.testing.emulator.config import EmulatorConfig, FaultConfig
from airflow_omnisend.testing.emulator.faults import FaultInjector
from airflow_omnisend.testing.emulator.keys import KeyRing
from airflow_omnisend.testing.emulator.problems import PROBLEM_CONTENT_TYPE, dumps, problem
from airflow_omnisend.testing.emulator.ratelimit import SlidingWindowLimiter
from airflow_omnisend.testing.emulator.store import EmulatorStore

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from airflow_omnisend.testing.emulator.store import BatchRecord

log = logging.getLogger(__name__)

#: bodies larger than this are not even drained: the connection is closed after the 413
_DRAIN_LIMIT = 64 * 1024 * 1024
_CHUNK = 64 * 1024


class _BadRequestError(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: OmnisendEmulator

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "OmnisendEmulator/1.0"
    #: idle keep-alive connections end after this many seconds
    timeout = 120
    # one buffered write per response and no Nagle: headers and body written apart would wait for the
    # client's delayed ACK (docs/testing.md)
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def handle_expect_100(self) -> bool:
        result = super().handle_expect_100()
        self.wfile.flush()  # the write buffer would otherwise hold the interim 100 back
        return result

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _read_body(self, limit: int) -> tuple[bytes, int]:
        """The body (empty when it is over ``limit``, which is then drained) and its size in bytes."""
        length = self.headers.get("Content-Length")
        if length is not None:
            return self._read_sized_body(length, limit)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body(limit)
        return b"", 0

    def _read_sized_body(self, length: str, limit: int) -> tuple[bytes, int]:
        """A ``Content-Length`` body; drained when over ``limit``, left unread (closing) when huge."""
        try:
            size = int(length)
        except ValueError:
            raise _BadRequestError("Content-Length is not a number") from None
        if size > _DRAIN_LIMIT:
            self.close_connection = True
            return b"", size
        if size > limit:
            left = size
            while left > 0 and (data := self.rfile.read(min(left, _CHUNK))):
                left -= len(data)
            return b"", size
        return self.rfile.read(size), size

    def _read_chunked_body(self, limit: int) -> tuple[bytes, int]:
        """A ``Transfer-Encoding: chunked`` body, read to its end (trailers skipped); kept up to ``limit``."""
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                chunk = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise _BadRequestError("malformed chunked body") from None
            if chunk == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                break
            data = self.rfile.read(chunk)
            self.rfile.readline(1024)
            size += len(data)
            if size <= limit:
                parts.append(data)
        return (b"".join(parts) if size <= limit else b""), size

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        arrived = time.monotonic()
        url = urlsplit(self.path)
        try:
            body, size = self._read_body(emulator.config.max_payload_bytes)
        except _BadRequestError as exc:
            self.close_connection = True
            self._write(Response(400, dumps(problem(400, str(exc))), PROBLEM_CONTENT_TYPE))
            return
        req = Request(
            method=self.command,
            path=url.path or "/",
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            body_size=size,
            arrived=arrived,
        )
        try:
            resp = emulator.api.handle(req)
        except Exception:
            log.exception("emulator error on %s %s", req.method, req.path)
            resp = Response(500, dumps(problem(500, "emulator error")), PROBLEM_CONTENT_TYPE, record={})
        if resp.delay:
            time.sleep(resp.delay)
        if emulator.config.record_requests:
            record = resp.log_record(req, time.monotonic())
            if record is not None:
                emulator.store.log_request(record)
        if resp.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(resp)

    def _write(self, resp: Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)
        self.wfile.flush()


class OmnisendEmulator:
    """A local Omnisend: ``/v5/batches``, ``/api/batches``, ``/api/automations``, with auth, limits,
    asynchronous processing, de-duplication, a rate limit, seeded faults and a queryable record (``store``).

    Use it as a context manager, or ``start()`` / ``stop()``::

        with OmnisendEmulator(EmulatorConfig(processing_delay=0)) as emu:
            requests.post(f"{emu.base_url}/v5/batches", json=body, headers={"X-API-KEY": emu.api_key})
            emu.wait_until_idle()
            assert emu.store.accepted_count() == len(body["items"])
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        #: the accepted keys; ``set_keys`` (``POST /__emulator__/keys``) changes them at runtime
        self.grants = KeyRing(self.config.grants())
        self.limiter = SlidingWindowLimiter(self.config.rate_limit, self.config.rate_limit_window)
        self.faults = FaultInjector(self.config.faults)
        automations: Any = list(self.config.automations)
        if self.config.automations_file:
            automations = json.loads(Path(self.config.automations_file).read_text(encoding="utf-8"))
        self.automations = AutomationCatalog(automations)
        self.api = EmulatorApi(self)
        self._store: EmulatorStore | None = None
        self._batches: BatchRegistry | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------------------
    def start(self) -> OmnisendEmulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._store = EmulatorStore(self.config.db_path)
        self.grants.attach(self._store)
        self._batches = BatchRegistry(self.config, self._store, self.faults)
        self._batches.start()
        server = _Server((self.config.host, self.config.port))
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="omnisend-emulator-http",
            daemon=True,
        )
        self._thread.start()
        log.info("Omnisend emulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving (open connections are cut), stop the worker, close the store (a temporary
        database is deleted; the store cannot be read afterwards)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            with server.sockets_lock:
                for sock in list(server.open_sockets):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._batches is not None:
            self._batches.stop()
        if self._store is not None:
            self._store.close()

    def restart(self) -> OmnisendEmulator:
        """Stop, then start again on the same port and record, as a restarted Omnisend would come back:
        the batches, events and key changes of before are served, unfinished batches are processed.
        Needs ``db_path`` (a temporary record is deleted on stop)."""
        if self.config.db_path is None:
            raise RuntimeError(
                "restart() needs EmulatorConfig(db_path=...): a temporary record is deleted on stop"
            )
        port = self.port
        self.stop()
        self.config = dataclasses.replace(self.config, port=port)
        return self.start()

    def __enter__(self) -> OmnisendEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- what tests use -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the connection host; append ``/v5/...`` or ``/api/...``."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        host = host if isinstance(host, str) else host.decode()
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def store(self) -> EmulatorStore:
        if self._store is None:
            raise RuntimeError("the emulator has not been started")
        return self._store

    @property
    def batches(self) -> BatchRegistry:
        if self._batches is None:
            raise RuntimeError("the emulator has not been started")
        return self._batches

    @staticmethod
    def fingerprint(key: str | None) -> str:
        """The ``key_fingerprint`` the request log records for this key."""
        return fingerprint(key)

    def set_faults(self, faults: FaultConfig | None = None) -> None:
        """Replace the faults at runtime (``None`` or ``FaultConfig()`` clears them)."""
        self.faults.set(faults or FaultConfig())

    def set_keys(self, *, revoke: Iterable[str] = (), grant: Iterable[str] = ()) -> dict[str, Any]:
        """Revoke keys (401 from their next request on), then grant keys (``KEY`` or
        ``KEY:perm1,perm2``); kept in the record, so a restart on the same ``db_path`` keeps them.
        Returns ``{"revoked", "granted", "keys"}`` (``keys``: fingerprints of every accepted key)."""
        return self.grants.change(revoke=revoke, grant=grant)

    def set_automations(self, automations: Any) -> int:
        """Replace the automations ``GET /api/automations`` serves; returns how many there are now."""
        return self.automations.set(automations)

    def wait_for_batch(self, batch_id: str, timeout: float = 10.0) -> BatchRecord:
        """Block until the batch has ended (finished or stopped)."""
        return self.batches.wait_for(batch_id, timeout)

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Block until every batch created so far has ended."""
        self.batches.wait_idle(timeout)

    def stats(self) -> dict[str, Any]:
        """Counts for ``GET /__emulator__/stats``."""
        store = self.store
        return {
            "baseUrl": self.base_url,
            "acceptedEvents": store.accepted_count(),
            "duplicates": store.duplicate_count(),
            "batches": self.batches.status_counts(),
            "requests": store.request_count(),
            "faults": self.faults.config.to_dict(),
        }
