"""The chaos run: two stores backfilled by a real deployment while everything goes wrong at once.

What ``tests/chaos/`` asserts on and ``benchmarks/chaos_figures.py`` prints. One :class:`LocalAirflow`
(LocalExecutor+SQLite or CeleryExecutor+Redis+PostgreSQL) runs ``dags/omnisend_orders.py`` for two
stores - two brands, two connections, two API keys, one emulator - over several days of a sample shop,
with the emulator's seeded faults on (5xx, slow and dropped responses). While both backfills run, seeded
and bounded:

* task processes SIGKILL themselves at the kill points of :mod:`airflow_omnisend.faultpoints`;
* the scheduler and the triggerer are SIGKILLed and restarted after a pause;
* the emulator is restarted while a batch is pending (its record is a file: batches survive);
* Omnisend is out (503 to every request) for longer than the connections' retry budget, then back;
* store B's key is revoked: its runs fail fast; store A's go on.

Then the documented recovery - a new key for store B in its connection, ``airflow backfill create
--reprocess-behavior failed`` - and the ledger, from the emulator's record (``GET /__emulator__/events``)
and the partitions' own files: expected (valid), accepted, duplicated, lost; rejected with reasons.
Everything is waited on through real signals (emulator record, REST API states); the pauses and the
outage's length are the faults' shape, not synchronisation.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from airflow_omnisend.faultpoints import ENV as FAULTPOINTS_ENV
from airflow_omnisend.faultpoints import POINTS, FaultPlan, PointPlan, read_kills
from airflow_omnisend.testing.emulator import ApiKeyGrant, EmulatorConfig, FaultConfig, OmnisendEmulator
from airflow_omnisend.testing.local_airflow import DagRunInfo, ExecutorProfile, LocalAirflow, free_port
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ChaosEmulator", "ChaosReport", "ChaosSettings", "Ledger", "run_chaos"]

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
SHOP_CONN_ID = "chaos_shop"
STORE_A, STORE_B = "chaos_a", "chaos_b"


def dag_id(store_id: str) -> str:
    return f"omnisend_orders__{store_id}"


def conn_id(store_id: str) -> str:
    return f"omnisend_{store_id}"


@dataclass(frozen=True)
class ChaosSettings:
    """What one chaos run does; the defaults are the run RELIABILITY.md reports."""

    seed: int = 13
    days: int = 4
    orders: int = 240
    first_day: date = date(2024, 3, 4)
    timezone: str = "Europe/Vilnius"
    #: chance per hit of a kill point, the kills one point may take, and the kills of the whole run
    kill_probability: float = 0.5
    kills_per_point: int = 2
    max_task_kills: int = 8
    task_retries: int = 6
    retry_delay_seconds: int = 2
    #: a connection's retry budget (seconds one hook call may spend) and the outage, longer than it
    retry_budget: float = 6.0
    outage_seconds: float = 15.0
    pause_seconds: float = 3.0
    processing_delay: float = 1.0
    error_5xx_rate: float = 0.05
    slow_rate: float = 0.05
    slow_seconds: float = 1.0
    drop_response_rate: float = 0.03
    run_timeout: float = 360.0
    #: ``[scheduler] task_instance_heartbeat_timeout``: how soon a task orphaned by a killed supervisor
    #: is failed (and retried)
    heartbeat_timeout: int = 30

    @property
    def day_labels(self) -> list[str]:
        return [(self.first_day + timedelta(days=i)).isoformat() for i in range(self.days)]

    def base_faults(self) -> FaultConfig:
        return FaultConfig(
            seed=self.seed,
            error_5xx_rate=self.error_5xx_rate,
            slow_rate=self.slow_rate,
            slow_seconds=self.slow_seconds,
            drop_response_rate=self.drop_response_rate,
        )

    def fault_plan(self, state_dir: Path) -> FaultPlan:
        point = PointPlan(self.kill_probability, self.kills_per_point)
        return FaultPlan(
            state_dir=state_dir,
            seed=self.seed,
            max_kills=self.max_task_kills,
            points=dict.fromkeys(POINTS, point),
        )


def api_key(store_id: str, generation: int = 1) -> str:
    return f"chaos-key-{store_id}-{generation}"


class ChaosEmulator:
    """The emulator of a chaos run: a fixed port and a record file, so it can be restarted under the
    deployment's feet; its keys and faults are set through its control API, as a separate process's
    would be, and put back after a restart."""

    def __init__(self, root: Path, settings: ChaosSettings) -> None:
        self.config = EmulatorConfig(
            port=free_port(),
            db_path=str(root / "emulator-record.sqlite"),
            extra_keys=(ApiKeyGrant(api_key(STORE_A)), ApiKeyGrant(api_key(STORE_B))),
            processing_delay=settings.processing_delay,
            faults=settings.base_faults(),
        )
        self.emulator = OmnisendEmulator(self.config)
        self.restarts = 0
        self.revoked: set[str] = set()
        self.granted: set[str] = set()
        self._faults: dict[str, Any] = settings.base_faults().to_dict()

    def __enter__(self) -> ChaosEmulator:
        self.emulator.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.emulator.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def control(self, method: str, name: str, payload: Any = None) -> Any:
        """Call ``/__emulator__/<name>`` over HTTP; raises ``urllib.error.HTTPError`` on an error status."""
        body = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.base_url}/__emulator__/{name}",
            data=body,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def set_faults(self, faults: FaultConfig) -> None:
        self._faults = faults.to_dict()
        self.control("POST", "faults", self._faults)

    def set_keys(self, *, revoke: tuple[str, ...] = (), grant: tuple[str, ...] = ()) -> None:
        """Revoke and grant API keys (``POST /__emulator__/keys``); kept across restarts."""
        self.revoked |= set(revoke)
        self.revoked -= set(grant)
        self.granted |= set(grant)
        self.granted -= set(revoke)
        self.control("POST", "keys", {"revoke": list(revoke), "grant": list(grant)})

    def restart(self) -> None:
        """Stop the emulator (open connections are cut) and start it again on the same port and record;
        put back the faults and keys set since it first started."""
        self.emulator.stop()
        self.emulator = OmnisendEmulator(self.config)
        self.emulator.start()
        self.restarts += 1
        self.set_faults(FaultConfig.from_dict(self._faults))
        if self.revoked or self.granted:
            self.set_keys(revoke=tuple(sorted(self.revoked)), grant=tuple(sorted(self.granted)))

    def recorded_events(self) -> list[dict[str, Any]]:
        """Every event the emulator accepted, from ``GET /__emulator__/events`` (all pages)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.control("GET", f"events?offset={len(found)}&limit=1000")
            found += page["events"]
            if not page["events"] or len(found) >= int(page["total"]):
                return found


@dataclass
class Ledger:
    """One store's events: what its partitions' files say should reach Omnisend, what did."""

    expected: int = 0
    accepted: int = 0
    #: arrivals of an already accepted event (Omnisend de-duplicates them; each is a resubmission)
    duplicated: int = 0
    lost: int = 0
    unexpected: int = 0
    extracted: int = 0
    rejected: int = 0
    rejected_without_reason: int = 0
    unaccounted: int = 0


@dataclass(frozen=True)
class FailedTry:
    """A task instance the chaos left failed: which, on which try, why each of its tries ended (from its
    logs, see :func:`failure_cause`; the last is why it failed), and whether its logs name the store's
    Omnisend connection. Earlier tries ended in a kill or a retryable error; one that ended on the
    revoked key and was still retried would show as ``credentials`` before the last."""

    partition: str
    task: str
    try_number: int
    attempt_causes: tuple[str, ...]
    names_connection: bool

    @property
    def cause(self) -> str:
        return self.attempt_causes[-1] if self.attempt_causes else "other"

    @property
    def retried_on_credentials(self) -> bool:
        return "credentials" in self.attempt_causes[:-1]

    def __str__(self) -> str:
        return f"{self.partition} {self.task} try {self.try_number} ({', '.join(self.attempt_causes)})"


@dataclass
class ChaosReport:
    """What a chaos run did and left: the figures RELIABILITY.md reports, and the details tests check."""

    profile: str
    seed: int
    days: int
    kills: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    outage_seconds: float = 0.0
    ledgers: dict[str, Ledger] = field(default_factory=dict)
    finished_bodies_resubmitted: int = 0
    dropped_responses: int = 0
    #: state per partition after the chaos, and after the recovery
    first_states: dict[str, dict[str, str]] = field(default_factory=dict)
    final_states: dict[str, dict[str, str]] = field(default_factory=dict)
    #: per store, the task instances the chaos left failed (before the recovery)
    failures: dict[str, list[FailedTry]] = field(default_factory=dict)
    chaos_seconds: float = 0.0
    recovery_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        lines = [
            f"chaos run: profile {self.profile}, seed {self.seed}, 2 stores x {self.days} days",
            f"task kills: {sum(self.kills.values())} "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.kills.items())),
            "restarts: " + ", ".join(f"{k} {v}" for k, v in sorted(self.restarts.items())),
            f"outage: {self.outage_seconds:.1f} s of 503 to every request",
        ]
        for store, led in sorted(self.ledgers.items()):
            lines.append(
                f"{store}: expected {led.expected}, accepted {led.accepted}, duplicated {led.duplicated}, "
                f"lost {led.lost}, unexpected {led.unexpected}; rejected {led.rejected} "
                f"({led.rejected_without_reason} without a reason); extracted {led.extracted}"
            )
        lines += [
            f"finished bodies resubmitted: {self.finished_bodies_resubmitted} "
            f"(responses dropped by the emulator: {self.dropped_responses})",
            "failed tries left by the chaos: "
            + "; ".join(
                f"{store} {', '.join(map(str, tries))}" for store, tries in sorted(self.failures.items())
            ),
            f"wall time: chaos {self.chaos_seconds:.1f} s, recovery {self.recovery_seconds:.1f} s",
        ]
        return "\n".join(lines)


# -- the deployment ---------------------------------------------------------------------------------------


def _store_entry(store_id: str, settings: ChaosSettings) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "omnisend_conn_id": conn_id(store_id),
        "source_conn_id": SHOP_CONN_ID,
        "timezone": settings.timezone,
        "start_date": settings.first_day.isoformat(),
        "end_date": settings.day_labels[-1],
        "retries": settings.task_retries,
        "retry_delay_seconds": settings.retry_delay_seconds,
        "max_reject_ratio": 0.1,
        "keep_staged_events": True,
    }


def _omnisend_conn(base_url: str, key: str, settings: ChaosSettings) -> str:
    extra = {
        "api_version": "v5",
        "timeout": min(5.0, settings.retry_budget),
        "retry_budget": settings.retry_budget,
    }
    return json.dumps({"conn_type": "omnisend", "host": base_url, "password": key, "extra": extra})


def set_connection(airflow: LocalAirflow, store_id: str, conn_json: str) -> None:
    """Store B's connection lives in the metadata DB (as a user's would): replaced, not edited."""
    airflow.run_cli("connections", "delete", conn_id(store_id), check=False)
    airflow.run_cli("connections", "add", conn_id(store_id), "--conn-json", conn_json)


@contextlib.contextmanager
def chaos_deployment(
    root: Path, emulator: ChaosEmulator, profile: ExecutorProfile, settings: ChaosSettings
) -> Iterator[LocalAirflow]:
    """Shop, stores file, faultpoint plan and a started deployment with both store DAGs unpaused."""
    shop = root / "shop.sqlite"
    build_sample_store(
        shop,
        settings.orders,
        settings.seed,
        timezone=settings.timezone,
        start=settings.first_day,
        days=settings.days,
    )
    stores_file = root / "stores.yaml"
    entries = [_store_entry(STORE_A, settings), _store_entry(STORE_B, settings)]
    stores_file.write_text(yaml.safe_dump({"stores": entries}, sort_keys=False))
    (root / "staging").mkdir(exist_ok=True)
    plan_file = settings.fault_plan(root / "faultpoints").write(root / "faultpoints.json")
    env = {
        f"AIRFLOW_CONN_{SHOP_CONN_ID.upper()}": json.dumps({"conn_type": "sqlite", "host": str(shop)}),
        f"AIRFLOW_CONN_{conn_id(STORE_A).upper()}": _omnisend_conn(
            emulator.base_url, api_key(STORE_A), settings
        ),
        "AIRFLOW_OMNISEND_STORES": str(stores_file),
        "AIRFLOW_OMNISEND_STAGING": str(root / "staging"),
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        # a task whose supervisor died with the scheduler stays "running" until its heartbeat times out
        # (default 300 s) and a dead scheduler's tasks are adopted on the orphan check (default 300 s)
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(settings.heartbeat_timeout),
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",
        FAULTPOINTS_ENV: str(plan_file),
    }
    airflow = LocalAirflow(root / "airflow-home", DAGS_FOLDER, env=env, profile=profile)
    airflow.start()
    try:
        set_connection(airflow, STORE_B, _omnisend_conn(emulator.base_url, api_key(STORE_B), settings))
        for store_id in (STORE_A, STORE_B):
            airflow.set_pool(f"omnisend_{store_id}", 4, f"chaos store {store_id}")
            airflow.wait_for_dag(dag_id(store_id))
            airflow.unpause(dag_id(store_id))
        yield airflow
    finally:
        killed = airflow.stop()
        if killed:
            print(f"stop() had to kill: {killed}")


# -- the chaos ------------------------------------------------------------------------------------------


@dataclass
class _Injections:
    """Which fault has fired, and when the pending restarts and the outage's end are due."""

    scheduler_killed: bool = False
    emulator_restarted: bool = False
    outage_started: float | None = None
    outage_ended: float | None = None
    triggerer_killed: bool = False
    revoked: bool = False
    restart_due: dict[str, float] = field(default_factory=dict)

    def done(self) -> bool:
        fired = self.scheduler_killed and self.emulator_restarted and self.triggerer_killed and self.revoked
        return fired and self.outage_ended is not None and not self.restart_due


class _Chaos:
    """Fires each fault once its condition holds (polled with the backfills' progress): the scheduler
    at the first batch, the emulator while a batch is pending, the outage after that and the triggerer
    with it, store B's key once one of its runs succeeded; restarts after the pause."""

    def __init__(
        self, airflow: LocalAirflow, emulator: ChaosEmulator, settings: ChaosSettings, report: ChaosReport
    ) -> None:
        self.airflow, self.emulator, self.settings, self.report = airflow, emulator, settings, report
        self.state = _Injections()
        self.restarts = {"scheduler": 0, "triggerer": 0}
        self._last_runs_check = 0.0

    # one tick: fire whatever fault's condition now holds
    def tick(self) -> None:
        now = time.monotonic()
        self._restart_due(now)
        batches = self.emulator.emulator.store.batches()
        if not self.state.scheduler_killed and batches:
            self._kill("scheduler", now)
        elif self.state.scheduler_killed and not self.state.emulator_restarted:
            if any(b.status in ("pending", "inProgress") for b in batches) or len(batches) >= 6:
                self.emulator.restart()
                self.state.emulator_restarted = True
        elif self.state.emulator_restarted and self.state.outage_started is None:
            self.emulator.set_faults(
                FaultConfig(error_5xx_rate=1.0, error_5xx_statuses=(503,), targets=frozenset({"*"}))
            )
            self.state.outage_started = now
        self._outage_and_triggerer(now)
        self._maybe_revoke(now)

    def _outage_and_triggerer(self, now: float) -> None:
        started = self.state.outage_started
        if started is None:
            return
        if not self.state.triggerer_killed:
            self._kill("triggerer", now)
        if self.state.outage_ended is None and now - started >= self.settings.outage_seconds:
            self.emulator.set_faults(self.settings.base_faults())
            self.state.outage_ended = now
            self.report.outage_seconds = now - started

    def _maybe_revoke(self, now: float) -> None:
        if self.state.revoked or now - self._last_runs_check < 2.0:
            return
        self._last_runs_check = now
        runs = self.airflow.dag_runs(dag_id(STORE_B))
        if any(r.state == "success" for r in runs):
            self.emulator.set_keys(revoke=(api_key(STORE_B),))
            self.state.revoked = True

    def _kill(self, name: str, now: float) -> None:
        self.airflow.kill_component(name)
        self.restarts[name] += 1
        self.state.restart_due[name] = now + self.settings.pause_seconds
        if name == "scheduler":
            self.state.scheduler_killed = True
        else:
            self.state.triggerer_killed = True

    def _restart_due(self, now: float) -> None:
        for name, due in list(self.state.restart_due.items()):
            if now >= due:
                self.airflow.restart_component(name)
                del self.state.restart_due[name]

    def finished(self) -> bool:
        if not self.state.done():
            return False
        return all(_runs_terminal(self.airflow, s, self.settings.days) for s in (STORE_A, STORE_B))

    def run(self, backfills: dict[str, int]) -> None:
        deadline = time.monotonic() + self.settings.run_timeout

        def probe() -> bool:
            self.tick()
            return self.finished()

        self.airflow.wait_until(
            "the chaos to play out and both backfills' runs to end",
            probe,
            timeout=max(1.0, deadline - time.monotonic()),
            interval=0.3,
        )
        for backfill in backfills.values():
            self.airflow.wait_for_backfill(backfill, timeout=120)


def _runs_terminal(airflow: LocalAirflow, store_id: str, days: int) -> bool:
    runs = airflow.dag_runs(dag_id(store_id))
    return len(runs) >= days and all(r.terminal for r in runs)


def _states(airflow: LocalAirflow, store_id: str) -> dict[str, str]:
    """Partition -> state of its latest run (a rerun of a failed partition is a new run)."""
    runs = sorted(airflow.dag_runs(dag_id(store_id)), key=lambda r: r.start_date or "")
    return {str(r.partition_key): r.state for r in runs}


# -- recovery ---------------------------------------------------------------------------------------------


def _unchanged(run: DagRunInfo) -> tuple[str, str | None]:
    return run.state, run.start_date


def recover(airflow: LocalAirflow, emulator: ChaosEmulator, settings: ChaosSettings) -> None:
    """The documented recovery: store B gets a new key (emulator grant + its connection replaced), then
    ``airflow backfill create --reprocess-behavior failed`` for every store with a failed run."""
    new_key = api_key(STORE_B, 2)
    emulator.set_keys(grant=(new_key,))
    set_connection(airflow, STORE_B, _omnisend_conn(emulator.base_url, new_key, settings))
    first, last = settings.day_labels[0], settings.day_labels[-1]
    for store_id in (STORE_A, STORE_B):
        dag = dag_id(store_id)
        before = {r.run_id: _unchanged(r) for r in airflow.dag_runs(dag)}
        if all(r.state == "success" for r in airflow.dag_runs(dag)):
            continue
        airflow.backfill(dag, first, last, reprocess_behavior="failed")

        def rerun_done(dag: str = dag, before: dict[str, tuple[str, str | None]] = before) -> bool:
            runs = airflow.dag_runs(dag)
            fresh = [r for r in runs if before.get(r.run_id) != _unchanged(r)]
            return bool(fresh) and all(r.terminal for r in runs)

        airflow.wait_until(f"the rerun of {dag}'s failed days", rerun_done, timeout=settings.run_timeout)


# -- the ledger -------------------------------------------------------------------------------------------


def _keys_of(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    found = []
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                event = json.loads(line)
                found.append((str(event.get("eventID")), str(event.get("eventTime"))))
    return found


def _rejected(path: Path) -> tuple[list[tuple[str, str]], int]:
    """Keys of the rejected events, and how many records carry no reason."""
    keys, without = [], 0
    if path.exists():
        for line in path.read_bytes().splitlines():
            if line.strip():
                record = json.loads(line)
                event = record.get("event") or {}
                keys.append((str(event.get("eventID")), str(event.get("eventTime"))))
                without += not record.get("errors")
    return keys, without


def ledger(
    staging: Path,
    store_id: str,
    days: list[str],
    recorded: list[dict[str, Any]],
    fps: set[str],
    batches: dict[str, str],
) -> Ledger:
    """One store's ledger: expected = its partitions' valid events; accepted = the emulator's record of
    the batches its keys created."""
    led = Ledger()
    expected: set[tuple[str, str]] = set()
    for day in days:
        folder = staging / store_id / day
        valid = _keys_of(folder / "valid.ndjson")
        rejected, without = _rejected(folder / "rejected.ndjson")
        extracted = _keys_of(folder / "events.ndjson")
        expected |= set(valid)
        led.extracted += len(extracted)
        led.rejected += len(rejected)
        led.rejected_without_reason += without
        led.unaccounted += len(set(extracted) - set(valid) - set(rejected))
    accepted = {(e["eventID"], e["eventTime"]) for e in recorded if batches.get(e["batchID"]) in fps}
    led.expected, led.accepted = len(expected), len(accepted & expected)
    led.lost, led.unexpected = len(expected - accepted), len(accepted - expected)
    return led


def _fill_ledgers(report: ChaosReport, root: Path, emulator: ChaosEmulator, settings: ChaosSettings) -> None:
    store = emulator.emulator.store
    batches = {b.batch_id: b.key_fingerprint for b in store.batches()}
    recorded = emulator.recorded_events()
    for store_id, keys in ((STORE_A, [api_key(STORE_A)]), (STORE_B, [api_key(STORE_B), api_key(STORE_B, 2)])):
        fps = {OmnisendEmulator.fingerprint(k) for k in keys}
        report.ledgers[store_id] = ledger(
            root / "staging", store_id, settings.day_labels, recorded, fps, batches
        )
        duplicates = sum(1 for d in store.duplicates() if batches.get(d.batch_id) in fps)
        report.ledgers[store_id].duplicated = duplicates
    report.finished_bodies_resubmitted = sum(
        1
        for b in store.batches()
        if b.status == "finished" and b.total_count and b.duplicate_count == b.total_count
    )
    report.dropped_responses = sum(1 for r in store.request_log() if r.dropped)


_CREDENTIALS = re.compile(r"refused the credentials|\(40[13]\)")
_OUTAGE = re.compile(r"kept failing \(5\d\d\)|answered 5\d\d")


def failure_cause(log_text: str) -> str:
    """Why a task failed, from its log: ``credentials`` when Omnisend refused the key (the provider's
    401/403 messages all put the status in brackets), ``outage`` for 5xx after the hook's retries,
    else ``other``."""
    if _CREDENTIALS.search(log_text):
        return "credentials"
    if _OUTAGE.search(log_text):
        return "outage"
    return "other"


def attempt_logs(task_logs: Path) -> list[str]:
    """The log of each try of one task instance, in try order (its ``attempt=N.log`` files)."""
    logs = sorted(task_logs.rglob("attempt=*.log"), key=lambda p: int(p.stem.removeprefix("attempt=")))
    return [p.read_text("utf-8", "replace") for p in logs]


def failed_tries(airflow: LocalAirflow, store_id: str) -> list[FailedTry]:
    """The task instances of ``store_id`` in state failed, each with its cause read from its log."""
    found = []
    partitions = {r.run_id: str(r.partition_key) for r in airflow.dag_runs(dag_id(store_id))}
    logs = airflow.home / "logs" / f"dag_id={dag_id(store_id)}"
    for ti in airflow.task_instances(dag_id(store_id)):
        if ti["state"] != "failed":
            continue
        folder = logs / f"run_id={ti['dag_run_id']}" / f"task_id={ti['task_id']}"
        tries = attempt_logs(folder)
        found.append(
            FailedTry(
                partitions.get(ti["dag_run_id"], "?"),
                str(ti["task_id"]),
                int(ti["try_number"]),
                tuple(failure_cause(text) for text in tries),
                any(conn_id(store_id) in text for text in tries),
            )
        )
    return sorted(found, key=lambda f: (f.partition, f.task))


def run_chaos(
    root: Path,
    profile: ExecutorProfile,
    settings: ChaosSettings | None = None,
    *,
    profile_name: str = "local",
) -> ChaosReport:
    """The whole chaos run in ``root`` (created): deployment, chaos, recovery, ledger."""
    settings = settings or ChaosSettings()
    root.mkdir(parents=True, exist_ok=True)
    report = ChaosReport(profile=profile_name, seed=settings.seed, days=settings.days)
    with (
        ChaosEmulator(root, settings) as emulator,
        chaos_deployment(root, emulator, profile, settings) as airflow,
    ):
        started = time.monotonic()
        first, last = settings.day_labels[0], settings.day_labels[-1]
        backfills = {
            STORE_A: airflow.backfill(dag_id(STORE_A), first, last, max_active_runs=2),
            STORE_B: airflow.backfill(dag_id(STORE_B), first, last, max_active_runs=2),
        }
        chaos = _Chaos(airflow, emulator, settings, report)
        chaos.run(backfills)
        report.chaos_seconds = time.monotonic() - started
        report.restarts = {**chaos.restarts, "emulator": emulator.restarts}
        report.first_states = {s: _states(airflow, s) for s in (STORE_A, STORE_B)}
        report.failures = {s: failed_tries(airflow, s) for s in (STORE_A, STORE_B)}
        started = time.monotonic()
        recover(airflow, emulator, settings)
        report.recovery_seconds = time.monotonic() - started
        report.final_states = {s: _states(airflow, s) for s in (STORE_A, STORE_B)}
        emulator.emulator.wait_until_idle(timeout=60)
        counts: dict[str, int] = {}
        for kill in read_kills(root / "faultpoints"):
            counts[kill["point"]] = counts.get(kill["point"], 0) + 1
        report.kills = counts
        _fill_ledgers(report, root, emulator, settings)
    return report


def settings_for(seed: int, **overrides: Any) -> ChaosSettings:
    """The default settings with another seed (and any field overridden)."""
    return replace(ChaosSettings(seed=seed), **overrides)
