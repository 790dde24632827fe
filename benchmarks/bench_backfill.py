"""Benchmark: a whole backfill through the real scheduler, against the emulator at Omnisend's limits.

    .venv/bin/python benchmarks/bench_backfill.py --case c [--period day] [--profile v5] [--keep DIR]

Cases (the sample store of ``testing.sample_store``, Europe/Vilnius):

    a  730 days x 100 orders/day from 2024-03-01 (24 whole months), period month
    b   30 days x 1,000 orders/day from 2024-04-01 (April 2024), period month
    c   60 days x 100 orders/day from 2024-03-04, period day (the daily set-up, for comparison)

``--period`` overrides the case's period; it is written as ``period:`` into the stores file the
benchmark generates (``day`` is left out, the default), with ``keep_staged_events: true`` where the
stores file knows that key (the bound needs every period's ``valid.ndjson``). A branch whose stores
file does not know ``period`` refuses anything but ``day`` with a clear message.

What runs: the demo's pieces (``testing.local_airflow.LocalAirflow``: scheduler, DAG processor,
triggerer and API server, LocalExecutor on SQLite; the in-process emulator at 400 requests per sliding
60 s, 1 s batch processing, 1 MB bodies, 1,000 items for v5 and 100 for ``--profile 2026-03-15``), the
repository's ``dags/omnisend_orders.py`` on a generated stores file, and ``airflow backfill create``
over the store's days.

What it reports:

* wall: from just before ``airflow backfill create`` to the end of the last run (the run's end_date);
* requests by kind, from the emulator's record;
* bodies (accepted ``POST /batches``) against the whole-store lower bound: the fewest bodies that
  hold every valid event of the store (``valid.ndjson`` of every period, each event costing its
  line's bytes + 1, as ``events.packing.lower_bound`` counts for the planner), whatever the partitioning;
* the bound: lower-bound bodies at 400 requests a minute, in seconds;
* where Airflow's time goes: per task id, the scheduler's gap from the upstream task's end to the
  task being queued, queued -> running (executor + task process start-up), and running (work + the
  task process's own start-up inside the supervisor), from the task instances' ``queued_when``,
  ``start_date`` and ``end_date`` in the metadata DB (``docs/airflow-cost.md``).

Targets (PASS/FAIL each): wall <= 1.25 x bound + 30 s; bodies <= 1.02 x lower bound;
requests <= 1.05 x bodies + 2 per run. The benchmark is not a test: it starts real Airflow, so run it
under the machine's heavy-job lock where one exists. Figures and commands: BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_omnisend.events.chunk_plan import DEFAULT_RATE_PER_MINUTE, BatchLimits
from airflow_omnisend.events.packing import lower_bound
from airflow_omnisend.stores import OPTIONAL_KEYS
from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator
from airflow_omnisend.testing.local_airflow import ExecutorProfile, LocalAirflow, LocalAirflowError
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow_omnisend.testing.emulator.store import RequestRecord
    from airflow_omnisend.testing.local_airflow import DagRunInfo

REPO = Path(__file__).resolve().parent.parent
STORE_ID = "bench"
DAG_ID = f"omnisend_orders__{STORE_ID}"
API_KEY = "bench-api-key"
TIMEZONE = "Europe/Vilnius"
PERIODS = ("day", "week", "month")
MAX_ITEMS = {"v5": 1000, "2026-03-15": 100}
MAX_PAYLOAD_BYTES = 1_000_000
POOL_SLOTS = 4
#: stores-file key that keeps each period's valid.ndjson after its send (where the branch has it)
KEEP_STAGED_KEY = "keep_staged_events"


@dataclass(frozen=True)
class Case:
    """One benchmark store: how many days, orders per day, and its default period."""

    name: str
    days: int
    orders_per_day: int
    period: str
    first_day: date

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)

    @property
    def orders(self) -> int:
        return self.days * self.orders_per_day


#: a and b start on a month's first day so their months are whole (a: 24 months, b: April 2024)
CASES = {
    "a": Case("a", 730, 100, "month", date(2024, 3, 1)),
    "b": Case("b", 30, 1000, "month", date(2024, 4, 1)),
    "c": Case("c", 60, 100, "day", date(2024, 3, 4)),
}


# -- the pure parts (tests/benchmarks/test_bench_backfill.py) --------------------------------------------


@dataclass(frozen=True)
class StoreBound:
    """The whole store's valid events and the fewest bodies / seconds Omnisend needs for them."""

    events: int
    total_cost: int
    bodies: int
    seconds: float


def store_bound(
    line_lengths: Iterable[int], limits: BatchLimits, rate_per_minute: float = DEFAULT_RATE_PER_MINUTE
) -> StoreBound:
    """Lower-bound bodies for events of these line lengths (bytes, without the newline), as the planner
    counts them (``events.packing.lower_bound``: cost = length + 1), and those bodies at the rate."""
    events = total_cost = 0
    for length in line_lengths:
        events += 1
        total_cost += length + 1
    bodies = lower_bound(total_cost, events, limits)
    return StoreBound(events, total_cost, bodies, bodies * 60.0 / rate_per_minute)


def ndjson_line_lengths(paths: Iterable[Path]) -> Iterable[int]:
    """Byte length of every non-empty line of these NDJSON files (newline excluded)."""
    for path in paths:
        with path.open("rb") as handle:
            for line in handle:
                stripped = line.rstrip(b"\r\n")
                if stripped:
                    yield len(stripped)


@dataclass(frozen=True)
class Target:
    name: str
    measured: float
    limit: float

    @property
    def passed(self) -> bool:
        return self.measured <= self.limit

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict}  {self.name}: {self.measured:.1f} <= {self.limit:.1f}"


def targets(*, wall: float, bound: StoreBound, bodies: int, requests: int, runs: int) -> list[Target]:
    """The issue's three targets: wall, bodies and requests."""
    return [
        Target("wall s <= 1.25 x bound + 30 s", wall, 1.25 * bound.seconds + 30.0),
        Target("bodies <= 1.02 x lower bound", bodies, 1.02 * bound.bodies),
        Target("requests <= 1.05 x bodies + 2 per run", requests, 1.05 * bodies + 2 * runs),
    ]


_ID_SEGMENT = re.compile(r"^(?=.*\d)[A-Za-z0-9_-]{8,}$")


def request_kind(method: str, path: str) -> str:
    """``METHOD path`` with id-like segments as ``{id}``: ``GET /v5/batches/{id}/items``."""
    parts = [("{id}" if _ID_SEGMENT.match(p) else p) for p in path.split("?")[0].split("/")]
    return f"{method} {'/'.join(parts)}"


def requests_by_kind(records: Iterable[RequestRecord]) -> Counter[str]:
    return Counter(request_kind(r.method, r.path) for r in records)


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass
class TaskCost:
    """Seconds of one task id over the runs: scheduler gap, queued -> running, running."""

    gap: list[float]
    queued: list[float]
    running: list[float]


def task_costs(task_instances: Sequence[Mapping[str, Any]], order: Sequence[str]) -> dict[str, TaskCost]:
    """Per task id (in ``order``, the DAG's): the gap from the previous task's last end in the same run
    to this task being queued, queued -> start, and start -> end, over every run's final try."""
    by_run: dict[str, dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for ti in task_instances:
        by_run[str(ti["dag_run_id"])][str(ti["task_id"])].append(ti)
    costs = {task: TaskCost([], [], []) for task in order}
    for tasks in by_run.values():
        previous_end: datetime | None = None
        for task in order:
            tis = tasks.get(task, [])
            queued = [q for q in (_instant(t.get("queued_when")) for t in tis) if q]
            started = [s for s in (_instant(t.get("start_date")) for t in tis) if s]
            ended = [e for e in (_instant(t.get("end_date")) for t in tis) if e]
            if not (queued and started and ended):
                continue
            if previous_end is not None:
                costs[task].gap.append((min(queued) - previous_end).total_seconds())
            costs[task].queued.append((min(started) - min(queued)).total_seconds())
            costs[task].running.append((max(ended) - min(started)).total_seconds())
            previous_end = max(ended)
    return {task: cost for task, cost in costs.items() if cost.running}


def _stats(values: list[float]) -> str:
    if not values:
        return "      -"
    return f"{statistics.median(values):5.2f} / {statistics.mean(values):5.2f}"


def describe_task_costs(costs: Mapping[str, TaskCost]) -> list[str]:
    lines = [f"{'task':26} {'gap med/mean':>14} {'queued->run':>14} {'running':>14}"]
    for task, cost in costs.items():
        lines.append(f"{task:26} {_stats(cost.gap):>14} {_stats(cost.queued):>14} {_stats(cost.running):>14}")
    return lines


# -- the run ---------------------------------------------------------------------------------------------


def _stores_yaml(case: Case, period: str, staging: Path) -> str:
    lines = [
        "stores:",
        f"  - store_id: {STORE_ID}",
        f"    omnisend_conn_id: omnisend_{STORE_ID}",
        f"    source_conn_id: shop_{STORE_ID}",
        f"    timezone: {TIMEZONE}",
        f'    start_date: "{case.first_day}"',
        f'    end_date: "{case.last_day}"',
        "    max_reject_ratio: 0.05",
        "    retries: 1",
        "    retry_delay_seconds: 5",
        f"    staging: {staging}",
    ]
    if period != "day":
        lines.append(f"    period: {period}")
    if KEEP_STAGED_KEY in OPTIONAL_KEYS:
        # the bound is computed from every period's valid.ndjson, which retention would delete
        lines.append(f"    {KEEP_STAGED_KEY}: true")
    return "\n".join(lines) + "\n"


def _check_period(period: str) -> str | None:
    """Why this branch cannot run ``period`` (None: it can)."""
    if period not in PERIODS:
        return f"--period {period!r}: choose one of {', '.join(PERIODS)}"
    if period != "day" and "period" not in OPTIONAL_KEYS:
        return (
            f"--period {period}: this branch's stores file has no 'period' key (known keys: "
            f"{', '.join(OPTIONAL_KEYS)}); run with --period day, or on a branch with partition periods"
        )
    return None


def _last_runs(airflow: LocalAirflow) -> list[DagRunInfo]:
    latest: dict[str, DagRunInfo] = {}
    for run_info in airflow.dag_runs(DAG_ID):
        key = run_info.partition_key or run_info.run_id
        if run_info.run_type == "backfill":
            latest[key] = run_info
    return [latest[k] for k in sorted(latest)]


def _task_order(airflow: LocalAirflow) -> list[str]:
    tasks = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/tasks", params={"order_by": "task_id"})["tasks"]
    downstream = {t["task_id"]: list(t.get("downstream_task_ids") or []) for t in tasks}
    upstream_count = Counter(d for ds in downstream.values() for d in ds)
    ready = [t for t in downstream if upstream_count[t] == 0]
    order: list[str] = []
    while ready:
        task = ready.pop(0)
        order.append(task)
        for nxt in downstream[task]:
            upstream_count[nxt] -= 1
            if upstream_count[nxt] == 0:
                ready.append(nxt)
    return order


def _settings_env(settings: Sequence[str]) -> dict[str, str]:
    """``SECTION__KEY=VALUE`` options as ``AIRFLOW__SECTION__KEY`` variables (applied last)."""
    env = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or "__" not in key:
            raise SystemExit(f"--setting {setting!r}: give SECTION__KEY=VALUE, e.g. SCHEDULER__X=1")
        env[f"AIRFLOW__{key.upper()}"] = value
    return env


def run(args: argparse.Namespace) -> int:
    case = CASES[args.case]
    period = args.period or case.period
    if problem := _check_period(period):
        print(f"bench_backfill: {problem}", file=sys.stderr)
        return 2
    home = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    home.mkdir(parents=True, exist_ok=True)
    staging = home / "staging"
    shop = home / "shop.sqlite"
    if not shop.exists():
        build_sample_store(
            str(shop),
            orders=case.orders,
            seed=args.seed,
            timezone=TIMEZONE,
            start=case.first_day,
            days=case.days,
        )
    stores = home / "stores.yaml"
    stores.write_text(_stores_yaml(case, period, staging))
    print(
        f"case {case.name}: {case.days} days x {case.orders_per_day} orders/day, period {period}, "
        f"profile {args.profile}; home {home}",
        flush=True,
    )
    emulator = OmnisendEmulator(
        EmulatorConfig(
            api_key=API_KEY,
            db_path=str(home / "emulator.sqlite"),
            processing_delay=1.0,
            rate_limit=400,
            rate_limit_window=60.0,
            max_payload_bytes=MAX_PAYLOAD_BYTES,
        )
    )
    with emulator:
        extra = {"api_version": args.profile}
        env = {
            f"AIRFLOW_CONN_OMNISEND_{STORE_ID.upper()}": json.dumps(
                {"conn_type": "omnisend", "host": emulator.base_url, "password": API_KEY, "extra": extra}
            ),
            f"AIRFLOW_CONN_SHOP_{STORE_ID.upper()}": json.dumps({"conn_type": "sqlite", "host": str(shop)}),
            "AIRFLOW_OMNISEND_STAGING": str(staging),
            "AIRFLOW_OMNISEND_STORES": str(stores),
        } | _settings_env(args.setting)
        airflow = LocalAirflow(home / "airflow-home", REPO / "dags", env=env, profile=ExecutorProfile())
        try:
            with airflow:
                airflow.wait_for_dag(DAG_ID)
                airflow.set_pool(f"omnisend_{STORE_ID}", POOL_SLOTS, "benchmark store")
                airflow.unpause(DAG_ID)
                requests_before = len(emulator.store.request_log())
                started = datetime.now(UTC)
                backfill_id = airflow.backfill(
                    DAG_ID,
                    case.first_day.isoformat(),
                    case.last_day.isoformat(),
                    reprocess_behavior="completed",
                )
                airflow.wait_for_backfill(backfill_id, timeout=args.timeout)
                runs = _last_runs(airflow)
                order = _task_order(airflow)
                tis = airflow.task_instances(DAG_ID)
        except LocalAirflowError as exc:
            print(f"bench_backfill: {exc}", file=sys.stderr)
            return 1
        emulator.wait_until_idle()
        records = emulator.store.request_log()[requests_before:]
        bodies = sum(
            1 for r in records if r.method == "POST" and r.path.endswith("/batches") and 200 <= r.status < 300
        )
    ends = [e for e in (_instant(r.end_date) for r in runs) if e]
    wall = (max(ends) - started).total_seconds() if ends else float("nan")
    valid_files = sorted((staging / STORE_ID).glob("*/valid.ndjson"))
    if len(valid_files) < len(runs):
        print(
            f"bench_backfill: only {len(valid_files)} of {len(runs)} periods kept valid.ndjson in "
            f"{staging / STORE_ID}; the lower bound counts those only (staging retention deleted the rest?)",
            file=sys.stderr,
        )
    limits = BatchLimits(max_items=MAX_ITEMS[args.profile], max_payload_bytes=MAX_PAYLOAD_BYTES)
    bound = store_bound(ndjson_line_lengths(valid_files), limits)
    _print_report(case, period, runs, wall, bound, bodies, records, tis, order)
    failed = [r for r in runs if r.state != "success"]
    return 1 if failed else 0


def _print_report(
    case: Case,
    period: str,
    runs: Sequence[DagRunInfo],
    wall: float,
    bound: StoreBound,
    bodies: int,
    records: Sequence[RequestRecord],
    tis: Sequence[Mapping[str, Any]],
    order: Sequence[str],
) -> None:
    states = Counter(r.state for r in runs)
    print(f"\nruns: {len(runs)} ({', '.join(f'{n} {s}' for s, n in sorted(states.items()))})")
    print(f"valid events: {bound.events}, {bound.total_cost / 1e6:.1f} MB")
    print(f"wall: {wall:.1f} s from backfill create to the last run's end")
    print(
        f"bound: {bound.seconds:.1f} s ({bound.bodies} lower-bound bodies at "
        f"{DEFAULT_RATE_PER_MINUTE:.0f}/min)"
    )
    print(f"bodies: {bodies} (lower bound {bound.bodies}, {bodies / max(1, bound.bodies):.2f} x)")
    print(f"requests: {len(records)}")
    for kind, count in requests_by_kind(records).most_common():
        print(f"  {count:6}  {kind}")
    run_seconds = [
        (e - s).total_seconds()
        for s, e in ((_instant(r.start_date), _instant(r.end_date)) for r in runs)
        if s and e
    ]
    if run_seconds:
        print(
            f"run duration: median {statistics.median(run_seconds):.1f} s, "
            f"mean {statistics.mean(run_seconds):.1f} s"
        )
    print("\nper task (seconds, median / mean over runs):")
    print("\n".join(describe_task_costs(task_costs(tis, order))))
    print()
    for target in targets(wall=wall, bound=bound, bodies=bodies, requests=len(records), runs=len(runs)):
        print(target.line())
    print(f"(case {case.name}, period {period})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--case", choices=sorted(CASES), default="c")
    parser.add_argument("--period", choices=PERIODS, default=None, help="default: the case's")
    parser.add_argument(
        "--profile", choices=sorted(MAX_ITEMS), default="v5", help="API version of the connection"
    )
    parser.add_argument("--keep", default=None, help="working folder to keep (default: a temporary one)")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        help="an Airflow setting SECTION__KEY=VALUE over the deployment's (repeatable), to measure it",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds to wait for the backfill")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
