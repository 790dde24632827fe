"""Refactor check: a digest of every file the prep path writes, day by day, for a sample store.

    .venv/bin/python benchmarks/outputs_digest.py --orders 2000 --seed 7 --start 2024-03-04 > before.json
    ... change the code ...
    .venv/bin/python benchmarks/outputs_digest.py --orders 2000 --seed 7 --start 2024-03-04 > after.json
    diff before.json after.json

For each store-local day that holds events of a deterministic sample store (SQLite, Europe/Vilnius), it
runs what the DAG's tasks run, without Airflow: extract -> ``events.ndjson`` + ``rows_rejected.ndjson``,
validate -> ``valid.ndjson`` + ``rejected.ndjson``, plan (v5 limits: 1,000 items, 1 MB) -> the shard
files, the planner's dead letters and the plan. It prints the sha256 and size of each file, so a change
that must not change outputs (a refactor) can be checked on the demo store (``--orders 2000 --seed 7
--start 2024-03-04``) and on the 200,000-order store of ``bench_prep.py`` (``--orders 200000 --seed 1
--start 2024-03-25``). ``--keep DIR`` keeps the files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

TIMEZONE = "Europe/Vilnius"


def _digest(path: Path) -> dict[str, Any]:
    data = path.read_bytes() if path.exists() else b""
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _day(conn: sqlite3.Connection, day: dt.date, folder: Path) -> dict[str, Any]:
    from airflow_omnisend.events.chunk_plan import BatchLimits
    from airflow_omnisend.events.ndjson_validation import validate_ndjson
    from airflow_omnisend.events.partition import PartitionWindow
    from airflow_omnisend.events.planning import plan_batches
    from airflow_omnisend.events.validation import EventValidator
    from airflow_omnisend.sources.extract import extract_partition
    from airflow_omnisend.sources.sql import DbApiOrderSource

    folder.mkdir(parents=True, exist_ok=True)
    window = PartitionWindow.for_day(day, TIMEZONE)
    with (folder / "events.ndjson").open("wb") as out, (folder / "rows_rejected.ndjson").open("wb") as rows:
        extract_partition(DbApiOrderSource(conn), "demo", window, out, rows_rejected_out=rows)
    with (
        (folder / "events.ndjson").open("rb") as src,
        (folder / "valid.ndjson").open("wb") as valid,
        (folder / "rejected.ndjson").open("wb") as rejected,
    ):
        validate_ndjson(src, valid, rejected, EventValidator())
    bodies = folder / "bodies"
    bodies.mkdir(exist_ok=True)
    with (folder / "valid.ndjson").open("rb") as src, (folder / "dead_letters.ndjson").open("wb") as dead:
        plan = plan_batches(
            src,
            BatchLimits(max_items=1000, max_payload_bytes=1_000_000),
            open_shard=lambda i: (bodies / f"shard-{i:04d}.ndjson").open("wb"),
            dead_letters=dead,
        )
    (folder / "plan.json").write_text(json.dumps(plan.to_dict(), sort_keys=True))
    files = ["events.ndjson", "rows_rejected.ndjson", "valid.ndjson", "rejected.ndjson"]
    files += ["dead_letters.ndjson", "plan.json"]
    files += [f"bodies/{p.name}" for p in sorted(bodies.iterdir())]
    return {name: _digest(folder / name) for name in files}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2024, 3, 4))
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="keep the files in this folder")
    parser.add_argument("--store", type=Path, default=None, help="reuse (or build once) this SQLite file")
    args = parser.parse_args()

    from airflow_omnisend.testing.sample_store import build_sample_store

    with tempfile.TemporaryDirectory(prefix="outputs-digest-") as tmp:
        work = args.keep or Path(tmp)
        db = args.store or Path(tmp) / "store.sqlite"
        meta = db.with_suffix(".json")
        if not (db.exists() and meta.exists()):
            summary = build_sample_store(
                db, args.orders, args.seed, timezone=TIMEZONE, start=args.start, days=args.days, replace=True
            ).to_dict()
            meta.write_text(json.dumps(summary))
        summary = json.loads(meta.read_text())
        first = dt.date.fromisoformat(summary["first_event_day"])
        last = dt.date.fromisoformat(summary["last_event_day"])
        conn = sqlite3.connect(db)
        result: dict[str, Any] = {}
        day = first
        while day <= last:
            result[day.isoformat()] = _day(conn, day, work / day.isoformat())
            day += dt.timedelta(days=1)
        conn.close()
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
