"""``airflow-omnisend demo`` (what ``make demo`` runs): the main job on embedded defaults, end to end.

1. a deterministic sample shop in SQLite (the reference schema; 2,000 orders over the 7 days from
   2024-03-04, Europe/Vilnius, with a few dirty rows);
2. the Omnisend emulator on 127.0.0.1, in this process, recording into ``<home>/emulator.sqlite``;
3. a real local Airflow (scheduler, DAG processor, triggerer, API server; LocalExecutor on SQLite in
   ``<home>/airflow-home``) with the repository's ``dags/`` and the demo store's connections;
4. ``airflow backfill create`` of the seven days for ``omnisend_orders__demo``, then each day's report.

Run it twice: the second run reprocesses the same days (``--reprocess-behavior completed``) and sends no
batch, because every body already has a finished receipt in staging (were one resent, Omnisend - and
the emulator - would de-duplicate its events on eventID + eventTime).

Nothing here imports Airflow: Airflow runs as subprocesses (``testing.local_airflow``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_omnisend.events.partition import PartitionPeriod, PartitionWindow
from airflow_omnisend.stores import load_stores
from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator
from airflow_omnisend.testing.local_airflow import (
    ADMIN_USER,
    ExecutorProfile,
    LocalAirflow,
    LocalAirflowError,
)
from airflow_omnisend.testing.sample_store import build_sample_store

if TYPE_CHECKING:
    import argparse

    from airflow_omnisend.testing.local_airflow import DagRunInfo
    from airflow_omnisend.testing.sample_store import SampleStoreSummary

STORE_ID = "demo"
DAG_ID = f"omnisend_orders__{STORE_ID}"
TIMEZONE = "Europe/Vilnius"
FIRST_DAY = date(2024, 3, 4)
DAYS = 7
API_KEY = "demo-api-key"
#: where the provider's plugin mounts the dashboard on the api-server
DASHBOARD_PATH = "/omnisend/"
#: what ``--keep-up`` prints once the demo is done and Airflow stays up (tests wait for it)
KEEP_UP_LINE = "Airflow stays up until Ctrl-C."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", type=Path, default=Path(".demo"), help="demo working folder (default .demo)"
    )
    parser.add_argument("--dags-folder", type=Path, default=Path("dags"), help="default: ./dags")
    parser.add_argument("--orders", type=int, default=2000, help="orders in the sample shop (first run)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the backfill")
    parser.add_argument(
        "--keep-up",
        action="store_true",
        help="keep Airflow and the emulator running after the demo, to look at the UI and the "
        "dashboard, until Ctrl-C",
    )


def run(args: argparse.Namespace) -> int:
    home: Path = args.home.resolve()
    dags_folder: Path = args.dags_folder.resolve()
    if not (dags_folder / "omnisend_orders.py").is_file():
        print(
            f"demo: {dags_folder} holds no omnisend_orders.py; run from the repository root", file=sys.stderr
        )
        return 2
    home.mkdir(parents=True, exist_ok=True)
    shop = home / "shop.sqlite"
    staging = home / "staging"
    last_day = FIRST_DAY + timedelta(days=DAYS - 1)
    if not shop.exists():
        summary = build_sample_store(
            str(shop), orders=args.orders, seed=args.seed, timezone=TIMEZONE, start=FIRST_DAY, days=DAYS
        )
        print(f"sample shop: {shop} ({_describe(summary)})")
    else:
        print(f"sample shop: {shop} (kept from an earlier run)")

    started = time.monotonic()
    emulator = OmnisendEmulator(
        EmulatorConfig(api_key=API_KEY, db_path=str(home / "emulator.sqlite"), processing_delay=0.2)
    )
    with emulator:
        posts_before = emulator.store.request_count(path_prefix="/v5/batches", method="POST")
        accepted_before = emulator.store.accepted_count()
        print(f"Omnisend emulator: {emulator.base_url} (record: {home / 'emulator.sqlite'})")
        env = {
            "AIRFLOW_CONN_OMNISEND_DEMO": json.dumps(
                {"conn_type": "omnisend", "host": emulator.base_url, "password": API_KEY}
            ),
            "AIRFLOW_CONN_SHOP_DEMO": json.dumps({"conn_type": "sqlite", "host": str(shop)}),
            "AIRFLOW_OMNISEND_STAGING": str(staging),
            "AIRFLOW_OMNISEND_STORES": str(dags_folder / "stores.yaml"),
        }
        airflow = LocalAirflow(home / "airflow-home", dags_folder, env=env, profile=ExecutorProfile())
        print(f"starting Airflow in {airflow.home} (logs: {airflow.logs_dir}) ...", flush=True)
        try:
            with airflow:
                print(_where_to_look(airflow), flush=True)
                period = load_stores(dags_folder / "stores.yaml").get(STORE_ID).period
                runs = _backfill(airflow, FIRST_DAY, last_day, args.timeout, period)
                lines = [_day_line(airflow, staging, run_info) for run_info in runs]
                emulator.wait_until_idle()
                posts = emulator.store.request_count(path_prefix="/v5/batches", method="POST") - posts_before
                accepted = emulator.store.accepted_count() - accepted_before
                failed = [r for r in runs if r.state != "success"]
                print()
                print("\n".join(lines))
                print()
                _summary(runs, posts, accepted, emulator.store.duplicate_count(), started, staging)
                _closing(home, airflow, posts == 0 and not failed)
                if args.keep_up:
                    _keep_up(airflow)
        except LocalAirflowError as exc:
            print(f"demo: {exc}\n{airflow.diagnostics()}", file=sys.stderr)
            return 1
    return 1 if failed else 0


def dashboard_url(airflow: LocalAirflow) -> str:
    """The provider's dashboard on this deployment's api-server."""
    return f"{airflow.api_url}{DASHBOARD_PATH}"


def _where_to_look(airflow: LocalAirflow) -> str:
    passwords = airflow.home / "simple_auth_manager_passwords.json"
    return (
        f"Airflow UI: {airflow.api_url}/  dashboard: {dashboard_url(airflow)}  "
        f"(log in as {ADMIN_USER}; password in {passwords})"
    )


def _summary(
    runs: list[DagRunInfo], posts: int, accepted: int, duplicates: int, started: float, staging: Path
) -> None:
    print(
        f"{len(runs)} days in {time.monotonic() - started:.0f}s: {posts} batches sent this run, "
        f"{accepted} new events accepted by the emulator ({duplicates} duplicates ever seen). "
        f"Staging: {staging / STORE_ID}"
    )


def _closing(home: Path, airflow: LocalAirflow, nothing_sent: bool) -> None:
    if nothing_sent:
        print("Nothing was sent: every body of these days already has a finished receipt.")
    print(
        "Run it again (`make demo`): the days are reprocessed and no batch is sent. Task logs: "
        f"{airflow.home / 'logs'}; remove {home} to start from scratch."
    )


def _keep_up(airflow: LocalAirflow) -> None:
    """Keep Airflow (and the emulator) running until Ctrl-C, then return so both stop cleanly."""
    print(f"\n{KEEP_UP_LINE} {_where_to_look(airflow)}", flush=True)
    stop = threading.Event()
    try:
        stop.wait()  # only Ctrl-C (KeyboardInterrupt) ends this wait
    except KeyboardInterrupt:
        print("\nCtrl-C: stopping Airflow and the emulator ...", flush=True)


def _backfill(
    airflow: LocalAirflow, first: date, last: date, timeout: float, period: PartitionPeriod
) -> list[DagRunInfo]:
    airflow.wait_for_dag(DAG_ID)
    airflow.set_pool(f"omnisend_{STORE_ID}", 4, "Omnisend demo store: one rate budget")
    airflow.unpause(DAG_ID)
    print(f"airflow backfill create --dag-id {DAG_ID} --from-date {first} --to-date {last}", flush=True)
    backfill_id = airflow.backfill(
        DAG_ID, first.isoformat(), last.isoformat(), reprocess_behavior="completed"
    )
    airflow.wait_for_backfill(backfill_id, timeout=timeout)
    # the keys of the store's periods (day, week or month) that start in the range: what backfill runs
    days = {
        PartitionWindow.for_period(first + timedelta(days=n), period, TIMEZONE).label
        for n in range((last - first).days + 1)
        if period.start_of(first + timedelta(days=n)) == first + timedelta(days=n)
    }
    # each backfill of a partitioned DAG creates new runs: the latest run of each day is this one's
    latest: dict[str, DagRunInfo] = {}
    for run_info in airflow.dag_runs(DAG_ID):
        day = run_info.partition_key
        if (
            run_info.run_type == "backfill"
            and day in days
            and (day not in latest or (run_info.start_date or "") >= (latest[day].start_date or ""))
        ):
            latest[day] = run_info
    return [latest[day] for day in sorted(latest)]


def _day_line(airflow: LocalAirflow, staging: Path, run_info: DagRunInfo) -> str:
    day = run_info.partition_key or "?"
    path = staging / STORE_ID / day / "report.json"
    if run_info.state != "success" or not path.exists():
        failed = [
            ti["task_id"]
            for ti in airflow.task_instances(DAG_ID, run_info.run_id)
            if ti.get("state") == "failed"
        ]
        logs = [str(p) for p in airflow.task_log_files(DAG_ID) if run_info.run_id in str(p)]
        return (
            f"{day}: {run_info.state}; failed task(s): {', '.join(failed) or '-'}; "
            f"logs: {logs[-1] if logs else airflow.home / 'logs'}"
        )
    report: dict[str, Any] = json.loads(path.read_text())
    return (
        f"{day}: {run_info.state:7} extracted {report['events_extracted']:4}, accepted "
        f"{report['events_accepted']:4} (in {report['batches']} batches), rejected "
        f"{report['events_rejected']:2}, dead-lettered {report['events_dead_lettered']}, "
        f"automations {report['automation_check']['outcome'] if report['automation_check'] else '-'}"
        f" -> {path}"
    )


def _describe(summary: SampleStoreSummary) -> str:
    dirty = sum(summary.dirty.values())
    return (
        f"{summary.orders} orders, {summary.refunds} refunds, {summary.total_events} events "
        f"({dirty} dirty rows), {summary.first_event_day} to {summary.last_event_day}"
    )
