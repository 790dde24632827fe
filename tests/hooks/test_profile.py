"""Connection settings and API-version profiles: parsing, validation, headers."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.hooks._profile import (
    AUTOMATIONS_PROFILE,
    PROFILES,
    OmnisendConnectionSettings,
    is_loopback_host,
    own_extras,
    strip_own_extras,
    validate_secret,
)


def parse(host: str | None = "https://api.omnisend.com", **extra: object) -> OmnisendConnectionSettings:
    return OmnisendConnectionSettings.from_connection_fields(host=host, extra=extra, conn_id="omni")


def test_defaults() -> None:
    s = parse(None)
    assert s == OmnisendConnectionSettings(
        base_url="https://api.omnisend.com",
        api_version="v5",
        auth="api_key",
        max_items_per_batch=1000,
        max_payload_bytes=1_000_000,
        timeout=30.0,
    )
    assert s.profile is PROFILES["v5"]
    assert s.automations_profile is AUTOMATIONS_PROFILE


def test_2026_default_items_and_string_extras_from_the_ui() -> None:
    s = parse(
        "https://api.omnisend.com/",
        extra__omnisend__api_version="2026-03-15",
        extra__omnisend__max_items_per_batch="50",
        extra__omnisend__max_payload_bytes=" 200000 ",
        extra__omnisend__timeout="7.5",
        extra__omnisend__auth="BEARER",
    )
    assert (s.api_version, s.max_items_per_batch, s.max_payload_bytes, s.timeout, s.auth) == (
        "2026-03-15",
        50,
        200_000,
        7.5,
        "bearer",
    )
    assert s.base_url == "https://api.omnisend.com"
    assert parse(api_version="2026-03-15").max_items_per_batch == 100


def test_bare_name_wins_and_empty_values_mean_default() -> None:
    s = parse(
        api_version="2026-03-15", extra__omnisend__api_version="v5", timeout="", max_items_per_batch=None
    )
    assert s.api_version == "2026-03-15"
    assert s.timeout == 30.0
    assert s.max_items_per_batch == 100


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("http://127.0.0.1:8899", "http://127.0.0.1:8899"),
        ("http://localhost:8899/", "http://localhost:8899"),
        ("http://[::1]:8899", "http://[::1]:8899"),
        ("http://127.5.6.7", "http://127.5.6.7"),
        ("api.omnisend.com", "https://api.omnisend.com"),
        ("https://proxy.example.com/omnisend", "https://proxy.example.com/omnisend"),
    ],
)
def test_base_url_accepts(host: str, expected: str) -> None:
    assert parse(host).base_url == expected


def test_port_and_schema_fields_fill_in_when_host_has_none() -> None:
    s = OmnisendConnectionSettings.from_connection_fields(
        host="127.0.0.1", extra={}, port=8899, schema="http"
    )
    assert s.base_url == "http://127.0.0.1:8899"


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("http://api.omnisend.com", ["'omni'", "host", "https", "Fix: use https://api.omnisend.com"]),
        ("http://10.0.0.5:8899", ["host", "loopback"]),
        ("ftp://api.omnisend.com", ["host", "API root URL"]),
        ("https://api.omnisend.com/v5", ["version path", "api_version"]),
        ("https://api.omnisend.com/api/", ["version path"]),
        ("https://user:pw@api.omnisend.com", ["without credentials"]),
        ("https://api.omnisend.com:notaport", ["valid port"]),
    ],
)
def test_base_url_refused(host: str, words: list[str]) -> None:
    with pytest.raises(OmnisendConfigError) as info:
        parse(host)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"api_version": "v3"}, ["api_version", "v5", "2026-03-15"]),
        ({"auth": "basic"}, ["auth", "api_key", "bearer"]),
        ({"max_items_per_batch": 1001}, ["max_items_per_batch", "1 to 1000", "lower it"]),
        (
            {"api_version": "2026-03-15", "max_items_per_batch": "500"},
            ["max_items_per_batch", "1 to 100", "2026-03-15"],
        ),
        ({"max_items_per_batch": -1}, ["max_items_per_batch"]),
        ({"max_items_per_batch": "lots"}, ["max_items_per_batch", "whole number"]),
        ({"max_items_per_batch": True}, ["max_items_per_batch"]),
        ({"max_payload_bytes": 100}, ["max_payload_bytes", "from 1024"]),
        ({"max_payload_bytes": "1.5"}, ["max_payload_bytes", "whole number"]),
        ({"timeout": "0"}, ["timeout", "> 0"]),
        ({"timeout": "soon"}, ["timeout", "number of seconds"]),
        ({"timeout": "nan"}, ["timeout"]),
        ({"api_version": 5}, ["api_version", "string"]),
        ({"retry_budget": "5"}, ["retry_budget", ">= timeout (30)"]),
        ({"retry_budget": "soon"}, ["retry_budget", "number"]),
        ({"retry_budget": "inf"}, ["retry_budget"]),
        ({"retry_budget": "1e20"}, ["retry_budget", "<= 86400"]),
        ({"timeout": "1e20"}, ["timeout", "<= 3600"]),
        ({"max_payload_bytes": "1e20"}, ["max_payload_bytes", "from 1024 to 10000000"]),
        ({"max_items_per_batch": "1e20"}, ["max_items_per_batch", "from 1 to 1000"]),
    ],
)
def test_bad_extras_name_the_field_and_the_fix(extra: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(OmnisendConfigError) as info:
        parse(**extra)
    text = str(info.value)
    assert text.startswith("Omnisend connection 'omni': ")
    assert "Fix" in text or "must be" in text
    for word in words:
        assert word in text


def test_settings_are_frozen_and_validated_directly() -> None:
    s = OmnisendConnectionSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.timeout = 1  # type: ignore[misc]
    with pytest.raises(OmnisendConfigError, match="timeout"):
        OmnisendConnectionSettings(timeout=-1)
    with pytest.raises(OmnisendConfigError, match="https"):
        OmnisendConnectionSettings(base_url="http://example.com")


@pytest.mark.parametrize(
    ("name", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("128.0.0.1", False),
        ("localhost.example.com", False),
        ("api.omnisend.com", False),
    ],
)
def test_loopback(name: str, loopback: bool) -> None:
    assert is_loopback_host(name) is loopback


def test_profile_headers_v5_2026_and_bearer() -> None:
    v5, v2026 = PROFILES["v5"], PROFILES["2026-03-15"]
    assert v5.auth_headers("api_key", "K") == {"X-API-KEY": "K"}
    assert v5.auth_headers("bearer", "T") == {"Authorization": "Bearer T"}
    assert v2026.auth_headers("api_key", "K") == {
        "Authorization": "Omnisend-API-Key K",
        "Omnisend-Version": "2026-03-15",
    }
    assert v2026.auth_headers("bearer", "T") == {
        "Authorization": "Bearer T",
        "Omnisend-Version": "2026-03-15",
    }
    assert v5.path("batches", "b1", "items") == "/v5/batches/b1/items"
    assert v2026.path("batches") == "/api/batches"
    assert (v5.max_items_per_batch, v2026.max_items_per_batch) == (1000, 100)
    assert AUTOMATIONS_PROFILE.path("automations") == "/api/automations"


def test_extras_split_into_ours_and_headers() -> None:
    extra = {
        "api_version": "v5",
        "extra__omnisend__timeout": "5",
        "extra__omnisend__something_new": "x",
        "max_payload_bytes": 5000,
        "X-INTEGRATION-NAME": "backfill",
    }
    assert own_extras(extra) == {"api_version": "v5", "timeout": "5", "max_payload_bytes": 5000}
    assert strip_own_extras(extra) == {"X-INTEGRATION-NAME": "backfill"}


@pytest.mark.parametrize("secret", [None, "", "   ", "abc def", "abc\r\nX-Evil: 1", "key\x00"])
def test_bad_secrets_are_refused_without_echoing_them(secret: str | None) -> None:
    with pytest.raises(OmnisendConfigError, match="password") as info:
        validate_secret(secret)
    if secret and secret.strip():
        assert secret.strip() not in str(info.value)


def test_secret_is_stripped() -> None:
    assert validate_secret("  abc123 \n") == "abc123"


def test_allow_http_admits_an_emulator_on_a_private_network_only() -> None:
    s = OmnisendConnectionSettings.from_connection_fields(
        host="http://omnisend-emulator:8899", extra={"allow_http": "true"}
    )
    assert s.base_url == "http://omnisend-emulator:8899"
    with pytest.raises(OmnisendConfigError, match="https"):
        OmnisendConnectionSettings.from_connection_fields(
            host="http://api.omnisend.com", extra={"allow_http": True}
        )
    with pytest.raises(OmnisendConfigError, match="true or false"):
        OmnisendConnectionSettings.from_connection_fields(
            host="http://omnisend-emulator:8899", extra={"allow_http": "maybe"}
        )


def test_retry_budget_extra() -> None:
    from airflow_omnisend.hooks._pacing import RetryConfig

    assert parse().retry_budget is None
    assert parse().retry_config() == RetryConfig()
    s = parse(extra__omnisend__retry_budget=" 60 ")
    assert s.retry_budget == 60.0
    assert s.retry_config() == RetryConfig(total_budget=60.0)


def test_strict_reconciliation_extra_defaults_to_bulk() -> None:
    assert not OmnisendConnectionSettings.from_connection_fields(host=None, extra={}).strict_reconciliation
    strict = OmnisendConnectionSettings.from_connection_fields(
        host=None, extra={"extra__omnisend__strict_reconciliation": "true"}
    )
    assert strict.strict_reconciliation
    with pytest.raises(OmnisendConfigError, match="strict_reconciliation"):
        OmnisendConnectionSettings.from_connection_fields(host=None, extra={"strict_reconciliation": "often"})


KEY = "sk_live_SECRET_KEY_1234567890"


@pytest.mark.parametrize(
    ("host", "port", "schema"),
    [
        (f"https://apiuser:{KEY}@omnisend.invalid:notaport", None, None),
        (f"ftp://apiuser:{KEY}@omnisend.invalid", None, None),
        (f"apiuser:{KEY}@omnisend.invalid:99999", None, None),
        (f"http://apiuser:{KEY}@10.0.0.5:8899", None, None),
        (f"https://{KEY}@omnisend.invalid/v5", None, None),
        (f"https://apiuser:{KEY}@[::1", None, None),
        (f"https://apiuser:{KEY}@omnisend.invalid", 10**9, "https"),
        (f"https://omnisend.invalid/?api_key={KEY}", None, None),
        (f"https://omnisend.invalid/#{KEY}", None, None),
        (f"https://a:{KEY[:10]}@b:{KEY[10:]}@omnisend.invalid", None, None),
    ],
)
def test_a_key_in_the_host_never_reaches_the_message(host: str, port: int | None, schema: str | None) -> None:
    with pytest.raises(OmnisendConfigError) as info:
        OmnisendConnectionSettings.from_connection_fields(
            host=host, extra={}, port=port, schema=schema, conn_id="omnisend_demo"
        )
    text = f"{info.value!s} {info.value!r}"
    assert "omnisend_demo" in text
    assert KEY not in text
    assert KEY[:10] not in text
    assert KEY[10:] not in text
