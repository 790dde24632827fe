"""The UI's Test button for an Omnisend connection made in the UI's form, through the REST calls the
bundled Airflow UI makes, against a real api-server and the emulator.

The UI's add form posts ``POST /api/v2/connections`` with the visible fields (a blank field is left
out); its Test button posts ``POST /api/v2/connections/test`` with the stored connection as the list
serves it (password masked, ``port: Number(port)``, so a NULL port goes as ``0``). Airflow 3.3.2 answers
400 when that port differs from the stored one, so the provider's form shows the port field and asks
for it (``get_provider_info`` ui-field-behaviour).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from e2e_deployment import api_key, emulator_config

from airflow_omnisend.get_provider_info import get_provider_info
from airflow_omnisend.testing.emulator import OmnisendEmulator
from airflow_omnisend.testing.local_airflow import AirflowApiError, LocalAirflow

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STORE = "e2e_conn_test"
CONN_TYPE = "omnisend"


@pytest.fixture(scope="module")
def emulator() -> Iterator[OmnisendEmulator]:
    with OmnisendEmulator(emulator_config([STORE])) as emu:
        yield emu


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAirflow]:
    root = tmp_path_factory.mktemp("conn-test")
    dags = root / "dags"
    dags.mkdir()
    env = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    with LocalAirflow(root / "airflow-home", dags, env=env) as deployment:
        yield deployment


def _form_behaviour() -> dict[str, Any]:
    (entry,) = (c for c in get_provider_info()["connection-types"] if c["connection-type"] == CONN_TYPE)
    return dict(entry["ui-field-behaviour"])


def _add_form_body(conn_id: str, typed: dict[str, str]) -> dict[str, Any]:
    """What the UI's add form posts: every visible field the user typed, blank ones left out, the port
    as a number (``port === '' ? undefined : Number(port)``); the connection's extra fields as JSON."""
    hidden = set(_form_behaviour()["hidden-fields"])
    body: dict[str, Any] = {"conn_type": CONN_TYPE, "connection_id": conn_id}
    for field in ("host", "login", "password", "port", "schema", "description"):
        value = typed.get(field, "")
        if field in hidden or value == "":
            continue
        body[field] = int(value) if field == "port" else value
    body["extra"] = json.dumps({"api_version": "v5"})
    return body


def _test_button_body(stored: dict[str, Any]) -> dict[str, Any]:
    """What the UI's Test button posts for a listed connection (Airflow 3.3.2's bundle)."""
    extra = stored.get("extra")
    return {
        "conn_type": stored["conn_type"],
        "connection_id": stored["connection_id"],
        "description": stored.get("description") or "",
        "extra": "{}" if extra in (None, "") else extra,
        "host": stored.get("host") or "",
        "login": stored.get("login") or "",
        "password": stored.get("password") or "",
        "port": int(stored.get("port") or 0),  # Number(null) is 0
        "schema": stored.get("schema") or "",
    }


def _create_and_test(airflow: LocalAirflow, conn_id: str, typed: dict[str, str]) -> dict[str, Any]:
    airflow.api("POST", "/api/v2/connections", _add_form_body(conn_id, typed))
    listed = airflow.api("GET", "/api/v2/connections", params={"limit": 100})
    (stored,) = (c for c in listed["connections"] if c["connection_id"] == conn_id)
    assert stored["password"] != typed["password"], "the list serves the key masked, as the UI sees it"
    result: dict[str, Any] = airflow.api("POST", "/api/v2/connections/test", _test_button_body(stored))
    return result


def test_the_form_shows_the_port_the_test_button_needs(airflow: LocalAirflow) -> None:
    meta = airflow.api("GET", "/ui/connections/hook_meta")
    (omnisend,) = (m for m in meta if m["connection_type"] == CONN_TYPE)
    fields = omnisend["standard_fields"]
    assert fields["port"]["hidden"] is False
    assert "Test" in fields["port"]["title"]
    assert fields["host"]["hidden"] is False
    assert fields["password"]["hidden"] is False
    assert fields["login"]["hidden"] is True


def test_test_button_passes_for_a_connection_made_in_the_form(
    airflow: LocalAirflow, emulator: OmnisendEmulator
) -> None:
    port = str(emulator.port)
    typed = {"host": emulator.base_url, "port": port, "password": api_key(STORE)}
    result = _create_and_test(airflow, "omnisend_ui_form", typed)
    assert result["status"] is True, result
    assert result["message"].startswith(f"Connected to Omnisend at {emulator.base_url}"), result


def test_test_button_names_a_wrong_key(airflow: LocalAirflow, emulator: OmnisendEmulator) -> None:
    port = str(emulator.port)
    typed = {"host": emulator.base_url, "port": port, "password": "not-a-key-of-this-brand"}
    result = _create_and_test(airflow, "omnisend_ui_wrong_key", typed)
    assert result["status"] is False, result
    message = result["message"]
    assert "rejected the API key (401)" in message, message
    assert "Check the connection's password" in message, message
    assert "not-a-key-of-this-brand" not in message


def test_a_blank_port_is_what_airflow_3_3_2_refuses(
    airflow: LocalAirflow, emulator: OmnisendEmulator
) -> None:
    """Why the form asks for the port: left blank, the Test button's ``port: 0`` differs from the
    stored NULL and the api-server refuses to reuse the stored key (fixed in Airflow by
    apache/airflow#73298; this test then fails, and the label can drop its hint)."""
    typed = {"host": emulator.base_url, "password": api_key(STORE)}
    with pytest.raises(AirflowApiError) as refused:
        _create_and_test(airflow, "omnisend_ui_blank_port", typed)
    assert refused.value.status == 400
    assert "host or port to test differs from the stored connection" in str(refused.value)
