"""Fixtures of the hook tests: the scripted loopback server and env-var connections."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from omnisend_test_server import API_KEY, ScriptedServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def make_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define an ``omnisend`` connection through ``AIRFLOW_CONN_<ID>`` (no metadata DB needed)."""
    counter = iter(range(1_000_000))

    def _make(
        host: str | None, *, password: str | None = API_KEY, conn_id: str | None = None, **extra: Any
    ) -> str:
        cid = conn_id or f"omnisend_test_{next(counter)}"
        payload: dict[str, Any] = {"conn_type": "omnisend", "extra": extra}
        if host is not None:
            payload["host"] = host
        if password is not None:
            payload["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{cid.upper()}", json.dumps(payload))
        return cid

    return _make
