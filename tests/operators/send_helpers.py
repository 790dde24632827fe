"""Shared helpers of the operator tests: realistic order events, a staged partition, connections."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from airflow_omnisend.staging import PartitionStaging, StagingRoot

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from airflow_omnisend.testing.emulator import OmnisendEmulator

STORE = "acme_store"
DAY = "2024-03-10"
NAMESPACE = uuid.UUID("6f1c5c4e-6f0b-4b59-a8a3-0d6b1c2b8e11")
LIFECYCLE = ("placed order", "paid for order", "order fulfilled", "order refunded")


def order_events(order: int, rng: random.Random, *, events: int | None = None) -> list[dict[str, Any]]:
    """The lifecycle events of one order (placed, then paid/fulfilled/refunded), realistic shape."""
    start = datetime(2024, 3, 10, 8, tzinfo=UTC) + timedelta(seconds=order * 7)
    items = [
        {
            "productID": f"p{rng.randint(1, 500)}",
            "productVariantID": f"v{rng.randint(1, 5000)}",
            "productSKU": f"SKU-{rng.randint(1000, 9999)}",
            "productTitle": rng.choice(["Linen shirt", "Wool socks", "Canvas bag", "Leather belt"]),
            "productPrice": round(rng.uniform(5, 120), 2),
            "productQuantity": rng.randint(1, 3),
            "productURL": f"https://shop.example.com/p/{rng.randint(1, 500)}",
        }
        for _ in range(rng.randint(1, 3))
    ]
    total = round(sum(i["productPrice"] * i["productQuantity"] for i in items), 2)
    count = events if events is not None else rng.choice((1, 2, 3, 4))
    out = []
    for step, name in enumerate(LIFECYCLE[:count]):
        when = start + timedelta(hours=step * 5, microseconds=1000 * (order % 7))
        out.append(
            {
                "eventName": name,
                "eventID": str(uuid.uuid5(NAMESPACE, f"{STORE}:{name}:{order}")),
                "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "eventVersion": "v2",
                "origin": "api",
                "contact": {"email": f"buyer{order}@example.com", "firstName": "Ann"},
                "properties": {
                    "orderID": f"o{order}",
                    "orderNumber": 1000 + order,
                    "currency": "EUR",
                    "totalPrice": total,
                    "subTotalPrice": total,
                    "totalDiscount": 0,
                    "totalTax": 0,
                    "paymentStatus": "paid" if step else "awaitingPayment",
                    "fulfillmentStatus": "fulfilled" if step >= 2 else "unfulfilled",
                    "createdAt": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "lineItems": items,
                },
            }
        )
    return out


def make_events(orders: int, *, seed: int = 1, first_order: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [e for o in range(first_order, first_order + orders) for e in order_events(o, rng)]


def refused_event(n: int) -> dict[str, Any]:
    """An event the emulator refuses per item (400: eventTime without an offset)."""
    event = order_events(100_000 + n, random.Random(n), events=1)[0]
    event["eventTime"] = "2024-03-10 09:00:00"
    return event


def stage_valid(
    root: Path | str, events: list[dict[str, Any]], *, store: str = STORE, day: str = DAY
) -> PartitionStaging:
    """A partition whose valid.ndjson holds ``events`` (what the validate step would have written)."""
    partition = StagingRoot(str(root)).partition(store, day)
    partition.write_bytes(partition.valid, b"".join(orjson.dumps(e) + b"\n" for e in events))
    return partition


def connect(
    monkeypatch: pytest.MonkeyPatch, emu: OmnisendEmulator, conn_id: str = "omnisend_test", **extra: Any
) -> str:
    conn = {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key, "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id
