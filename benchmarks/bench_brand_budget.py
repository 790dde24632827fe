"""Cost of the brand's shared budget, and what it prevents.

1. Cost per ``try_reserve`` of each backend (process, file, redis), one process, no waiting.
2. N OS processes sending through ``OmnisendHook`` to the emulator, which answers every 40th request with
   a 429 naming 1 s: requests that arrived inside a named retry time (``early_arrivals``), per backend.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_brand_budget.py [--processes 3] [--calls 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from airflow_omnisend.hooks._brand_budget import FileBudget, ProcessBudget, RedisBudget, brand_id
from airflow_omnisend.testing.emulator import OmnisendEmulator
from airflow_omnisend.testing.emulator.config import EmulatorConfig, FaultConfig
from airflow_omnisend.testing.emulator.ratelimit import early_arrivals

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/15"
IN_FLIGHT = 0.05

_WORKER = textwrap.dedent(
    """
    import sys
    from airflow_omnisend.hooks.omnisend import OmnisendHook
    from airflow_omnisend.hooks._pacing import RetryConfig
    hook = OmnisendHook("omnisend_brand", retry=RetryConfig(max_attempts=20, total_budget=120))
    hook.settings
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(int(sys.argv[1])):
        hook.list_automations(enabled=None)
    print("done", flush=True)
    """
)


def acquire_cost(budget: Any, n: int = 2000) -> float:
    """Microseconds per reservation at Omnisend's steady state: 400 starts live in the 60 s window
    (logical time advances 60/400 s per call, so each call finds one slot freed)."""
    now = time.time()
    for i in range(400):
        budget.try_reserve(now + i * 0.15)
    now += 400 * 0.15
    start = time.perf_counter()
    for i in range(n):
        budget.try_reserve(now + i * 0.15)
    return (time.perf_counter() - start) / n * 1e6


def senders(backend: str, processes: int, calls: int, budget_dir: str) -> tuple[int, int, float]:
    """(429s, early arrivals, wall seconds) of one run of ``processes`` hooks on one brand."""
    emu = OmnisendEmulator(EmulatorConfig(fractional_seconds=True, rate_limit=10_000)).start()
    emu.set_faults(FaultConfig(targets="*", burst_429_every=40, burst_429_retry_after=1.0))
    extra = {"brand_budget": backend, "brand_budget_dir": budget_dir, "brand_budget_redis_url": REDIS_URL}
    conn = {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key, "extra": extra}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AIRFLOW_CONN_OMNISEND_BRAND": json.dumps(conn)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(calls)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            for line in iter(p.stdout.readline, ""):
                if line.strip() == "ready":
                    break
        started = time.monotonic()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            p.communicate(timeout=600)
        wall = time.monotonic() - started
        log = emu.store.request_log()
    finally:
        emu.stop()
    return sum(r.status == 429 for r in log), len(early_arrivals(log, in_flight=IN_FLIGHT)), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-brand-budget-")
    run_dir = tempfile.mkdtemp(prefix="bench-brand-budget-run-")
    brand = brand_id(f"bench-{os.getpid()}")
    budgets: dict[str, Any] = {
        "process": ProcessBudget(),
        "file": FileBudget(tmp, brand),
    }
    try:
        redis_budget = RedisBudget(REDIS_URL, brand)
        redis_budget.client.ping()
        budgets["redis"] = redis_budget
    except Exception as err:
        print(f"redis: not measured ({type(err).__name__})")
    print("backend  us/acquire")
    for name, budget in budgets.items():
        print(f"{name:8} {acquire_cost(budget):10.1f}")
    print(f"\n{args.processes} processes x {args.calls} calls, a 429 (1 s) every 40th request")
    print("backend  429s  early  wall_s")
    for name in budgets:
        refused, early, wall = senders(name, args.processes, args.calls, run_dir)
        print(f"{name:8} {refused:4} {early:6} {wall:7.2f}")


if __name__ == "__main__":
    main()
