"""Auth per API version: v5 X-API-KEY, 2026 Authorization + Omnisend-Version, bearer, permissions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import requests
from emulator_http import Api, make_event

from airflow_omnisend.testing.emulator import ApiKeyGrant, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.integration


def _problem(resp: requests.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= set(body)
    assert isinstance(body, dict)
    return body


def test_v5_accepts_x_api_key_and_bearer(emu: OmnisendEmulator) -> None:
    assert Api(emu, "v5").post_batch([make_event()]).status_code == 201
    resp = requests.post(
        f"{emu.base_url}/v5/batches",
        json={"method": "POST", "endpoint": "events", "items": [make_event(1)]},
        headers={"Authorization": f"Bearer {emu.api_key}"},
        timeout=5,
    )
    assert resp.status_code == 201


@pytest.mark.parametrize("version", ["v5", "2026-03-15"])
def test_missing_or_wrong_key_is_401_without_echoing_the_key(emu: OmnisendEmulator, version: str) -> None:
    wrong = Api(emu, version, key="not-the-key-zz9")
    body = _problem(wrong.get("/batches", endpoint="events"), 401)
    assert "not-the-key-zz9" not in str(body)
    missing = requests.get(f"{emu.base_url}{wrong.prefix}/batches", params={"endpoint": "events"}, timeout=5)
    if version == "v5":
        assert "X-API-KEY" in str(_problem(missing, 401)["detail"])
    else:  # the version header is checked first
        _problem(missing, 400)


def test_2026_needs_the_version_header_and_its_own_auth_scheme(emu: OmnisendEmulator) -> None:
    url = f"{emu.base_url}/api/batches"
    auth = {"Authorization": f"Omnisend-API-Key {emu.api_key}"}
    no_version = _problem(requests.get(url, params={"endpoint": "events"}, headers=auth, timeout=5), 400)
    assert no_version["errors"] == [
        {"field": "Omnisend-Version", "code": "required", "message": "send Omnisend-Version: 2026-03-15"}
    ]
    bad_version = {**auth, "Omnisend-Version": "1999-01-01"}
    _problem(requests.get(url, params={"endpoint": "events"}, headers=bad_version, timeout=5), 400)
    # v5's header on the 2026 API is not a credential there
    v5_style = {"X-API-KEY": emu.api_key, "Omnisend-Version": "2026-03-15"}
    assert "Omnisend-API-Key" in str(
        _problem(requests.get(url, params={"endpoint": "events"}, headers=v5_style, timeout=5), 401)["detail"]
    )
    bearer = {"Authorization": f"Bearer {emu.api_key}", "Omnisend-Version": "2026-03-15"}
    assert requests.get(url, params={"endpoint": "events"}, headers=bearer, timeout=5).status_code == 200
    assert Api(emu, "2026-03-15").get("/batches", endpoint="events").status_code == 200


def test_v5_does_not_take_the_2026_scheme(emu: OmnisendEmulator) -> None:
    headers = {"Authorization": f"Omnisend-API-Key {emu.api_key}"}
    url = f"{emu.base_url}/v5/batches"
    _problem(requests.get(url, params={"endpoint": "events"}, headers=headers, timeout=5), 401)


def test_limited_keys_get_403_naming_the_permission(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(
        extra_keys=(
            ApiKeyGrant("writer-only", frozenset({"events.write"})),
            ApiKeyGrant.parse("no-automations:events.write,events.read"),
        )
    )
    full = Api(emu, "2026-03-15")
    batch_id = full.post_batch([make_event()]).json()["batchID"]
    writer = Api(emu, "2026-03-15", key="writer-only")
    assert writer.post_batch([make_event(1)]).status_code == 201
    assert "events.read" in str(_problem(writer.get(f"/batches/{batch_id}"), 403)["detail"])
    _problem(writer.get("/batches", endpoint="events"), 403)
    no_auto = Api(emu, "2026-03-15", key="no-automations")
    assert no_auto.get(f"/batches/{batch_id}").status_code == 200
    assert "automations.read" in str(_problem(no_auto.get("/automations"), 403)["detail"])
    assert full.get("/automations").status_code == 200
    contacts = Api(emu, "v5", key="writer-only").post_batch([{"email": "a@example.com"}], endpoint="contacts")
    assert "contacts.write" in str(_problem(contacts, 403)["detail"])


def test_request_log_keeps_a_fingerprint_not_the_key(v5: Api, emu: OmnisendEmulator) -> None:
    v5.get("/batches", endpoint="events")
    Api(emu, "v5", key="wrong-key").get("/batches", endpoint="events")
    log = emu.store.request_log()
    assert [r.status for r in log] == [200, 401]
    assert log[0].key_fingerprint == emu.fingerprint(emu.api_key) != log[1].key_fingerprint
    assert emu.api_key not in repr(log)
    assert emu.api_key not in repr(emu.config)
    assert all(r.api_version == "v5" and r.path == "/v5/batches" for r in log)


def test_a_revoked_key_is_refused_from_its_next_request_and_a_granted_one_accepted(
    start_emulator: Callable[..., OmnisendEmulator],
) -> None:
    emu = start_emulator(extra_keys=("store-b-key",))
    store_b, main = Api(emu, "v5", key="store-b-key"), Api(emu, "v5")
    assert store_b.post_batch([make_event(0)]).status_code == 201
    resp = requests.post(
        f"{emu.base_url}/__emulator__/keys",
        json={"revoke": ["store-b-key"], "grant": ["store-b-new:events.write"]},
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    assert emu.fingerprint("store-b-key") not in resp.json()["keys"]
    assert emu.fingerprint("store-b-new") in resp.json()["keys"]
    assert "store-b-key" not in resp.text
    _problem(store_b.post_batch([make_event(1)]), 401)
    _problem(store_b.get("/batches", endpoint="events"), 401)
    assert main.post_batch([make_event(2)]).status_code == 201  # the other store's key is untouched
    fresh = Api(emu, "v5", key="store-b-new")
    assert fresh.post_batch([make_event(1)]).status_code == 201
    _problem(fresh.get("/batches", endpoint="events"), 403)  # granted with events.write only
    emu.set_keys(grant=["store-b-key"])
    assert store_b.post_batch([make_event(3)]).status_code == 201


def test_a_key_change_that_names_no_list_is_a_400(emu: OmnisendEmulator) -> None:
    for body in ({"revoke": "k"}, {"grant": [1]}, {"revoke": [], "other": []}, ["k"]):
        resp = requests.post(f"{emu.base_url}/__emulator__/keys", json=body, timeout=5)
        assert resp.status_code == 400, body
