"""Figures of a chaos run: two stores backfilled by a real deployment through kills, restarts, an
outage and a revoked key, then the documented recovery (``airflow_omnisend.testing.chaos``).

    .venv/bin/python benchmarks/chaos_figures.py [--profile local|celery] [--seed 13] [--days 4]
        [--orders 240] [--keep DIR] [--json]

Prints kills per task type (kill point), restarts (scheduler, triggerer, emulator), outage seconds,
per store the events expected / accepted / duplicated / lost (from the emulator's record), the finished
bodies resubmitted, and the wall time of the chaos and of the recovery. ``--profile celery`` needs the
local PostgreSQL and Redis servers. It starts real Airflow: run it under the machine's heavy-job lock
where there is one. Figures and commands: RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

from airflow_omnisend.testing.chaos import ChaosSettings, run_chaos, settings_for
from airflow_omnisend.testing.local_airflow import ExecutorProfile
from airflow_omnisend.testing.local_servers import free_redis_database, fresh_postgres_database


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, ChaosSettings]:
    """The command line, and the chaos settings it asks for."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profile", choices=("local", "celery"), default="local")
    parser.add_argument("--seed", type=int, default=ChaosSettings.seed)
    parser.add_argument("--days", type=int, default=ChaosSettings.days)
    parser.add_argument("--orders", type=int, default=ChaosSettings.orders)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON as well")
    args = parser.parse_args(argv)
    return args, settings_for(args.seed, days=args.days, orders=args.orders)


def main(argv: list[str] | None = None) -> int:
    args, settings = parse(argv)
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
        if args.profile == "celery":
            metadata_db = stack.enter_context(fresh_postgres_database())
            broker = stack.enter_context(free_redis_database())
            profile = ExecutorProfile.celery(metadata_db, broker, workers=2, worker_concurrency=2)
        else:
            profile = ExecutorProfile.local_sqlite()
        report = run_chaos(root / "run", profile, settings, profile_name=args.profile)
    print(report.describe())
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    clean = all(led.lost == 0 and led.unexpected == 0 for led in report.ledgers.values())
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
