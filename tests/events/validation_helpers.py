"""Events for the validation tests: a minimal valid event of each name, and a fixed "now"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def minimal(name: str = "placed order", **props: Any) -> dict[str, Any]:
    return {
        "eventName": name,
        "eventID": "f1eeb5bd-736c-42c7-9cfe-6990f7f59b35",
        "eventTime": "2024-01-01T00:00:00Z",
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"email": "customer@example.com"},
        "properties": {"orderID": "1", "currency": "EUR", **props},
    }
