"""The shared listing state: which poller fetches, who waits, what is known without a request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.hooks._brand_budget import BrandBudgetConfig
from airflow_omnisend.hooks._profile import OmnisendConnectionSettings
from airflow_omnisend.triggers._polling import BatchPoller
from airflow_omnisend.triggers._shared_listing import (
    LEASE_SECONDS,
    WANTED_SECONDS,
    SharedListing,
    SharedRounds,
    _FileStore,
    _MemoryStore,
    shared_listing,
)

if TYPE_CHECKING:
    from pathlib import Path


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def batch(status: str, total: int = 2) -> dict[str, Any]:
    finished = total if status in ("finished", "stopped") else 0
    return {"status": status, "totalCount": total, "finishedCount": finished, "errorsCount": 0}


@pytest.fixture(params=["memory", "file"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    scope = f"test-{request.node.name}"
    if request.param == "memory":
        _MemoryStore._states.pop(scope, None)
        return lambda: _MemoryStore(scope)
    return lambda: _FileStore(str(tmp_path / "budget"), scope)


def test_one_poller_fetches_and_the_others_use_its_listing(store_factory: Any) -> None:
    clock = Clock()
    a, b = SharedListing(store_factory(), clock), SharedListing(store_factory(), clock)
    b.plan(["b1"], since=clock.now)  # b registers first, so a's fetch lists b1 too ...
    b.release()
    plan = a.plan(["a1", "a2"], since=clock.now)
    assert plan.fetch == ["a1", "a2", "b1"]
    assert not plan.known
    a.publish({"a1": batch("finished"), "a2": batch("inProgress"), "b1": batch("finished")}, clock.now, 5.0)

    clock.now += 1
    answer = b.plan(["b1"], since=clock.now - 1)  # ... and b needs no request
    assert answer.fetch == []
    assert answer.known == {"b1": batch("finished")}
    again = a.plan(["a2"], since=clock.now - 1)  # a2 was running: wait until the listing is due
    assert again.fetch == []
    assert again.known == {}
    assert again.wait == pytest.approx(4.0)
    assert not again.for_lease

    clock.now += 4
    assert a.plan(["a2"], since=clock.now - 1).fetch == ["a2"]  # due: fetch again


def test_a_listing_older_than_the_round_or_without_the_batch_is_not_used(store_factory: Any) -> None:
    clock = Clock()
    a, b = SharedListing(store_factory(), clock), SharedListing(store_factory(), clock)
    a.plan(["a1"], since=clock.now)
    a.publish({"a1": batch("inProgress")}, clock.now, 5.0)
    clock.now += 2
    assert b.plan(["a1"], since=clock.now).fetch == ["a1"]  # fetched before b's round was due
    b.publish({"a1": batch("inProgress")}, clock.now, 5.0)
    assert a.plan(["a1", "new"], since=clock.now - 1).fetch == ["a1", "new"]  # "new" was not listed


def test_a_fetch_in_progress_holds_the_others_until_published_or_released(store_factory: Any) -> None:
    clock = Clock()
    a, b = SharedListing(store_factory(), clock), SharedListing(store_factory(), clock)
    assert a.plan(["x"], since=clock.now).fetch == ["x"]
    waiting = b.plan(["y"], since=clock.now)
    assert waiting.fetch == []
    assert waiting.for_lease
    assert 0 < waiting.wait <= 1
    a.release()  # a's fetch failed: b fetches at once, for both
    assert b.plan(["y"], since=clock.now).fetch == ["y", "x"]
    b.release()
    # a poller that died holding the lease blocks the others only for LEASE_SECONDS
    assert a.plan(["x"], since=clock.now).fetch
    clock.now += LEASE_SECONDS + 0.1
    assert b.plan(["y"], since=clock.now).fetch == ["y", "x"]


def test_ids_of_a_poller_that_stopped_asking_drop_out_of_the_fetch(store_factory: Any) -> None:
    clock = Clock()
    a, b = SharedListing(store_factory(), clock), SharedListing(store_factory(), clock)
    b.plan(["gone"], since=clock.now)
    b.release()
    clock.now += WANTED_SECONDS + 1
    assert a.plan(["a1"], since=clock.now).fetch == ["a1"]


def test_a_corrupt_state_file_counts_as_empty(tmp_path: Path) -> None:
    store = _FileStore(str(tmp_path), "scope")
    store.path.write_bytes(b"{not json")
    clock = Clock()
    listing = SharedListing(store, clock)
    assert listing.plan(["a"], since=clock.now).fetch == ["a"]
    listing.publish({"a": batch("stopped")}, clock.now, 1.0)
    assert SharedListing(_FileStore(str(tmp_path), "scope"), clock).plan(["a"], since=0).known == {
        "a": batch("stopped")
    }


def _settings(tmp_path: Path, backend: str, base_url: str = "https://omnisend.invalid") -> Any:
    budget = BrandBudgetConfig(backend=backend, directory=str(tmp_path))
    return OmnisendConnectionSettings(base_url=base_url, brand_budget=budget)


def test_the_scope_is_brand_api_root_and_date_and_never_names_the_key(tmp_path: Path) -> None:
    clock_now = 1.0
    one = shared_listing(_settings(tmp_path, "file"), "secret-key-1", "2026-12-01")
    one.plan(["a"], since=clock_now)
    one.publish({"a": batch("finished")}, clock_now, 1.0)
    same = shared_listing(_settings(tmp_path, "file"), "secret-key-1", "2026-12-01")
    assert same.plan(["a"], since=0).known
    for other in (
        shared_listing(_settings(tmp_path, "file"), "secret-key-2", "2026-12-01"),
        shared_listing(_settings(tmp_path, "file"), "secret-key-1", "2026-11-30"),
        shared_listing(
            _settings(tmp_path, "file", "https://other.omnisend.invalid"), "secret-key-1", "2026-12-01"
        ),
    ):
        assert not other.plan(["a"], since=0).known
    names = [p.name for p in tmp_path.iterdir()]
    assert names
    assert all("secret" not in n for n in names)
    assert all("secret" not in p.read_text() for p in tmp_path.iterdir())
    assert isinstance(shared_listing(_settings(tmp_path, "process"), "k", None).store, _MemoryStore)


def test_rounds_take_known_batches_without_back_off(tmp_path: Path) -> None:
    clock = Clock()
    settings = _settings(tmp_path, "file")
    mine = BatchPoller(["m1", "m2"], poll_interval=2.0, max_poll_interval=8.0)
    other = BatchPoller(["o1"], poll_interval=2.0, max_poll_interval=8.0)
    rounds, other_rounds = SharedRounds(mine, settings, "k", clock), SharedRounds(other, settings, "k", clock)
    assert rounds.first_wait("2026-12-01") == 2.0
    assert other_rounds.first_wait("2026-12-01") == 2.0
    clock.now += 2
    plan = rounds.plan("2026-12-01")
    assert plan.fetch == ["m1", "m2", "o1"]
    found, wait = rounds.fetched(
        {"m1": batch("finished"), "m2": batch("pending"), "o1": batch("finished")}, 1
    )
    assert set(found) == {"m1", "m2"}
    assert wait == 2.0
    assert mine.pending == ["m2"]
    assert mine.polls == 1

    clock.now += 0.5
    assert other_rounds.plan("2026-12-01").fetch == []  # ... and is answered by mine's fetch
    known, wait = other_rounds.shared()
    assert known == {"o1": batch("finished")}
    assert wait == 0.0
    assert other.pending == []
    assert other.polls == 0
    assert other.interval == 2.0
    clock.now += 1.5  # mine's round is due: o1 ended, so only m2 is listed
    assert rounds.plan("2026-12-01").fetch == ["m2"]
