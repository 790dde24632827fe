"""The SQLite record: scale, concurrency, persistence across restarts, the pytest fixture."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

import orjson
import pytest
import requests
from emulator_http import Api, make_event

from airflow_omnisend.testing.emulator import EmulatorConfig, EmulatorStore, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_200k_events_are_recorded_and_read_back_quickly(tmp_path: Path) -> None:
    store = EmulatorStore(str(tmp_path / "big.sqlite3"))
    try:
        began = time.perf_counter()
        for b in range(200):
            rows = [
                (
                    f"{b:08x}-0000-4000-8000-{i:012x}",
                    "2024-01-01T00:00:00Z",
                    "placed order",
                    str(i),
                    f"{b:024x}",
                    "t",
                )
                for i in range(1000)
            ]
            store.save_processed_items(f"{b:024x}", b"[]", b"[]", rows, rows[:10])
        written = time.perf_counter() - began
        events = store.accepted_events()
        read = time.perf_counter() - began - written
        assert len(events) == 200_000
        assert store.accepted_count() == 200_000
        assert store.duplicate_count() == 2_000
        assert events[-1].order_id == "999"
        assert written < 10
        assert read < 5
    finally:
        store.close()


def test_many_batches_over_http_from_several_threads(start_emulator: Callable[..., OmnisendEmulator]) -> None:
    emu = start_emulator(rate_limit=10_000)
    bodies = [
        orjson.dumps(
            {"method": "POST", "endpoint": "events", "items": [make_event(b * 1000 + i) for i in range(1000)]}
        )
        for b in range(12)
    ]
    statuses: list[int] = []

    def send(chunk: list[bytes]) -> None:
        api = Api(emu)
        statuses.extend(api.post_raw(body).status_code for body in chunk)

    threads = [threading.Thread(target=send, args=(bodies[k::4],)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [201] * 12
    emu.wait_until_idle(timeout=30)
    assert emu.store.accepted_count() == 12_000
    assert len({e.event_id for e in emu.store.accepted_events()}) == 12_000
    assert emu.store.request_count("/v5/batches", method="POST") == 12
    assert {b.status for b in emu.store.batches()} == {"finished"}


def test_a_kept_database_remembers_events_and_batches_across_restarts(tmp_path: Path) -> None:
    db = str(tmp_path / "record.sqlite3")
    with OmnisendEmulator(EmulatorConfig(db_path=db, processing_delay=0)) as first:
        batch_id = Api(first).send_and_wait([make_event(0), make_event(1)])["batchID"]
    with OmnisendEmulator(EmulatorConfig(db_path=db, processing_delay=30)) as second:
        api = Api(second)
        old = api.get(f"/batches/{batch_id}").json()
        assert (old["status"], old["finishedCount"], len(old["responses"])) == ("finished", 2, 2)
        pending_id = api.post_batch([make_event(1), make_event(2)]).json()["batchID"]
    with OmnisendEmulator(EmulatorConfig(db_path=db, processing_delay=0)) as third:
        api = Api(third)
        # a batch the previous process accepted but never processed is processed now, from its kept items
        third.wait_for_batch(pending_id)
        left = api.get(f"/batches/{pending_id}").json()
        assert (left["status"], left["finishedCount"], left["errorsCount"]) == ("finished", 2, 0)
        assert [r["request"]["eventID"] for r in left["responses"]] == [
            make_event(1)["eventID"],
            make_event(2)["eventID"],
        ]
        api.send_and_wait([make_event(1), make_event(2)])
        assert third.store.accepted_count() == 3
        assert third.store.duplicate_count() == 3  # event 1 in the resumed batch, 1 and 2 in the last
        assert [b.batch_id for b in third.store.batches()][:2] == [batch_id, pending_id]


def test_a_temporary_database_is_removed_on_stop() -> None:
    emu = OmnisendEmulator(EmulatorConfig()).start()
    path = emu.store.path
    Api(emu).post_batch([make_event(0)])
    emu.stop()
    assert not os.path.exists(path)
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.base_url


def test_the_pytest_fixture_yields_a_started_emulator(omnisend_emulator: OmnisendEmulator) -> None:
    resp = requests.get(
        f"{omnisend_emulator.base_url}/v5/batches",
        params={"endpoint": "events"},
        headers={"X-API-KEY": omnisend_emulator.api_key},
        timeout=5,
    )
    assert resp.status_code == 200
    assert omnisend_emulator.store.request_count() == 1


@pytest.mark.parametrize("omnisend_emulator_config", [EmulatorConfig(rate_limit=3)], indirect=True)
def test_the_pytest_fixture_takes_a_config(omnisend_emulator: OmnisendEmulator) -> None:
    assert omnisend_emulator.config.rate_limit == 3


def test_restart_comes_back_on_the_same_port_with_the_record(tmp_path: Path) -> None:
    emu = OmnisendEmulator(EmulatorConfig(db_path=str(tmp_path / "r.sqlite3"), processing_delay=0)).start()
    try:
        url = emu.base_url
        batch_id = Api(emu).send_and_wait([make_event(0)])["batchID"]
        emu.restart()
        assert emu.base_url == url
        assert Api(emu).get(f"/batches/{batch_id}").json()["status"] == "finished"
        assert emu.store.accepted_count() == 1
    finally:
        emu.stop()
    with OmnisendEmulator(EmulatorConfig()) as temporary, pytest.raises(RuntimeError, match="db_path"):
        temporary.restart()
