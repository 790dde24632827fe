"""What the real-scheduler and distributed end-to-end tests share: a sample shop, a stores file pointing
the real DAGs (``dags/omnisend_orders.py``) at it and at the in-process emulator, a started
:class:`LocalAirflow`, and readers of what a run left behind (staging files, task logs, emulator
batches) - so a test body reads as the scenario it checks.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import yaml

from airflow_omnisend.testing.emulator import ApiKeyGrant, EmulatorConfig
from airflow_omnisend.testing.local_airflow import DagRunInfo, ExecutorProfile, LocalAirflow
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow_omnisend.testing.emulator import OmnisendEmulator

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
TIMEZONE = "Europe/Vilnius"
SHOP_START = date(2024, 3, 4)
SHOP_DAYS = 5
SHOP_ORDERS = 300
SHOP_SEED = 11
#: three days of the shop's five (each has placed, paid, fulfilled... events)
DAYS = ("2024-03-05", "2024-03-06", "2024-03-07")
SHOP_CONN_ID = "shop_e2e"


def dag_id(store_id: str) -> str:
    return f"omnisend_orders__{store_id}"


def omnisend_conn_id(store_id: str) -> str:
    return f"omnisend_{store_id}"


def api_key(store_id: str) -> str:
    """Each store talks to the emulator with its own key, so its batches are told apart by the key's
    fingerprint (and each has its own rate-limit budget, as separate Omnisend brands would)."""
    return f"e2e-key-{store_id}"


def emulator_config(store_ids: Iterable[str], **settings: Any) -> EmulatorConfig:
    return EmulatorConfig(extra_keys=tuple(ApiKeyGrant(api_key(s)) for s in store_ids), **settings)


def local_day_window(day: str, tz: str = TIMEZONE) -> tuple[datetime, datetime]:
    """``[local midnight, next local midnight)`` of ``day`` as aware datetimes (the partition's window)."""
    zone = ZoneInfo(tz)
    first = date.fromisoformat(day)
    return (
        datetime.combine(first, time(0), tzinfo=zone),
        datetime.combine(first + timedelta(days=1), time(0), tzinfo=zone),
    )


def store_entry(store_id: str, **overrides: Any) -> dict[str, Any]:
    """A stores-file entry for the sample shop: short retries so a failing day fails in minutes, an
    ``end_date`` so unpausing schedules no run of today (only backfills run), room for its dirty rows."""
    entry: dict[str, Any] = {
        "store_id": store_id,
        "omnisend_conn_id": omnisend_conn_id(store_id),
        "source_conn_id": SHOP_CONN_ID,
        "timezone": TIMEZONE,
        "start_date": SHOP_START.isoformat(),
        "end_date": (SHOP_START + timedelta(days=SHOP_DAYS - 1)).isoformat(),
        "retries": 1,
        "retry_delay_seconds": 1,
        # about 1% of the sample shop's orders are dirty on purpose; a day may reject a few more than 1%
        "max_reject_ratio": 0.1,
        # the tests read valid.ndjson after the runs (by default the report step deletes it)
        "keep_staged_events": True,
    }
    entry.update(overrides)
    return entry


@dataclass
class E2EWorld:
    """One deployment with its shop, stores, staging root and emulator."""

    airflow: LocalAirflow
    emulator: OmnisendEmulator
    staging: Path
    store_ids: tuple[str, ...]

    def valid_events(self, store_id: str, days: Iterable[str]) -> dict[str, set[tuple[str, str]]]:
        """Day -> ``(eventID, eventTime)`` of the events validation passed (what must reach Omnisend)."""
        found: dict[str, set[tuple[str, str]]] = {}
        for day in days:
            path = self.staging / store_id / day / "valid.ndjson"
            keys = set()
            with path.open("rb") as handle:
                for line in handle:
                    if line.strip():
                        event = json.loads(line)
                        keys.add((event["eventID"], event["eventTime"]))
            found[day] = keys
        return found

    def extracted_count(self, store_id: str, day: str) -> int:
        path = self.staging / store_id / day / "events.ndjson"
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())

    def batches(self, store_id: str) -> set[str]:
        """Ids of the batches the store created (by its API key's fingerprint)."""
        key = self.emulator.fingerprint(api_key(store_id))
        return {b.batch_id for b in self.emulator.store.batches() if b.key_fingerprint == key}

    def accepted(self, batch_ids: set[str]) -> list[tuple[str, str]]:
        """``(eventID, eventTime)`` of every event the emulator accepted from these batches."""
        return [
            (e.event_id, e.event_time)
            for e in self.emulator.store.accepted_events()
            if e.batch_id in batch_ids
        ]


def by_partition(runs: Iterable[DagRunInfo]) -> dict[str, list[DagRunInfo]]:
    days: dict[str, list[DagRunInfo]] = {}
    for run in runs:
        days.setdefault(str(run.partition_key), []).append(run)
    return days


def build_shop(
    path: Path, start: date = SHOP_START, days: int = SHOP_DAYS, orders: int = SHOP_ORDERS
) -> Path:
    build_sample_store(path, orders, SHOP_SEED, timezone=TIMEZONE, start=start, days=days)
    return path


def deployment_env(
    emulator: OmnisendEmulator, store_ids: Iterable[str], shop: Path, stores_file: Path, staging: Path
) -> dict[str, str]:
    env = {
        f"AIRFLOW_CONN_{SHOP_CONN_ID.upper()}": json.dumps({"conn_type": "sqlite", "host": str(shop)}),
        "AIRFLOW_OMNISEND_STORES": str(stores_file),
        "AIRFLOW_OMNISEND_STAGING": str(staging),
    }
    for store_id in store_ids:
        omnisend = {
            "conn_type": "omnisend",
            "host": emulator.base_url,
            "password": api_key(store_id),
            "extra": {"api_version": "v5"},
        }
        env[f"AIRFLOW_CONN_{omnisend_conn_id(store_id).upper()}"] = json.dumps(omnisend)
    return env


@contextlib.contextmanager
def e2e_world(
    root: Path,
    emulator: OmnisendEmulator,
    stores: list[dict[str, Any]],
    *,
    profile: ExecutorProfile | None = None,
    extra_env: dict[str, str] | None = None,
    shop_span: tuple[date, int, int] | None = None,
) -> Iterator[E2EWorld]:
    """Shop, stores file, staging and a started deployment whose store DAGs are parsed, unpaused and
    have their pools; stopped (and checked for leftover processes) on exit.

    :param shop_span: ``(first day, days, orders)`` of the sample shop (default: the shared shop)."""
    shop = build_shop(root / "shop.sqlite", *(shop_span or ()))
    stores_file = root / "stores.yaml"
    stores_file.write_text(yaml.safe_dump({"stores": stores}, sort_keys=False))
    staging = root / "staging"
    staging.mkdir()
    store_ids = tuple(str(s["store_id"]) for s in stores)
    env = deployment_env(emulator, store_ids, shop, stores_file, staging) | dict(extra_env or {})
    airflow = LocalAirflow(root / "airflow-home", DAGS_FOLDER, env=env, profile=profile)
    airflow.start()
    try:
        for store_id in store_ids:
            airflow.set_pool(f"omnisend_{store_id}", 4, f"e2e store {store_id}")
            airflow.wait_for_dag(dag_id(store_id))
            airflow.unpause(dag_id(store_id))
        yield E2EWorld(airflow, emulator, staging, store_ids)
    finally:
        # stop() raises if any process of the deployment (a component or a child that left its
        # process group) is still alive after SIGKILL; what needed SIGKILL at all is worth a note
        killed = airflow.stop()
        if killed:
            print(f"stop() had to kill: {killed}")


@contextlib.contextmanager
def diagnosed(world: E2EWorld, store_id: str | None = None) -> Iterator[None]:
    """On any failure inside, print the deployment's component logs and the failing tasks' logs (pytest
    shows captured output of failed tests)."""
    try:
        yield
    except BaseException:
        print(world.airflow.diagnostics(lines=60))
        if store_id is not None:
            with contextlib.suppress(Exception):
                for ti in world.airflow.task_instances(dag_id(store_id)):
                    print(
                        f"  TI {ti['dag_run_id']} {ti['task_id']}[{ti['map_index']}] {ti['state']} "
                        f"try {ti['try_number']} host {ti.get('hostname')}"
                    )
        print(f"emulator stats: {world.emulator.stats()}")
        raise
