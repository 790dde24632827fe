"""Benchmark: send a 200,000-event partition to the emulator running Omnisend's real limits.

    .venv/bin/python benchmarks/bench_send.py [--events 200000] [--workers 4] [--window full]

The partition is the planning benchmark's (``bench_plan.write_realistic_partition``: orders of 1-5
lifecycle events, 0.5-10 KB per event, ~1.5 KB on average). It is planned with
``OmnisendPlanBatchesOperator`` for a v5 connection (1,000 items / 1 MB per body) and every shard is
sent with ``OmnisendSendBatchesOperator`` (sync polling, default poll intervals), ``--workers`` shards
at a time, as mapped tasks in a pool with that many slots would be. The emulator enforces 400
requests per sliding 60 s window per key, 1,000 items and 1 MB per batch, and takes
``--processing-delay`` seconds to process a batch.

The bound. Every request counts against the 400/min, and every body costs at least one: its ``POST
/batches``. Its outcome is read in bulk (a page of ``GET /batches`` carries the counters of up to 100
batches, and a batch whose counters say every item finished without error needs no item read), so no
sender can beat

    bound = (events / bodies) x 400 / 60   events/s

at the planned packing (fewer bodies would raise it: that is the packing ratio's job). List pages,
item reads of batches with errors, 429 refusals and item retries only add requests.
``--window full`` (default) starts with the key's window already spent evenly over the last minute,
as in the middle of a long backfill where the previous partition just used it: the run then sees the
steady 6.67 requests/s the bound assumes. ``--window empty`` starts fresh, so the first 400 requests
go at once and the run can beat the steady-state bound (reported, but not the figure to compare).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_plan import write_realistic_partition

RATE_LIMIT = 400
WINDOW_SECONDS = 60.0
STORE = "bench_store"
DAY = "2026-03-01"
CONN_ID = "omnisend_bench"


def _prefill_window(emu: Any) -> None:
    """Spend the key's whole window evenly over the last minute (steady state of a long backfill)."""
    key = emu.fingerprint(emu.api_key)
    now = time.monotonic()
    for i in range(RATE_LIMIT):
        emu.limiter.acquire(key, now - WINDOW_SECONDS + (i + 0.5) * WINDOW_SECONDS / RATE_LIMIT)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=4, help="shards sent at a time (pool slots)")
    parser.add_argument(
        "--processing-delay", type=float, default=2.0, help="seconds Omnisend takes per batch"
    )
    parser.add_argument("--window", choices=("full", "empty"), default="full")
    parser.add_argument("--keep", help="keep the staging folder here instead of a temporary one")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-send-"))
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow-home"))
    # a budget of its own: a run started within a minute of another must not inherit its window
    os.environ["AIRFLOW_OMNISEND_BRAND_BUDGET_DIR"] = str(work / "brand-budget")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    # the operators log every batch; the table below is the output
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    logging.disable(logging.INFO)

    from airflow.sdk.bases.operator import ExecutorSafeguard

    from airflow_omnisend.events.chunk_plan import ChunkPlan
    from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
    from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
    from airflow_omnisend.staging import StagingRoot
    from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator

    ExecutorSafeguard.test_mode = True  # execute() is called directly here, as in a test: no warning
    staging = work / "staging"
    partition = StagingRoot(str(staging)).partition(STORE, DAY)
    valid = Path(partition.valid.path)
    valid.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    write_realistic_partition(valid, args.events, args.seed)
    size_mb = valid.stat().st_size / 1e6
    print(f"partition: {args.events} events, {size_mb:.0f} MB ({time.monotonic() - started:.1f} s to write)")

    config = EmulatorConfig(
        rate_limit=RATE_LIMIT,
        rate_limit_window=WINDOW_SECONDS,
        max_payload_bytes=1_000_000,
        max_items_v5=1000,
        processing_delay=args.processing_delay,
    )
    with OmnisendEmulator(config) as emu:
        conn = {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key}
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(conn)
        common = {"store_id": STORE, "partition": DAY, "omnisend_conn_id": CONN_ID, "staging": str(staging)}

        started = time.monotonic()
        shards = OmnisendPlanBatchesOperator(task_id="plan", **common).execute({})
        plan_seconds = time.monotonic() - started
        plan = ChunkPlan.from_dict(partition.read_json("plan"))
        print(f"plan: {plan.describe()} ({plan_seconds:.1f} s)")

        if args.window == "full":
            _prefill_window(emu)

        def send(shard: int) -> dict[str, int]:
            operator = OmnisendSendBatchesOperator(task_id=f"send_{shard}", shard=shard, **common)
            return operator.execute({})

        load_before = os.getloadavg()
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            manifests = list(pool.map(send, shards))
        seconds = time.monotonic() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        load_after = os.getloadavg()

        emu.wait_until_idle(timeout=120)
        store = emu.store
        accepted = store.accepted_count()
        duplicates = store.duplicate_count()
        log = store.request_log()

    events, bodies = plan.items, plan.bodies
    statuses = Counter((r.method, r.status) for r in log)
    posts = statuses[("POST", 201)]
    reads = sum(n for (method, status), n in statuses.items() if method == "GET" and status == 200)
    refused = sum(n for (_, status), n in statuses.items() if status == 429)
    spent = posts + reads + sum(n for (_, status), n in statuses.items() if status not in (200, 201, 429))
    other = spent - posts - reads
    rate = RATE_LIMIT / WINDOW_SECONDS
    bound = events / bodies * rate
    achieved = events / seconds
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    rows = [
        ("events sent / accepted (unique) / duplicates", f"{events} / {accepted} / {duplicates}"),
        ("bodies / lower bound / packing ratio", f"{bodies} / {plan.lower_bound} / {plan.packing_ratio:.4f}"),
        ("events per body", f"{events / bodies:.1f}"),
        ("shards / workers", f"{len(shards)} / {args.workers}"),
        ("send wall time", f"{seconds:.1f} s"),
        ("requests that spent budget (POST / GET / other)", f"{spent} ({posts} / {reads} / {other})"),
        ("reads per body (minimum 0)", f"{reads / bodies:.3f}"),
        ("429 refusals (spend no budget)", f"{refused}"),
        ("budget used", f"{spent / seconds:.2f} requests/s of {rate:.2f}"),
        ("bound (events / bodies x 400/60)", f"{bound:,.0f} events/s"),
        ("achieved", f"{achieved:,.0f} events/s = {achieved / bound:.1%} of the bound"),
        ("sender CPU (this process, emulator included)", f"{cpu:.1f} s"),
        ("load average 1 min before / after (2 vCPUs)", f"{load_before[0]:.2f} / {load_after[0]:.2f}"),
        ("window at start", args.window),
    ]
    print()
    print("| measure | value |")
    print("|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    failed = accepted != events or sum(m["accepted"] for m in manifests) != events
    if failed:
        print("ERROR: not every event was accepted", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
