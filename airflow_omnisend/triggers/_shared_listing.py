"""One ``GET /batches`` listing per brand and poll round, shared by every poller of the brand.

The mapped send shards of a run (and the runs of one backfill) wait for their batches at the same
time. Each listing ``GET /batches`` on its own costs pages per shard per round; the pages are the same.
Pollers of one (API root, brand, ``dateFrom``) therefore share a small state instead:

* the batches some poller saw ended (final: a finished or stopped batch never changes again);
* the ids the last listing showed still running, and when the next listing is due (the fetching
  poller's own back-off);
* the ids every live poller waits for, and a lease on the fetch in progress.

A round (:meth:`SharedListing.plan`) takes the pending batches already seen ended, with no request;
makes no request either while the last listing is not due yet and showed the rest still running
(it waits until it is due), or while another poller holds the lease (it looks again shortly);
otherwise it takes the lease and lists every id any live poller waits for, then publishes what it
found (:meth:`SharedListing.publish`). One listing thus answers every shard and run of the brand.

Backends follow the brand budget's (``hooks/_brand_budget.py``): ``file`` keeps the state in a small
file next to the budget's, under ``flock`` (every process of the machine: mapped tasks, the triggerer);
``redis`` and ``process`` keep it in this process's memory (the triggerer's triggers still share it).
Losing or corrupting the state costs requests, never correctness: a poller that finds nothing usable
lists its own batches, and only a listing (or a batch's own read) ever marks a batch ended.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_omnisend.hooks._brand_budget import brand_id, default_budget_dir
from airflow_omnisend.hooks._locked_file import locked_file
from airflow_omnisend.triggers._polling import batch_summary, is_terminal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from airflow_omnisend.hooks._profile import OmnisendConnectionSettings
    from airflow_omnisend.triggers._polling import BatchPoller

#: seconds before a poller's first round: Omnisend takes about a second per batch (docs/rate-limit.md),
#: so a listing right after the last POST would find that batch running and cost a second round
FIRST_POLL_WAIT = 2.0
#: a listing fetched up to this many seconds before a poller's round was due answers that round
SLACK_SECONDS = 1.0
#: seconds a fetching poller holds the lease; a poller that died mid-fetch blocks others this long
LEASE_SECONDS = 30.0
#: seconds between two looks of a poller waiting for another's fetch
LEASE_LOOK_SECONDS = 0.25
#: seconds an id stays wanted after its poller last asked (a dead poller's ids drop out)
WANTED_SECONDS = 180.0
#: seconds an ended batch is remembered
ENDED_SECONDS = 3600.0


@dataclass
class ListingState:
    """What the pollers of one scope share (JSON in the ``file`` backend)."""

    ended: dict[str, dict[str, Any]] = field(default_factory=dict)
    running: list[str] = field(default_factory=list)
    fetched_at: float = -math.inf
    next_due: float = -math.inf
    wanted: dict[str, float] = field(default_factory=dict)
    lease_until: float = -math.inf

    def to_json(self) -> bytes:
        def finite(value: float) -> float | None:
            return value if math.isfinite(value) else None

        state = {
            "ended": self.ended,
            "running": self.running,
            "fetched_at": finite(self.fetched_at),
            "next_due": finite(self.next_due),
            "wanted": self.wanted,
            "lease_until": finite(self.lease_until),
        }
        return json.dumps(state, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ListingState:
        """The state in ``raw``; an empty state when it cannot be read (a crash mid-write)."""
        try:
            data = json.loads(raw) if raw else {}
            return cls(
                ended={str(k): dict(v) for k, v in data.get("ended", {}).items()},
                running=[str(b) for b in data.get("running", [])],
                fetched_at=_time(data.get("fetched_at")),
                next_due=_time(data.get("next_due")),
                wanted={str(k): float(v) for k, v in data.get("wanted", {}).items()},
                lease_until=_time(data.get("lease_until")),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()


def _time(value: object) -> float:
    return -math.inf if value is None else float(value)  # type: ignore[arg-type]


class _MemoryStore:
    """The state in this process's memory (shared by the threads and triggers of the process)."""

    _states: dict[str, ListingState] = {}
    _lock = threading.Lock()

    def __init__(self, scope: str) -> None:
        self.scope = scope

    @contextlib.contextmanager
    def locked(self) -> Iterator[ListingState]:
        with self._lock:
            state = self._states.setdefault(self.scope, ListingState())
            yield state


class _FileStore:
    """The state in ``<directory>/listing-<scope>.json``, read and rewritten under ``flock``."""

    _thread_lock = threading.Lock()

    def __init__(self, directory: str, scope: str) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"listing-{scope}.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[ListingState]:
        with locked_file(self.path, self._thread_lock) as state_file:
            state = ListingState.from_json(state_file.raw)
            yield state
            state_file.replace(state.to_json())


@dataclass(frozen=True)
class RoundPlan:
    """What one poll round does: ``known`` pending batches already seen ended (no request); ``fetch``
    the ids to list now (empty: no request this round); ``wait`` seconds before the next round when
    nothing is fetched and some batch is still pending."""

    known: dict[str, dict[str, Any]]
    fetch: list[str]
    wait: float
    #: the wait is for another poller's fetch in progress (the round is still due)
    for_lease: bool = False


class SharedListing:
    """The shared listing state of one scope (see the module docstring).

    :param store: where the state lives (``_FileStore`` or ``_MemoryStore``).
    :param clock: wall clock (``time.time``; shared between processes).
    """

    def __init__(self, store: _FileStore | _MemoryStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._leased = False

    def register(self, pending: Sequence[str]) -> None:
        """Ask for ``pending`` in the next fetch of any poller (before this one's first round)."""
        now = self.clock()
        with self.store.locked() as state:
            for batch_id in pending:
                state.wanted[batch_id] = now

    def plan(self, pending: Sequence[str], since: float) -> RoundPlan:
        """The round for ``pending`` (this poller's unfinished batches; registered as wanted): a
        listing fetched at or after wall time ``since`` answers it as well as one of its own."""
        now = self.clock()
        with self.store.locked() as state:
            _prune(state, now)
            known = {b: _ended_batch(state.ended[b]) for b in pending if b in state.ended}
            rest = [b for b in pending if b not in known]
            for batch_id in rest:
                state.wanted[batch_id] = now
            if not rest:
                return RoundPlan(known, [], 0.0)
            running = set(state.running)
            if now < state.next_due and state.fetched_at >= since and all(b in running for b in rest):
                return RoundPlan(known, [], state.next_due - now)
            if now < state.lease_until:
                return RoundPlan(known, [], min(LEASE_LOOK_SECONDS, state.lease_until - now), True)
            state.lease_until = now + LEASE_SECONDS
            self._leased = True
            others = sorted(b for b in state.wanted if b not in state.ended and b not in rest)
            return RoundPlan(known, [*rest, *others], 0.0)

    def publish(self, found: Mapping[str, Mapping[str, Any]], fetched_at: float, next_wait: float) -> None:
        """Share a listing this poller started fetching at wall time ``fetched_at`` (``found``: Batch
        objects by id) and when the next is due (``next_wait`` seconds from now: the fetching poller's
        back-off); releases the lease."""
        now = self.clock()
        with self.store.locked() as state:
            for batch_id, batch in found.items():
                if is_terminal(batch):
                    state.ended[batch_id] = {**batch_summary(batch), "seen": now}
                    state.wanted.pop(batch_id, None)
            state.running = sorted(b for b, batch in found.items() if not is_terminal(batch))
            state.fetched_at = fetched_at
            state.next_due = now + max(0.0, next_wait)
            state.lease_until = -math.inf
            self._leased = False

    def release(self) -> None:
        """Give up the lease after a failed fetch, so another poller fetches at once."""
        if not self._leased:
            return
        with self.store.locked() as state:
            state.lease_until = -math.inf
        self._leased = False


def _ended_batch(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A shared ended batch as a poll round found it (the summary without the bookkeeping)."""
    return {k: v for k, v in summary.items() if k != "seen"}


def _prune(state: ListingState, now: float) -> None:
    state.ended = {b: s for b, s in state.ended.items() if now - float(s.get("seen", now)) < ENDED_SECONDS}
    state.wanted = {b: t for b, t in state.wanted.items() if now - t < WANTED_SECONDS}


def shared_listing(settings: OmnisendConnectionSettings, secret: str, date_from: str | None) -> SharedListing:
    """The shared listing of the brand behind ``secret`` at ``settings.base_url`` for ``dateFrom``."""
    scope = hashlib.sha256(
        f"{settings.base_url}\0{brand_id(secret)}\0{date_from or ''}".encode()
    ).hexdigest()[:32]
    config = settings.brand_budget
    if config.backend == "file":
        return SharedListing(_FileStore(config.directory or default_budget_dir(), scope))
    return SharedListing(_MemoryStore(scope))


class SharedRounds:
    """The poll rounds of one poller over the shared listing, without the I/O (the sync sender and the
    async trigger drive it: ``first_wait``, then per round ``plan`` and ``fetched`` or ``shared``).

    :param poller: the poller's batches and back-off.
    :param settings: the connection's settings and...
    :param secret: ...API key (they name the brand, never stored).
    """

    def __init__(
        self,
        poller: BatchPoller,
        settings: OmnisendConnectionSettings,
        secret: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.poller = poller
        self._settings = settings
        self._secret = secret
        self.clock = clock
        self._due = clock()
        self._listing: SharedListing | None = None
        self._plan = RoundPlan({}, [], 0.0)
        self._started = self._due

    def first_wait(self, date_from: str | None) -> float:
        """Seconds before the first round (the last batch submitted needs that long to end). The
        pending batches are registered now, so a poller that fetches meanwhile lists them too."""
        shared_listing(self._settings, self._secret, date_from).register(self.poller.pending)
        wait = min(FIRST_POLL_WAIT, self.poller.poll_interval)
        self._due = self.clock() + wait
        return wait

    def plan(self, date_from: str | None) -> RoundPlan:
        """This round: what is known, what to fetch (with ``find_batches(plan.fetch, date_from)``)."""
        self._listing = shared_listing(self._settings, self._secret, date_from)
        self._started = self.clock()
        self._plan = self._listing.plan(self.poller.pending, self._due - SLACK_SECONDS)
        return self._plan

    def fetched(self, found: Mapping[str, Mapping[str, Any]], requests: int) -> tuple[dict[str, Any], float]:
        """Record this poller's fetch (``requests`` pages and reads); return its pending batches'
        Batch objects and the seconds to wait. Shares the listing with the brand's other pollers."""
        assert self._listing is not None
        pending = self.poller.pending
        mine: dict[str, Any] = {**self._plan.known, **{b: found[b] for b in pending if b in found}}
        wait = self.poller.observe_round(mine, requests)
        self._listing.publish(found, self._started, wait)
        self._due = self.clock() + wait
        return mine, wait

    def shared(self) -> tuple[dict[str, Any], float]:
        """Record a round answered without a request; return the known batches and the wait."""
        plan = self._plan
        wait = self.poller.observe_shared(plan.known, plan.wait)
        if not plan.for_lease:
            self._due = self.clock() + wait
        return dict(plan.known), wait

    def own(self, ids: Sequence[str]) -> list[str]:
        """The ids of ``ids`` this poller waits for: what to list again when a read of another
        poller's batch failed (404: gone), so that poller's trouble never fails this one."""
        pending = set(self.poller.pending)
        return [b for b in ids if b in pending]

    def release(self) -> None:
        """The fetch failed: let another poller fetch at once."""
        if self._listing is not None:
            self._listing.release()
