"""Config validation and the per-item checks, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from airflow_omnisend.testing.emulator import ApiKeyGrant, EmulatorConfig, FaultConfig
from airflow_omnisend.testing.emulator.items import check_event_item, parse_event_time

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_limit": 0}, "EmulatorConfig.rate_limit=0 is invalid: give an integer >= 1"),
        ({"port": 70000}, "EmulatorConfig.port=70000"),
        ({"processing_delay": -1}, "EmulatorConfig.processing_delay=-1"),
        ({"rate_limit_signals": frozenset({"body", "smoke"})}, "choose from ['body', 'header', 'reset']"),
        ({"stop_error_ratio": 0}, "EmulatorConfig.stop_error_ratio=0"),
        ({"extra_keys": ("emulator-api-key",)}, "keys must be distinct"),
        ({"api_key": "has space"}, "without whitespace"),
        ({"automations": {"id": "x"}}, "give a list of JSON objects"),
    ],
)
def test_emulator_config_names_the_bad_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        EmulatorConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"error_5xx_rate": 1.5}, "FaultConfig.error_5xx_rate=1.5 is invalid: give a probability"),
        ({"error_5xx_statuses": (404,)}, "500-599"),
        ({"targets": frozenset({"get_everything"})}, "FaultConfig.targets"),
        ({"burst_429_length": 0}, "FaultConfig.burst_429_length=0"),
        ({"refuse_event_windows": (("2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"),)}, "from < to"),
        ({"refuse_event_windows": (("2024-01-01", "2024-01-02"),)}, "RFC 3339"),
    ],
)
def test_fault_config_names_the_bad_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultConfig(**kwargs)  # type: ignore[arg-type]


def test_fault_config_round_trips_through_json() -> None:
    faults = FaultConfig(
        seed=4,
        targets=frozenset({"*"}),
        burst_429_every=3,
        refuse_event_windows=({"from": "2024-03-10T00:00:00+02:00", "to": "2024-03-11T00:00:00+02:00"},),  # type: ignore[arg-type]
    )
    assert faults.targets == frozenset(
        {"create_batch", "get_batch", "get_batch_items", "list_batches", "automations"}
    )
    assert FaultConfig.from_dict(faults.to_dict()) == faults
    with pytest.raises(ValueError, match="unknown fault setting"):
        FaultConfig.from_dict({"error_rate": 1})


def test_key_grants() -> None:
    assert ApiKeyGrant.parse("k").allows("anything.write")
    limited = ApiKeyGrant.parse("k2:events.write, events.read")
    assert limited.permissions == frozenset({"events.write", "events.read"})
    assert not limited.allows("automations.read")
    assert ApiKeyGrant.parse("k3:").permissions == frozenset()
    assert "k2" not in repr(limited)
    config = EmulatorConfig(extra_keys=["k2:events.write"])  # type: ignore[arg-type]
    assert set(config.grants()) == {"emulator-api-key", "k2"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01t00:00:00.5z", datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2024-01-01 02:00:00+02:00", datetime(2024, 1, 1, tzinfo=UTC)),
        (
            "2024-01-01T00:00:00.123456789-05:30",
            datetime(2024, 1, 1, 0, 0, 0, 123456, timezone(-timedelta(hours=5.5))),
        ),
        ("2024-01-01T00:00:00", None),
        ("2024-01-01", None),
        ("2024-02-30T00:00:00Z", None),
        ("2024-01-01T00:00:00+02:75", None),
        ("1704067200", None),
    ],
)
def test_parse_event_time(text: str, expected: datetime | None) -> None:
    assert parse_event_time(text) == expected


def test_check_event_item() -> None:
    good = {
        "eventName": "placed order",
        "eventID": "f1eeb5bd-736c-42c7-9cfe-6990f7f59b35",
        "eventTime": "2024-01-01T00:00:00Z",
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"phone": "+37060000000"},
    }
    assert check_event_item(good, NOW) == []
    assert check_event_item({**good, "eventTime": "2026-01-01T00:00:30Z"}, NOW, future_tolerance=60) == []
    assert [e.code for e in check_event_item({**good, "eventTime": "2026-01-01T00:00:30Z"}, NOW)] == [
        "future"
    ]
    no_id = {k: v for k, v in good.items() if k != "eventID"}
    assert check_event_item(no_id, NOW) == []
    bad = {**good, "eventName": " ", "origin": 3, "contact": "x", "properties": [], "eventTime": None}
    assert {(e.field, e.code) for e in check_event_item(bad, NOW)} == {
        ("eventName", "invalid_type"),
        ("origin", "invalid_type"),
        ("contact", "invalid_type"),
        ("properties", "invalid_type"),
        ("eventTime", "required"),
    }
