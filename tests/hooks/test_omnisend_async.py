"""OmnisendAsyncHook against the scripted loopback server (pytest-asyncio auto mode)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from omnisend_test_server import API_KEY, Reply, fast_retry

from airflow_omnisend.exceptions import (
    OmnisendAuthError,
    OmnisendConfigError,
    OmnisendNotFoundError,
    OmnisendRateLimitError,
    OmnisendTransportError,
)
from airflow_omnisend.hooks._pacing import RateLimitPacer
from airflow_omnisend.hooks.omnisend_async import OmnisendAsyncHook, item_succeeded

if TYPE_CHECKING:
    from omnisend_test_server import ScriptedServer

BATCH = {"batchID": "b1", "status": "inProgress", "totalCount": 3, "finishedCount": 1}


def new_hook(
    make_conn: Any, base: str, *, pacer: RateLimitPacer | None = None, **extra: Any
) -> OmnisendAsyncHook:
    return OmnisendAsyncHook(make_conn(base, **extra), retry=fast_retry(), pacer=pacer)


def recording_async_pacer() -> tuple[RateLimitPacer, list[float]]:
    waits: list[float] = []

    async def async_sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    return RateLimitPacer(async_sleep=async_sleep), waits


async def test_get_batch_v5_without_sync_connection_lookup(
    make_conn: Any, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the sync get_connection must not run in the event loop")

    monkeypatch.setattr(OmnisendAsyncHook, "get_connection", classmethod(forbidden))
    server.add(Reply(200, BATCH))
    extra: dict[str, Any] = {"X-Integration-Name": "backfill", "timeout": "9"}
    hook = new_hook(make_conn, server.base_url, **extra)
    assert repr(hook).startswith("OmnisendAsyncHook(omnisend_conn_id=")
    assert await hook.get_batch("b1") == BATCH
    (seen,) = server.requests()
    assert (seen.method, seen.path) == ("GET", "/v5/batches/b1")
    assert seen.header("X-API-KEY") == API_KEY
    assert seen.header("X-Integration-Name") == "backfill"
    assert seen.header("timeout") is None
    assert API_KEY not in repr(hook)


async def test_get_batch_2026_headers(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(200, BATCH))
    hook = new_hook(make_conn, server.base_url, api_version="2026-03-15")
    await hook.get_batch("b1")
    (seen,) = server.requests()
    assert seen.path == "/api/batches/b1"
    assert seen.header("Authorization") == f"Omnisend-API-Key {API_KEY}"
    assert seen.header("Omnisend-Version") == "2026-03-15"


async def test_429_waits_the_named_time(make_conn: Any, server: ScriptedServer) -> None:
    server.add(
        Reply(429, {"title": "Too Many Requests", "retryAfter": 1}, {"Retry-After": "4"}),
        Reply(200, BATCH),
    )
    pacer, waits = recording_async_pacer()
    hook = new_hook(make_conn, server.base_url, pacer=pacer)
    assert await hook.get_batch("b1") == BATCH
    _, second = server.requests()
    gap = second.at - server.answered[0][1]
    assert 1.0 <= gap < 3.5
    assert len(waits) == 1
    assert 1.0 <= waits[0] < 1.5


async def test_429_outlasting_the_budget(make_conn: Any, server: ScriptedServer) -> None:
    server.route = lambda seen: Reply(429, {"detail": "slow down", "retryAfter": 60})
    hook = new_hook(make_conn, server.base_url)
    with pytest.raises(OmnisendRateLimitError) as info:
        await hook.get_batch("b1")
    assert (info.value.status, info.value.retry_after) == (429, 60)
    assert info.value.problem["detail"] == "slow down"
    assert len(server.requests()) == 1


async def test_5xx_and_dropped_connections_are_retried(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(503, b"busy"), Reply(drop=True), Reply(200, BATCH))
    hook = new_hook(make_conn, server.base_url)
    assert await hook.get_batch("b1") == BATCH
    assert len(server.requests()) == 3


@pytest.mark.parametrize(("status", "cls"), [(401, OmnisendAuthError), (404, OmnisendNotFoundError)])
async def test_4xx_typed_not_retried(
    make_conn: Any, server: ScriptedServer, status: int, cls: type[Exception]
) -> None:
    server.route = lambda seen: Reply(status, {"title": "Problem", "detail": f"said {status}"})
    hook = new_hook(make_conn, server.base_url, password="bad-key-0000000")
    with pytest.raises(cls) as info:
        await hook.get_batch("b1")
    assert f"said {status}" in str(info.value)
    assert "bad-key-0000000" not in str(info.value)
    assert len(server.requests()) == 1


async def test_get_batch_items(make_conn: Any, server: ScriptedServer) -> None:
    server.add(
        Reply(
            200,
            {
                "responses": [{"itemID": "i1", "status": "finished"}],
                "errors": [{"itemID": "i2", "status": "finished", "responseCode": 400}],
            },
        )
    )
    hook = new_hook(make_conn, server.base_url)
    items = await hook.get_batch_items("b1")
    assert server.requests()[0].path == "/v5/batches/b1/items"
    assert [(i["itemID"], item_succeeded(i)) for i in items] == [("i1", True), ("i2", False)]


async def test_transport_budget_and_bad_config(make_conn: Any) -> None:
    from omnisend_test_server import free_port

    hook = OmnisendAsyncHook(make_conn(f"http://127.0.0.1:{free_port()}"), retry=fast_retry(max_attempts=2))
    with pytest.raises(OmnisendTransportError, match="after 2 attempts"):
        await hook.get_batch("b1")
    with pytest.raises(OmnisendConfigError, match="https"):
        await new_hook(make_conn, "http://api.omnisend.com").get_batch("b1")
