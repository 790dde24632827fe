"""``GET /api/automations``: seeding, isEnabled/nameContains filters, cursor paging, validation."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from emulator_http import Api

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_omnisend.testing.emulator import OmnisendEmulator

pytestmark = pytest.mark.integration


def automation(i: int, enabled: bool, event: str = "placed order", origin: str = "api") -> dict[str, Any]:
    return {
        "id": f"{i:024x}",
        "name": f"Flow {i} on {event}",
        "isEnabled": enabled,
        "trigger": {"condition": {"event": event, "origin": origin}},
        "exitConditions": [{"event": "paid for order", "origin": "api"}] if i % 2 else [],
    }


SEED = [automation(i, enabled=i % 3 != 0) for i in range(1, 11)]  # 3, 6, 9 are disabled


def _all_pages(api: Api, **params: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    while True:
        resp = api.get("/automations", **params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages += 1
        ids += [a["id"] for a in body["automations"]]
        assert body["paging"]["hasMore"] is (body["paging"]["cursors"]["after"] is not None)
        if not body["paging"]["hasMore"]:
            return ids, pages
        params["after"] = body["paging"]["cursors"]["after"]


def test_cursor_paging_and_enabled_filter(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(automations=SEED)
    api = Api(emu, "2026-03-15")
    ids, pages = _all_pages(api, limit=3)
    assert ids == [a["id"] for a in SEED]
    assert pages == 4
    enabled, _ = _all_pages(api, isEnabled="true", limit=2)
    assert enabled == [a["id"] for a in SEED if a["isEnabled"]]
    disabled, _ = _all_pages(api, isEnabled="false")
    assert disabled == [f"{i:024x}" for i in (3, 6, 9)]
    first = api.get("/automations", limit=4).json()
    assert first["paging"] == {
        "cursors": {"after": first["paging"]["cursors"]["after"], "before": None},
        "hasMore": True,
        "limit": 4,
    }
    second = api.get("/automations", limit=4, after=first["paging"]["cursors"]["after"]).json()
    back = api.get("/automations", limit=4, before=second["paging"]["cursors"]["before"]).json()
    assert back["automations"] == first["automations"]
    full = second["automations"][0]
    assert full == SEED[4]  # objects come back as seeded: trigger, exitConditions...


def test_name_filter_and_single_automation(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(automations=SEED)
    api = Api(emu, "2026-03-15")
    assert [a["id"] for a in api.get("/automations", nameContains="FLOW 1 ").json()["automations"]] == [
        SEED[0]["id"]
    ]
    assert api.get(f"/automations/{SEED[1]['id']}").json() == SEED[1]
    assert api.get("/automations/ffffffffffffffffffffffff").status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 251}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"isEnabled": "yes"}, "isEnabled"),
        ({"after": "not-a-cursor!"}, "after"),
        ({"after": "x", "before": "y"}, "after"),
    ],
)
def test_invalid_queries_are_400(api26: Api, params: dict[str, Any], field: str) -> None:
    resp = api26.get("/automations", **params)
    assert resp.status_code == 400
    assert field in {e["field"] for e in resp.json()["errors"]}


def test_limit_bounds_are_accepted(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(automations=[automation(i, True) for i in range(300)])
    api = Api(emu, "2026-03-15")
    assert len(api.get("/automations", limit=250).json()["automations"]) == 250
    assert len(api.get("/automations").json()["automations"]) == 100  # default
    assert len(api.get("/automations", limit=1).json()["automations"]) == 1


def test_seeded_from_a_file_and_replaced_in_code(
    start_emulator: Callable[..., OmnisendEmulator], tmp_path: Path
) -> None:
    path = tmp_path / "automations.json"
    path.write_text(json.dumps({"automations": SEED[:2]}), encoding="utf-8")
    emu = start_emulator(automations_file=str(path))
    api = Api(emu, "2026-03-15")
    assert [a["id"] for a in api.get("/automations").json()["automations"]] == [SEED[0]["id"], SEED[1]["id"]]
    assert emu.set_automations([{"name": "no id yet", "isEnabled": True}]) == 1
    (only,) = api.get("/automations").json()["automations"]
    assert len(only["id"]) == 24
    with pytest.raises(ValueError, match="isEnabled"):
        emu.set_automations([{"isEnabled": "yes"}])


def test_automations_are_2026_only(emu: OmnisendEmulator) -> None:
    assert Api(emu, "v5").get("/automations").status_code == 404
    no_version = Api(emu, "2026-03-15")
    resp = no_version.session.get(
        no_version.url("/automations"),
        headers={"Authorization": f"Omnisend-API-Key {emu.api_key}"},
        timeout=5,
    )
    assert resp.status_code == 400
