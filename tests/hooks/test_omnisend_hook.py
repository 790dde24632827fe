"""OmnisendHook against a real scripted HTTP server on 127.0.0.1 (no request mocking)."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from omnisend_test_server import API_KEY, Reply, ScriptedServer, fast_retry, free_port, pacer_with_log

from airflow_omnisend.exceptions import (
    OmnisendAPIError,
    OmnisendAuthError,
    OmnisendConfigError,
    OmnisendNotFoundError,
    OmnisendPayloadTooLargeError,
    OmnisendRateLimitError,
    OmnisendResponseLostError,
    OmnisendServerError,
    OmnisendTransportError,
    OmnisendValidationError,
)
from airflow_omnisend.hooks._pacing import RateLimitPacer
from airflow_omnisend.hooks.omnisend import OmnisendHook, item_succeeded

if TYPE_CHECKING:
    from collections.abc import Callable

    from omnisend_test_server import Seen

EVENT = {
    "eventName": "placed order",
    "eventID": "0b6a3d2e-5f0e-5b8a-9a55-1d2c3b4a5e6f",
    "eventTime": "2024-01-02T03:04:05Z",
    "eventVersion": "v2",
    "origin": "api",
    "contact": {"email": "ann@example.com"},
    "properties": {"orderID": "1001"},
}
BATCH = {"batchID": "b1", "status": "finished", "totalCount": 1}
HEADER_EXTRA: dict[str, Any] = {"X-Integration-Name": "order-backfill"}


def new_hook(
    make_conn: Callable[..., str],
    server: ScriptedServer | str,
    *,
    retry: Any = None,
    pacer: RateLimitPacer | None = None,
    password: str | None = API_KEY,
    **extra: Any,
) -> OmnisendHook:
    base = server if isinstance(server, str) else server.base_url
    conn_id = make_conn(base, password=password, **extra)
    return OmnisendHook(conn_id, retry=retry or fast_retry(), pacer=pacer)


def gap_after_answer(server: ScriptedServer, answer_index: int, request: Seen) -> float:
    """Seconds between the server writing answer ``answer_index`` and receiving ``request``."""
    return request.at - server.answered[answer_index][1]


# -- profiles, headers, extras, timeout -----------------------------------------------------------------


def test_v5_create_batch_sends_profile_headers_and_body(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(200, {"batchID": "b1", "totalCount": 1}))
    hook = new_hook(make_conn, server)
    assert hook.create_batch([EVENT]) == "b1"
    (seen,) = server.requests()
    assert (seen.method, seen.path) == ("POST", "/v5/batches")
    assert seen.header("X-API-KEY") == API_KEY
    assert seen.header("Authorization") is None
    assert seen.header("Omnisend-Version") is None
    assert seen.header("Content-Type") == "application/json"
    assert json.loads(seen.body) == {"method": "POST", "endpoint": "events", "items": [EVENT]}


def test_2026_profile_headers_and_201(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(201, {"batchID": "b2", "totalCount": 1}))
    hook = new_hook(make_conn, server, api_version="2026-03-15")
    assert hook.create_batch([EVENT]) == "b2"
    (seen,) = server.requests()
    assert seen.path == "/api/batches"
    assert seen.header("Authorization") == f"Omnisend-API-Key {API_KEY}"
    assert seen.header("Omnisend-Version") == "2026-03-15"
    assert seen.header("X-API-KEY") is None


@pytest.mark.parametrize(("version", "prefix"), [("v5", "/v5"), ("2026-03-15", "/api")])
def test_bearer_auth(make_conn: Any, server: ScriptedServer, version: str, prefix: str) -> None:
    server.add(Reply(200, BATCH))
    hook = new_hook(make_conn, server, api_version=version, auth="bearer")
    hook.get_batch("b1")
    (seen,) = server.requests()
    assert seen.path == f"{prefix}/batches/b1"
    assert seen.header("Authorization") == f"Bearer {API_KEY}"
    assert seen.header("X-API-KEY") is None
    assert seen.header("Omnisend-Version") == ("2026-03-15" if version != "v5" else None)


def test_own_extras_never_become_headers(make_conn: Any, server: ScriptedServer) -> None:
    server.route = lambda seen: Reply(200, BATCH)
    hook = new_hook(
        make_conn,
        server,
        api_version="v5",
        auth="api_key",
        max_items_per_batch=10,  # an int: sent as a header it would make requests raise
        max_payload_bytes=5000,
        timeout="12",
        extra__omnisend__api_version="v5",
        **HEADER_EXTRA,
    )
    hook.get_batch("b1")
    hook.create_batch([EVENT])
    for seen in server.requests():
        names = {k.lower() for k in seen.headers}
        assert not names & {"api_version", "auth", "max_items_per_batch", "max_payload_bytes", "timeout"}
        assert not any(n.startswith("extra__") for n in names)
        assert seen.header("X-Integration-Name") == "order-backfill"  # other extras still pass
    assert hook.settings.timeout == 12.0


def test_httpoperator_style_construction_and_run(make_conn: Any, server: ScriptedServer) -> None:
    """HttpOperator builds the hook through conn.get_hook(hook_params=...) and calls run()."""
    from airflow.sdk import BaseHook

    server.route = lambda seen: Reply(200, {"batches": []})
    conn_id = make_conn(server.base_url, api_version="2026-03-15", timeout="5", login="ignored-user")
    hook = BaseHook.get_connection(conn_id).get_hook(  # type: ignore[no-untyped-call]
        hook_params={
            "method": "GET",
            "auth_type": None,
            "tcp_keep_alive": True,
            "tcp_keep_alive_idle": 120,
            "tcp_keep_alive_count": 20,
            "tcp_keep_alive_interval": 30,
        }
    )
    assert isinstance(hook, OmnisendHook)
    assert hook.omnisend_conn_id == conn_id
    response = hook.run("/api/batches", data={"endpoint": "events"})
    assert response.status_code == 200
    (seen,) = server.requests()
    assert (seen.method, seen.path, seen.query) == ("GET", "/api/batches", {"endpoint": ["events"]})
    assert seen.header("Authorization") == f"Omnisend-API-Key {API_KEY}"  # not basic auth from login
    assert seen.header("timeout") is None
    assert seen.header("api_version") is None


def test_timeout_is_applied_on_get(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(200, BATCH, hold=5))
    hook = new_hook(make_conn, server, retry=fast_retry(max_attempts=1), timeout="0.5")
    started = time.monotonic()
    with pytest.raises(OmnisendTransportError, match="GET /v5/batches/b1"):
        hook.get_batch("b1")
    assert 0.4 <= time.monotonic() - started < 3


def test_slow_post_is_a_lost_response_not_a_resend(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(200, BATCH, hold=5), Reply(200, BATCH))
    hook = new_hook(make_conn, server, timeout="0.5")
    with pytest.raises(OmnisendResponseLostError, match="POST /v5/batches"):
        hook.create_batch([EVENT])
    assert len(server.requests("POST")) == 1


# -- 429 and pacing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(
            {"title": "Too Many Requests", "status": 429, "retryAfter": 1},
            {"Retry-After": "4", "X-Rate-Limit-Reset": "5"},
            id="body-retryAfter-first",
        ),
        pytest.param(
            {"title": "Too Many Requests", "status": 429},
            {"Retry-After": "1", "X-Rate-Limit-Reset": "5"},
            id="then-Retry-After",
        ),
        pytest.param(
            {"title": "Too Many Requests"}, {"X-Rate-Limit-Reset": "1"}, id="then-X-Rate-Limit-Reset"
        ),
    ],
)
def test_429_waits_the_named_time(
    make_conn: Any, server: ScriptedServer, body: dict[str, Any], headers: dict[str, str]
) -> None:
    server.add(Reply(429, body, headers), Reply(200, BATCH))
    pacer, waits = pacer_with_log()
    hook = new_hook(make_conn, server, pacer=pacer)
    assert hook.get_batch("b1") == BATCH
    _first, second = server.requests()
    gap = gap_after_answer(server, 0, second)
    assert gap >= 1.0  # never sooner than the time the 429 named
    assert gap < 3.5  # and it was the 1 s source that counted, not a later one
    assert waits
    assert 1.0 <= waits[0] < 1.5


def test_429_without_a_named_time_backs_off(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(429, {"title": "slow down"}), Reply(429, b"", {}), Reply(200, BATCH))
    pacer, waits = pacer_with_log()
    hook = new_hook(make_conn, server, pacer=pacer, retry=fast_retry(base_delay=0.05, max_delay=0.2))
    assert hook.get_batch("b1") == BATCH
    assert len(server.requests()) == 3
    assert waits == pytest.approx([0.05, 0.1], abs=0.02)


def test_low_remaining_budget_waits_for_the_reset(make_conn: Any, server: ScriptedServer) -> None:
    limits = {"X-Rate-Limit-Limit": "400", "X-Rate-Limit-Remaining": "3", "X-Rate-Limit-Reset": "1"}
    server.add(Reply(200, BATCH, limits), Reply(200, BATCH))
    pacer, waits = pacer_with_log()
    hook = new_hook(make_conn, server, pacer=pacer)
    hook.get_batch("b1")
    hook.get_batch("b1")  # 3 left <= low water (max(2, 5% of 400) = 20): wait, don't spend
    _first, second = server.requests()
    assert gap_after_answer(server, 0, second) >= 0.95
    assert len(waits) == 1


def test_429_holds_every_thread_of_the_hook(make_conn: Any, server: ScriptedServer) -> None:
    class SignallingPacer(RateLimitPacer):
        held = threading.Event()

        def hold_for(self, seconds: float) -> None:
            super().hold_for(seconds)
            self.held.set()

    server.add(Reply(429, {"retryAfter": 1}))
    server.route = lambda seen: Reply(200, BATCH)
    pacer = SignallingPacer()
    hook = new_hook(make_conn, server, pacer=pacer)
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(hook.get_batch("b1")))
    first.start()
    assert pacer.held.wait(5)
    others = [threading.Thread(target=lambda: results.append(hook.get_batch("b2"))) for _ in range(3)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(10)
    assert len(results) == 4
    seen = server.requests()
    assert len(seen) == 5
    assert all(gap_after_answer(server, 0, s) >= 1.0 for s in seen[1:])


def test_429_outlasting_the_budget_raises_and_keeps_holding(make_conn: Any, server: ScriptedServer) -> None:
    server.route = lambda seen: Reply(429, {"title": "Too Many Requests", "detail": "slow", "retryAfter": 30})
    hook = new_hook(make_conn, server, retry=fast_retry(total_budget=2))
    with pytest.raises(OmnisendRateLimitError) as info:
        hook.get_batch("b1")
    assert (info.value.status, info.value.retry_after) == (429, 30)
    assert info.value.problem["detail"] == "slow"
    with pytest.raises(OmnisendRateLimitError, match="was not sent"):
        hook.get_batch("b1")  # the hold stays: no request goes out before the named time
    assert len(server.requests()) == 1


def test_the_connections_retry_budget_bounds_a_call(make_conn: Any, server: ScriptedServer) -> None:
    """No retry= given: the connection's retry_budget (2 s) is the budget, so a named 30 s wait is not
    waited out; the default (300 s) would have waited."""
    server.route = lambda seen: Reply(429, {"title": "Too Many Requests", "retryAfter": 30})
    conn_id = make_conn(server.base_url, timeout=1, retry_budget="2")
    hook = OmnisendHook(conn_id)
    with pytest.raises(OmnisendRateLimitError) as info:
        hook.get_batch("b1")
    assert info.value.retry_after == 30
    assert len(server.requests()) == 1
    assert hook.settings.retry_config().total_budget == 2.0
    assert "retry_budget" not in server.requests()[0].headers


# -- 5xx, transport failures, retries -------------------------------------------------------------------


def test_5xx_retried_then_success(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(500, {"detail": "oops"}), Reply(503, b"busy"), Reply(200, BATCH))
    hook = new_hook(make_conn, server)
    assert hook.get_batch("b1") == BATCH
    assert len(server.requests()) == 3


def test_5xx_on_post_is_retried_because_the_server_answered(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(502, {"detail": "bad gateway"}), Reply(201, {"batchID": "b7"}))
    hook = new_hook(make_conn, server)
    assert hook.create_batch([EVENT]) == "b7"
    assert len(server.requests("POST")) == 2


def test_5xx_budget_exhausted_raises_server_error(make_conn: Any, server: ScriptedServer) -> None:
    server.route = lambda seen: Reply(500, {"title": "Problem", "status": 500, "detail": "database down"})
    hook = new_hook(make_conn, server, retry=fast_retry(max_attempts=3))
    with pytest.raises(OmnisendServerError) as info:
        hook.get_batch("b1")
    assert info.value.status == 500
    assert info.value.problem["detail"] == "database down"
    assert "3 attempts" in str(info.value)
    assert info.value.request == "GET /v5/batches/b1"
    assert len(server.requests()) == 3


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, OmnisendValidationError),
        (401, OmnisendAuthError),
        (403, OmnisendAuthError),
        (404, OmnisendNotFoundError),
        (413, OmnisendPayloadTooLargeError),
    ],
)
def test_4xx_typed_not_retried_with_problem_detail(
    make_conn: Any, server: ScriptedServer, status: int, cls: type[OmnisendAPIError]
) -> None:
    problem = {
        "type": "https://problems.omnisend.com/problem",
        "title": "Problem",
        "status": status,
        "detail": f"detail of {status}",
        "instance": "urn:omnisend:request:1",
        "errors": [{"field": "items[0].eventTime", "code": "invalid_format", "message": "bad time"}],
    }
    server.route = lambda seen: Reply(status, problem)
    hook = new_hook(make_conn, server)
    with pytest.raises(cls) as info:
        hook.create_batch([EVENT])
    err = info.value
    assert (err.status, err.problem, err.request) == (status, problem, "POST /v5/batches")
    assert f"detail of {status}" in str(err)
    assert "items[0].eventTime: bad time" in str(err)
    assert len(server.requests()) == 1


def test_dropped_post_response_is_lost_and_not_resent(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(drop=True), Reply(200, {"batchID": "never"}))
    hook = new_hook(make_conn, server)
    with pytest.raises(OmnisendResponseLostError) as info:
        hook.create_batch([EVENT])
    assert "may have been sent" in str(info.value)
    assert len(server.requests("POST")) == 1


def test_dropped_get_is_retried(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(drop=True), Reply(200, BATCH))
    hook = new_hook(make_conn, server)
    assert hook.get_batch("b1") == BATCH
    assert len(server.requests()) == 2


def test_connection_refused_post_is_retried(make_conn: Any) -> None:
    """Nothing listens at first; the server comes up during the hook's back-off."""
    port = free_port()
    late: list[ScriptedServer] = []

    def start_server_then_sleep(seconds: float) -> None:
        if not late:
            srv = ScriptedServer(port).start()
            srv.add(Reply(201, {"batchID": "b9"}))
            late.append(srv)

    hook = new_hook(
        make_conn,
        f"http://127.0.0.1:{port}",
        pacer=RateLimitPacer(sleep=start_server_then_sleep),
    )
    try:
        assert hook.create_batch([EVENT]) == "b9"
        assert len(late[0].requests("POST")) == 1
    finally:
        for srv in late:
            srv.stop()


def test_connection_refused_budget_exhausted(make_conn: Any) -> None:
    hook = new_hook(make_conn, f"http://127.0.0.1:{free_port()}", retry=fast_retry(max_attempts=3))
    with pytest.raises(OmnisendTransportError, match="after 3 attempts") as info:
        hook.get_batch("b1")
    assert not isinstance(info.value, OmnisendResponseLostError)


def test_redirects_are_not_followed(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(301, b"", {"Location": "https://elsewhere.example/v5/batches"}))
    hook = new_hook(make_conn, server)
    with pytest.raises(OmnisendAPIError, match="redirected") as info:
        hook.create_batch([EVENT])
    assert info.value.status == 301
    assert len(server.requests()) == 1


# -- batches ----------------------------------------------------------------------------------------


def test_submit_batch_body_posts_exactly_the_bytes(make_conn: Any, server: ScriptedServer) -> None:
    body = b'{"method":"POST","endpoint":"events","items":[{"eventName":"placed order","x":"\xc3\xa9"}]}'
    server.add(Reply(202, {"batchID": "b3"}))
    hook = new_hook(make_conn, server)
    assert hook.submit_batch_body(body) == "b3"
    (seen,) = server.requests()
    assert seen.body == body
    assert seen.header("Content-Type") == "application/json"


def test_2xx_without_batch_id_is_a_lost_response(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(200, {"ok": True}))
    hook = new_hook(make_conn, server)
    with pytest.raises(OmnisendResponseLostError, match="without a batchID"):
        hook.submit_batch_body(b"{}")


def test_batch_limits_are_checked_before_sending(make_conn: Any, server: ScriptedServer) -> None:
    hook = new_hook(make_conn, server, max_items_per_batch="2", max_payload_bytes="2048")
    limits = hook.batch_limits
    assert (limits.max_items, limits.max_payload_bytes) == (2, 2048)
    with pytest.raises(OmnisendConfigError, match="max_items_per_batch=2"):
        hook.create_batch([EVENT] * 3)
    with pytest.raises(OmnisendConfigError, match="max_payload_bytes=2048"):
        hook.create_batch([{**EVENT, "properties": {"note": "x" * 3000}}])
    with pytest.raises(OmnisendConfigError, match="empty"):
        hook.create_batch([])
    assert server.requests() == []


def test_get_batch_items_merges_every_item(make_conn: Any, server: ScriptedServer) -> None:
    server.add(
        Reply(
            200,
            {
                "batchID": "b1",
                "responses": [{"itemID": "i1", "status": "finished", "request": {"eventID": "e1"}}],
                "errors": [
                    {
                        "itemID": "i2",
                        "status": "finished",
                        "responseCode": 400,
                        "request": {"eventID": "e2"},
                        "response": {"detail": "eventTime is invalid"},
                    }
                ],
                "items": [{"itemID": "i3", "status": "finished", "responseCode": 202, "request": {}}],
            },
        )
    )
    hook = new_hook(make_conn, server, api_version="2026-03-15")
    items = hook.get_batch_items("b1")
    assert server.requests()[0].path == "/api/batches/b1/items"
    assert [(i["itemID"], item_succeeded(i)) for i in items] == [("i1", True), ("i2", False), ("i3", True)]
    assert items[1]["response"] == {"detail": "eventTime is invalid"}


def test_get_batch_items_falls_back_to_the_batch_body(make_conn: Any, server: ScriptedServer) -> None:
    server.add(
        Reply(404, {"detail": "no such route"}),
        Reply(200, {"batchID": "b1", "errors": [{"itemID": "i9", "responseCode": 400}]}),
    )
    hook = new_hook(make_conn, server)
    items = hook.get_batch_items("b1")
    assert [s.path for s in server.requests()] == ["/v5/batches/b1/items", "/v5/batches/b1"]
    assert [(i["itemID"], item_succeeded(i)) for i in items] == [("i9", False)]


def test_list_batches_follows_offset_paging(make_conn: Any, server: ScriptedServer) -> None:
    everything = [{"batchID": f"b{n}"} for n in range(7)]

    def page(seen: Seen) -> Reply:
        offset = int(seen.query["offset"][0])
        size = min(3, int(seen.query["limit"][0]))  # the server caps pages lower than asked
        batches = everything[offset : offset + size]
        more = offset + size < len(everything)
        nxt = f"/v5/batches?offset={offset + size}" if more else None
        return Reply(200, {"batches": batches, "paging": {"offset": offset, "next": nxt}})

    server.route = page
    hook = new_hook(make_conn, server)
    found = hook.list_batches("events", status="finished", date_from="2026-01-01", limit=None)
    assert [b["batchID"] for b in found] == [f"b{n}" for n in range(7)]
    seen = server.requests()
    assert [s.query["offset"] for s in seen] == [["0"], ["3"], ["6"]]
    assert seen[0].query["endpoint"] == ["events"]
    assert seen[0].query["status"] == ["finished"]
    assert seen[0].query["dateFrom"] == ["2026-01-01"]
    assert hook.list_batches(limit=2) == everything[:2]


def test_list_batches_needs_a_known_endpoint(make_conn: Any, server: ScriptedServer) -> None:
    hook = new_hook(make_conn, server)
    with pytest.raises(OmnisendConfigError, match="endpoint is required"):
        hook.list_batches(endpoint="")


def test_list_automations_uses_2026_api_with_cursor_paging(make_conn: Any, server: ScriptedServer) -> None:
    server.add(
        Reply(
            200,
            {
                "automations": [{"id": "a1", "isEnabled": True}],
                "paging": {"cursors": {"after": "c1", "before": None}, "hasMore": True, "limit": 250},
            },
        ),
        Reply(
            200,
            {
                "automations": [{"id": "a2", "isEnabled": True}],
                "paging": {"cursors": {"after": "c2"}, "hasMore": False},
            },
        ),
    )
    hook = new_hook(make_conn, server, api_version="v5")
    assert [a["id"] for a in hook.list_automations()] == ["a1", "a2"]
    first, second = server.requests()
    for seen in (first, second):
        assert (seen.method, seen.path) == ("GET", "/api/automations")
        assert seen.header("Authorization") == f"Omnisend-API-Key {API_KEY}"
        assert seen.header("Omnisend-Version") == "2026-03-15"
        assert seen.header("X-API-KEY") is None
        assert seen.query["isEnabled"] == ["true"]
        assert seen.query["limit"] == ["250"]
    assert "after" not in first.query
    assert second.query["after"] == ["c1"]


def test_list_automations_bearer_and_all(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(200, {"automations": [], "paging": {"hasMore": False}}))
    hook = new_hook(make_conn, server, auth="bearer")
    assert hook.list_automations(enabled=None) == []
    (seen,) = server.requests()
    assert seen.header("Authorization") == f"Bearer {API_KEY}"
    assert seen.header("Omnisend-Version") == "2026-03-15"
    assert "isEnabled" not in seen.query


# -- test_connection, laziness, secrecy -----------------------------------------------------------------


def test_test_connection_is_a_cheap_get(make_conn: Any, server: ScriptedServer) -> None:
    server.add(Reply(200, {"batches": [], "paging": {}}))
    ok, message = new_hook(make_conn, server).test_connection()
    assert ok, message
    assert "Connected to Omnisend" in message
    (seen,) = server.requests()
    assert (seen.method, seen.path, seen.query["limit"]) == ("GET", "/v5/batches", ["1"])


def test_test_connection_explains_a_rejected_key(make_conn: Any, server: ScriptedServer) -> None:
    server.route = lambda seen: Reply(401, {"title": "Unauthorized", "status": 401, "detail": "invalid key"})
    ok, message = new_hook(make_conn, server, password="wrong-key-123456").test_connection()
    assert not ok
    assert message.startswith("Omnisend rejected the API key (401)")
    assert "invalid key" in message
    assert "wrong-key-123456" not in message
    assert {s.method for s in server.requests()} == {"GET"}


def test_test_connection_reports_config_problems(make_conn: Any) -> None:
    ok, message = new_hook(make_conn, "http://api.omnisend.com").test_connection()
    assert not ok
    assert "https" in message
    ok, message = new_hook(make_conn, "https://api.omnisend.com", password=None).test_connection()
    assert not ok
    assert "password" in message
    ok, message = OmnisendHook("no_such_connection").test_connection()
    assert not ok
    assert "no_such_connection" in message


def test_connection_is_read_lazily_and_once(make_conn: Any, server: ScriptedServer, monkeypatch: Any) -> None:
    hook = OmnisendHook("not_defined_yet")  # no connection needed to construct
    assert repr(hook) == "OmnisendHook(omnisend_conn_id='not_defined_yet')"
    calls: list[str] = []
    original = OmnisendHook.get_connection

    def counting(conn_id: str) -> Any:
        calls.append(conn_id)
        return original(conn_id)

    server.route = lambda seen: Reply(200, BATCH)
    hook = new_hook(make_conn, server)
    monkeypatch.setattr(OmnisendHook, "get_connection", staticmethod(counting))
    hook.get_batch("b1")
    hook.get_batch("b2")
    assert len(calls) == 1


def test_api_key_never_leaks(make_conn: Any, server: ScriptedServer, caplog: Any, capfd: Any) -> None:
    caplog.set_level(logging.DEBUG)
    server.add(
        Reply(500, {"detail": f"upstream echoed X-API-KEY: {API_KEY}"}),
        Reply(429, {"retryAfter": 0}, {"Retry-After": "0"}),
        Reply(400, {"detail": f"bad key {API_KEY}", "errors": [{"field": "k", "message": API_KEY}]}),
        Reply(drop=True),
    )
    hook = new_hook(make_conn, server)
    errors: list[BaseException] = []
    with pytest.raises(OmnisendValidationError) as info:
        hook.get_batch("b1")
    errors.append(info.value)
    with pytest.raises(OmnisendResponseLostError) as lost:
        hook.create_batch([EVENT])
    errors.append(lost.value)
    _ok, message = OmnisendHook(make_conn(f"http://127.0.0.1:{free_port()}")).test_connection()
    captured = capfd.readouterr()
    texts = [
        caplog.text,
        captured.out,
        captured.err,
        repr(hook),
        repr(hook.settings),
        message,
        *(str(e) for e in errors),
        *(repr(e) for e in errors),
        json.dumps(errors[0].problem),  # type: ignore[attr-defined]
    ]
    assert "***" in str(errors[0])
    for text in texts:
        assert API_KEY not in text
    assert server.requests()[0].header("X-API-KEY") == API_KEY  # it was really used


def test_one_session_per_thread_reused(make_conn: Any, server: ScriptedServer) -> None:
    server.route = lambda seen: Reply(200, BATCH)
    hook = new_hook(make_conn, server)
    hook.get_batch("b1")
    session = hook._session()
    hook.get_batch("b2")
    assert hook._session() is session
    for prefix in ("http://", "https://"):
        adapter = session.get_adapter(f"{prefix}127.0.0.1")
        assert adapter.max_retries.total == 0  # type: ignore[attr-defined]
    other: list[Any] = []
    thread = threading.Thread(target=lambda: other.append(hook._session()))
    thread.start()
    thread.join(5)
    assert other
    assert other[0] is not session
    hook.close()


@pytest.mark.parametrize(
    "host",
    [
        f"https://apiuser:{API_KEY}@omnisend.invalid:notaport",
        f"ftp://apiuser:{API_KEY}@omnisend.invalid",
        f"http://apiuser:{API_KEY}@10.0.0.5:8899",
    ],
)
def test_a_key_in_the_host_reaches_no_error_or_log(
    make_conn: Any, host: str, caplog: pytest.LogCaptureFixture
) -> None:
    hook = new_hook(make_conn, host)
    ok, message = hook.test_connection()
    assert not ok
    assert "***@" in message
    with pytest.raises(OmnisendConfigError) as caught:
        hook.get_batch("b1")
    assert API_KEY not in f"{message} {caught.value!s} {caught.value!r} {caplog.text}"
