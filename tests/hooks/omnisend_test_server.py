"""A tiny scripted HTTP server on 127.0.0.1 for the hook tests.

Each test queues the answers it wants (status, JSON body, headers, or "drop the connection"), then
drives the real hook over loopback and checks what reached the server and when. Arrival times use
``time.monotonic`` in the same process as the client, so "the next request came no earlier than the
429 said" is checked on the server's side of the wire.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

API_KEY = "sk-test-0123456789abcdef-SECRET"


@dataclass(frozen=True)
class Reply:
    """A scripted answer. ``drop`` closes the connection without answering; ``hold`` seconds delays
    the answer (waiting on the server's stop event, so teardown never hangs)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    hold: float = 0.0


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request was fully read
    answered_at: float | None = None

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


class ScriptedServer:
    def __init__(self, port: int = 0) -> None:
        self.script: deque[Reply] = deque()
        self.route: Callable[[Seen], Reply] | None = None
        self.seen: list[Seen] = []
        self.answered: list[tuple[int, float]] = []  # (status, monotonic time the answer was written)
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers=dict(self.headers.items()),
                    body=body,
                    at=time.monotonic(),
                )
                with server._lock:
                    server.seen.append(seen)
                    if server.script:
                        reply = server.script.popleft()
                    elif server.route is not None:
                        reply = server.route(seen)
                    else:
                        reply = Reply(500, {"detail": "test server: nothing scripted"})
                if reply.hold:
                    server.stopping.wait(reply.hold)
                if reply.drop:
                    self.close_connection = True
                    return
                payload = (
                    reply.body
                    if isinstance(reply.body, bytes)
                    else b""
                    if reply.body is None
                    else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    if not any(k.lower() == "content-type" for k in reply.headers):
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                with server._lock:
                    server.answered.append((reply.status, time.monotonic()))

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def requests(self, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if method is None or s.method == method]


def free_port() -> int:
    """A loopback port with nothing listening on it (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pacer_with_log(**kwargs: Any) -> tuple[Any, list[float]]:
    """A real pacer that really sleeps, but records every wait it asked for."""
    from airflow_omnisend.hooks._pacing import RateLimitPacer

    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    return RateLimitPacer(sleep=sleep, **kwargs), waits


def fast_retry(**overrides: Any) -> Any:
    """Retry timing for tests: tiny back-offs, no jitter (server-named waits stay as named)."""
    from airflow_omnisend.hooks._pacing import RetryConfig

    values: dict[str, Any] = {
        "max_attempts": 4,
        "base_delay": 0.01,
        "max_delay": 0.05,
        "total_budget": 20.0,
        "jitter": 0.0,
    }
    values.update(overrides)
    return RetryConfig(**values)
