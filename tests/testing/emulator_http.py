"""Raw-HTTP helpers for the emulator tests (a module with a unique name, so test modules can import it)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_omnisend.testing.emulator import OmnisendEmulator

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
NAMESPACE = uuid.UUID("6f1c9e55-0000-4000-8000-000000000000")


def make_event(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid ``placed order`` event; ``i`` makes eventID, eventTime and the order distinct."""
    event: dict[str, Any] = {
        "eventName": "placed order",
        "eventID": str(uuid.uuid5(NAMESPACE, f"order-{i}")),
        "eventTime": (EPOCH + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"email": f"customer{i}@example.com"},
        "properties": {"orderID": str(1000 + i), "totalPrice": 10.5},
    }
    event.update(overrides)
    return event


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def sleep_until(moment: float) -> None:
    """Wait until ``time.monotonic()`` reaches ``moment`` (a wait for time to pass, not a sync)."""
    while (left := moment - time.monotonic()) > 0:
        time.sleep(left)


class Remote:
    """An emulator running in another process: just its address and key."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key


class Api:
    """Raw HTTP to an emulator, with the auth headers of one API version."""

    def __init__(
        self, emulator: OmnisendEmulator | Remote, version: str = "v5", key: str | None = None
    ) -> None:
        self.emulator = emulator
        self.version = version
        self.key = emulator.api_key if key is None else key
        self.session = requests.Session()

    @property
    def prefix(self) -> str:
        return "/v5" if self.version == "v5" else "/api"

    def headers(self) -> dict[str, str]:
        if self.version == "v5":
            return {"X-API-KEY": self.key}
        return {"Authorization": f"Omnisend-API-Key {self.key}", "Omnisend-Version": "2026-03-15"}

    def url(self, path: str) -> str:
        return f"{self.emulator.base_url}{self.prefix}{path}"

    def post_batch(self, items: list[Any], **extra: Any) -> requests.Response:
        body = {"method": "POST", "endpoint": "events", "items": items, **extra}
        return self.session.post(self.url("/batches"), json=body, headers=self.headers(), timeout=10)

    def post_raw(self, data: bytes) -> requests.Response:
        headers = {**self.headers(), "Content-Type": "application/json"}
        return self.session.post(self.url("/batches"), data=data, headers=headers, timeout=10)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.url(path), params=params, headers=self.headers(), timeout=10)

    def send_and_wait(self, items: list[Any]) -> dict[str, Any]:
        """POST a batch, wait for it to end, return its ``GET /batches/{id}`` body."""
        resp = self.post_batch(items)
        assert resp.status_code == 201, resp.text
        batch_id = resp.json()["batchID"]
        assert not isinstance(self.emulator, Remote), "wait through POST /__emulator__/wait-idle instead"
        self.emulator.wait_for_batch(batch_id)
        batch = self.get(f"/batches/{batch_id}")
        assert batch.status_code == 200, batch.text
        result: dict[str, Any] = batch.json()
        return result
