"""POST/GET batches: limits, validation, the asynchronous lifecycle, per-item results, stops, de-dup."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from emulator_http import Api, make_event, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_omnisend.testing.emulator import OmnisendEmulator

pytestmark = pytest.mark.integration


def _field_errors(resp: Any) -> dict[str, str]:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["type"].startswith("https://problems.omnisend.com/")
    return {e["field"]: e["code"] for e in body["errors"]}


@pytest.mark.parametrize("version", ["v5", "2026-03-15"])
def test_create_answers_201_with_a_24_hex_batch_id(emu: OmnisendEmulator, version: str) -> None:
    resp = Api(emu, version).post_batch([make_event(0), make_event(1)], origin="api")
    assert resp.status_code == 201
    body = resp.json()
    assert set(body) == {"batchID", "totalCount"}
    assert body["totalCount"] == 2
    assert len(body["batchID"]) == 24
    int(body["batchID"], 16)


@pytest.mark.parametrize(("version", "limit"), [("v5", 1000), ("2026-03-15", 100)])
def test_item_limit_per_version(emu: OmnisendEmulator, version: str, limit: int) -> None:
    api = Api(emu, version)
    assert api.post_batch([make_event(i) for i in range(limit)]).status_code == 201
    over = api.post_batch([make_event(i) for i in range(limit + 1)])
    assert _field_errors(over) == {"items": "max_items"}
    assert str(limit) in over.json()["errors"][0]["message"]


def test_body_over_the_payload_limit_is_413_and_the_connection_stays_usable(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    emu = start_emulator(max_payload_bytes=5_000)
    api = Api(emu)
    big = api.post_batch([make_event(i) for i in range(40)])
    assert big.status_code == 413
    assert big.json()["status"] == 413
    assert "5000" in big.json()["detail"]
    # same kept-alive session: the refused body was drained, the next request parses fine
    assert api.post_batch([make_event(0)]).status_code == 201
    assert emu.store.request_count("/v5/batches", status=413) == 1


def test_malformed_and_incomplete_bodies_are_400_with_field_errors(v5: Api) -> None:
    assert _field_errors(v5.post_raw(b'{"method": "POST", "items": [')) == {"body": "invalid_json"}
    assert _field_errors(v5.post_raw(b"[1, 2]")) == {"body": "invalid_type"}
    assert _field_errors(v5.post_raw(b"{}")) == {
        "method": "required",
        "endpoint": "required",
        "items": "required",
    }
    bad = {"method": "GET", "endpoint": "orders", "items": [], "origin": 5, "eventID": "x"}
    assert _field_errors(v5.post_raw(orjson.dumps(bad))) == {
        "method": "invalid_value",
        "endpoint": "invalid_value",
        "items": "min_items",
        "origin": "invalid_type",
        "eventID": "unknown_field",
    }
    assert _field_errors(v5.post_raw(b'{"method": "POST", "endpoint": "events", "items": {}}')) == {
        "items": "invalid_type"
    }


def test_lifecycle_pending_in_progress_finished_with_timing_fields(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    emu = start_emulator(processing_delay=0.6)
    api = Api(emu, "2026-03-15")
    batch_id = api.post_batch([make_event(i) for i in range(3)]).json()["batchID"]
    seen: list[str] = []

    def status() -> str:
        body = api.get(f"/batches/{batch_id}").json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        return str(body["status"])

    wait_until(lambda: status() == "finished", timeout=5)
    assert seen == ["pending", "inProgress", "finished"]
    body = api.get(f"/batches/{batch_id}").json()
    assert (body["totalCount"], body["finishedCount"], body["errorsCount"]) == (3, 3, 0)
    assert body["createdAt"] <= body["startedAt"] <= body["endedAt"]
    created = datetime.fromisoformat(body["createdAt"])
    ended = datetime.fromisoformat(body["endedAt"])
    assert ended - created >= timedelta(seconds=0.55)
    assert [r["request"]["eventID"] for r in body["responses"]] == [
        make_event(i)["eventID"] for i in range(3)
    ]
    assert body["errors"] == []


def test_a_running_batch_shows_no_items_yet(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(processing_delay=5)
    api = Api(emu)
    batch_id = api.post_batch([make_event(0)]).json()["batchID"]
    body = api.get(f"/batches/{batch_id}/items").json()
    assert body["status"] in ("pending", "inProgress")
    assert (body["finishedCount"], body["responses"], body["errors"], body["endedAt"]) == (0, [], [], None)


def test_per_item_errors_are_reported_with_400_problems(v5: Api, emu: OmnisendEmulator) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    items: list[Any] = [
        make_event(0),
        make_event(1, eventTime="2024-01-01T00:00:00"),  # no offset
        make_event(2, eventTime=future),
        make_event(3, contact={"firstName": "Ann"}),
        make_event(4, eventID="not-a-uuid"),
        {k: v for k, v in make_event(5).items() if k not in ("eventName", "eventVersion")},
        make_event(6, eventTime="2024-01-01 10:00:00+02:00"),  # the 2026 space form is fine
        "not an object",
    ]
    batch = v5.send_and_wait(items)
    assert batch["status"] == "finished"
    assert (batch["finishedCount"], batch["errorsCount"]) == (8, 6)
    assert [r["request"]["eventID"] for r in batch["responses"]] == [items[0]["eventID"], items[6]["eventID"]]
    assert {r["responseCode"] for r in batch["responses"]} == {202}
    codes = [{e["field"]: e["code"] for e in err["response"]["errors"]} for err in batch["errors"]]
    assert codes == [
        {"eventTime": "invalid_format"},
        {"eventTime": "future"},
        {"contact": "required"},
        {"eventID": "invalid_format"},
        {"eventName": "required", "eventVersion": "required"},
        {"": "invalid_type"},
    ]
    for err in batch["errors"]:
        assert err["responseCode"] == 400
        assert err["status"] == "finished"
        assert err["response"]["status"] == 400
        assert len(err["itemID"]) == 24
    items_view = v5.get(f"/batches/{batch['batchID']}/items").json()
    assert items_view["responses"] == batch["responses"]
    assert items_view["errors"] == batch["errors"]
    assert [e.event_id for e in emu.store.accepted_events()] == [items[0]["eventID"], items[6]["eventID"]]


def test_too_many_failures_stop_the_batch_and_unprocessed_items_are_left_out(
    v5: Api, emu: OmnisendEmulator
) -> None:
    # default rule: stop once more than 10 of the first 20 processed items failed
    items = [make_event(i, contact={}) if i % 4 else make_event(i) for i in range(60)]
    batch = v5.send_and_wait(items)
    assert batch["status"] == "stopped"
    # items 0..13: the 11th failure is item 14 (i % 4 != 0 fails: 1,2,3,5,6,7,9,10,11,13,14)
    assert batch["finishedCount"] == 15
    assert batch["errorsCount"] == 11
    assert len(batch["responses"]) + len(batch["errors"]) == 15
    assert batch["totalCount"] == 60
    sent = {i["eventID"] for i in items[:15]}
    assert {e["request"]["eventID"] for e in batch["responses"] + batch["errors"]} == sent
    assert emu.store.accepted_count() == 4
    assert str(emu.store.batches()[0].stop_reason).startswith("too many errors")


def test_ten_failures_in_twenty_do_not_stop_a_batch(v5: Api) -> None:
    items = [make_event(i, contact={}) if i < 10 else make_event(i) for i in range(30)]
    batch = v5.send_and_wait(items)
    assert (batch["status"], batch["finishedCount"], batch["errorsCount"]) == ("finished", 30, 10)


def test_duplicates_succeed_but_are_counted_not_recorded(v5: Api, emu: OmnisendEmulator) -> None:
    first = v5.send_and_wait([make_event(i) for i in range(5)])
    again = v5.send_and_wait([make_event(i) for i in range(3, 8)])
    same_id_other_time = make_event(0, eventTime="2024-02-01T00:00:00Z")
    third = v5.send_and_wait([same_id_other_time, make_event(0)])
    assert all(b["errorsCount"] == 0 for b in (first, again, third))
    assert {r["responseCode"] for r in again["responses"]} == {202}
    assert emu.store.accepted_count() == 9  # 0..7 plus event 0 at another eventTime
    assert emu.store.duplicate_count() == 3  # 3, 4 and 0 again
    dups = emu.store.duplicates()
    assert [d.event_id for d in dups] == [make_event(i)["eventID"] for i in (3, 4, 0)]
    assert dups[0].batch_id == again["batchID"]
    events = emu.store.accepted_events()
    assert events[0].order_id == "1000"
    assert events[0].event_name == "placed order"
    assert events[0].batch_id == first["batchID"]
    assert [b.duplicate_count for b in emu.store.batches()] == [0, 2, 1]


def test_list_filters_and_offset_paging(v5: Api, emu: OmnisendEmulator) -> None:
    ids = [v5.send_and_wait([make_event(i)])["batchID"] for i in range(5)]
    stopped = v5.send_and_wait([make_event(100 + i, contact={}) for i in range(11)])["batchID"]
    contacts = v5.post_batch([{"email": "a@example.com"}], endpoint="contacts")
    assert contacts.status_code == 201
    emu.wait_until_idle()
    page1 = v5.get("/batches", endpoint="events", limit=2).json()
    assert [b["batchID"] for b in page1["batches"]] == ids[:2]
    assert page1["paging"]["previous"] is None
    assert "responses" not in page1["batches"][0]
    collected, url = [], page1["paging"]["next"]
    while url:
        page = v5.session.get(url, headers=v5.headers(), timeout=5).json()
        collected += [b["batchID"] for b in page["batches"]]
        url = page["paging"]["next"]
    assert collected == [*ids[2:], stopped]
    assert [
        b["batchID"] for b in v5.get("/batches", endpoint="events", status="stopped").json()["batches"]
    ] == [stopped]
    assert len(v5.get("/batches", endpoint="contacts").json()["batches"]) == 1
    today = datetime.now(UTC).date()
    assert (
        len(v5.get("/batches", endpoint="events", dateFrom=str(today), dateTo=str(today)).json()["batches"])
        == 6
    )
    tomorrow = today + timedelta(days=1)
    assert v5.get("/batches", endpoint="events", dateFrom=str(tomorrow)).json()["batches"] == []
    assert _field_errors(v5.get("/batches")) == {"endpoint": "required"}
    assert _field_errors(v5.get("/batches", endpoint="events", limit=251, status="done", dateTo="03/10")) == {
        "limit": "out_of_range",
        "status": "invalid_value",
        "dateTo": "invalid_format",
    }


def test_unknown_batch_is_404_and_wrong_method_405(v5: Api, emu: OmnisendEmulator) -> None:
    missing = v5.get("/batches/ffffffffffffffffffffffff")
    assert missing.status_code == 404
    assert missing.json()["status"] == 404
    assert v5.get("/nothing-here").status_code == 404
    put = v5.session.put(v5.url("/batches/abc"), headers=v5.headers(), timeout=5)
    assert put.status_code == 405
    assert put.headers["Allow"] == "GET"
    assert v5.session.get(f"{emu.base_url}/v4/track", timeout=5).status_code == 404


def test_other_endpoints_and_put_are_accepted_but_record_no_events(v5: Api, emu: OmnisendEmulator) -> None:
    resp = v5.post_batch([{"productID": "1"}], endpoint="products", method="PUT")
    assert resp.status_code == 201
    batch = emu.wait_for_batch(resp.json()["batchID"])
    assert (batch.status, batch.method, batch.endpoint, batch.finished_count) == (
        "finished",
        "PUT",
        "products",
        1,
    )
    assert emu.store.accepted_count() == 0


def test_chunked_request_bodies_are_read(v5: Api, emu: OmnisendEmulator) -> None:
    body = orjson.dumps({"method": "POST", "endpoint": "events", "items": [make_event(0)]})
    resp = v5.session.post(
        v5.url("/batches"), data=iter([body[:50], body[50:]]), headers=v5.headers(), timeout=5
    )  # a generator body is sent chunked
    assert resp.status_code == 201, resp.text
    emu.wait_until_idle()
    assert emu.store.accepted_count() == 1


def test_expect_100_continue_is_answered_before_the_body(v5: Api, emu: OmnisendEmulator) -> None:
    body = orjson.dumps({"method": "POST", "endpoint": "events", "items": [make_event(0)]})
    host, port = emu.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        head = (
            f"POST /v5/batches HTTP/1.1\r\nHost: {host}\r\nX-API-KEY: {emu.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
        )
        sock.sendall(head.encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 201 ")


@pytest.mark.parametrize("version", ["v5", "2026-03-15"])
def test_list_carries_the_counters_and_pages_past_a_hundred(
    start_emulator: Callable[..., OmnisendEmulator], version: str
) -> None:
    from airflow_omnisend.testing.emulator import FaultConfig

    emu = start_emulator(faults=FaultConfig(omit_counters_next_batches=1, item_400_rate=1.0))
    api = Api(emu, version)
    first = api.post_batch([make_event(0), make_event(1)]).json()["batchID"]
    emu.wait_until_idle()  # the items are judged when the batch is processed: under the faults above
    emu.set_faults(FaultConfig())
    ids = [first, *(api.post_batch([make_event(10 + i)]).json()["batchID"] for i in range(104))]
    emu.wait_until_idle()
    page1 = api.get("/batches", endpoint="events").json()
    assert len(page1["batches"]) == 100
    assert page1["paging"]["limit"] == 100
    page2 = api.get("/batches", endpoint="events", offset=100).json()
    assert [b["batchID"] for b in page1["batches"] + page2["batches"]] == ids
    assert page2["paging"]["next"] is None
    # the first batch: every item refused (400), answered without counters, in the list and on its own
    assert not {"totalCount", "finishedCount", "errorsCount"} & set(page1["batches"][0])
    assert "totalCount" not in api.get(f"/batches/{first}").json()
    items = api.get(f"/batches/{first}/items").json()
    assert [i["responseCode"] for i in items["errors"]] == [400, 400]
    assert items["responses"] == []
    clean = page1["batches"][1]
    assert (clean["status"], clean["totalCount"], clean["finishedCount"], clean["errorsCount"]) == (
        "finished", 1, 1, 0,
    )  # fmt: skip
    assert emu.store.accepted_count() == 104
