"""Benchmark: the dashboard's store page for a store of 1,000 periods, on synthetic staging.

    .venv/bin/python benchmarks/bench_dashboard.py [--periods 1000] [--runs 5] [--no-write]

Writes ``report.json``, ``validation.json`` and ``automation_check.json`` for each period (and a
rejected / dead-letter file where the synthetic counts say so: ``testing/dashboard_staging.py``),
builds one run record per period, then times, best of ``--runs``:

* cold: a fresh file cache, so every small file is read and parsed (the first request after the
  api-server starts, or after every file changed);
* warm: the cache of the previous request, so only ``stat`` calls (a page reloaded while nothing ran);
* the page's HTML alone (chart, table, reasons) from a built summary;
* the JSON answer (``/api/stores/{id}``) from a built summary.

Target: the whole page (summary + HTML) in under a second, cold. The table is printed and written to
the "## Dashboard" section of BENCHMARKS.md (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from airflow_omnisend.dashboard.data import JsonCache, RunRecord, StoreSource, summarize_store  # noqa: E402
from airflow_omnisend.dashboard.page import Urls, store_page  # noqa: E402
from airflow_omnisend.testing.dashboard_staging import write_store  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

BENCHMARKS_MD = REPO / "BENCHMARKS.md"
SECTION = "## Dashboard"


def _best(runs: int, work: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def measure(periods: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        root = Path(tmp)
        keys = write_store(root, "bench", periods)
        records = tuple(
            RunRecord(
                k,
                f"backfill__{k}",
                "failed" if i % 97 == 0 else "success",
                "backfill",
                "2026-12-01T10:00:00Z",
                "2026-12-01T10:01:00Z",
                1,
            )
            for i, k in enumerate(keys)
        )
        source = StoreSource("bench", "omnisend_orders__bench", records, root / "bench")
        urls = Urls()
        warm_cache = JsonCache()
        summary = summarize_store(source, warm_cache)
        html = store_page(summary, urls)
        return {
            "periods": periods,
            "cold": _best(runs, lambda: store_page(summarize_store(source, JsonCache()), urls)),
            "warm": _best(runs, lambda: store_page(summarize_store(source, warm_cache), urls)),
            "html": _best(runs, lambda: store_page(summary, urls)),
            "json": _best(runs, lambda: json.dumps(summary.to_dict())),
            "html_bytes": len(html.encode()),
        }


def table(result: dict[str, Any]) -> str:
    ms = {k: f"{result[k] * 1000:.0f} ms" for k in ("cold", "warm", "html", "json")}
    lines = [
        f"{SECTION}",
        "",
        f"`benchmarks/bench_dashboard.py`: the store page of {result['periods']:,} periods on synthetic "
        f"staging, best of the runs ({platform.python_version()}, {os.cpu_count()} cores, "
        f"{dt.date.today().isoformat()}; a shared machine, so figures vary by about 2x with its load). "
        "Target: whole page under 1 s, cold.",
        "",
        "| what | time |",
        "|---|---|",
        f"| whole page, cold file cache (reads {result['periods'] * 3:,} small JSON files) | {ms['cold']} |",
        f"| whole page, warm cache (`stat` only) | {ms['warm']} |",
        f"| HTML alone from a built summary ({result['html_bytes'] / 1024:.0f} KiB) | {ms['html']} |",
        f"| JSON answer alone | {ms['json']} |",
        "",
        "Not included: the DagRun query (one indexed select of the DAG's runs) and the auth manager's "
        "check, both done once per request.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    current = BENCHMARKS_MD.read_text(encoding="utf-8")
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    updated = (
        pattern.sub(lambda _m: text, current) if pattern.search(current) else current.rstrip() + "\n\n" + text
    )
    BENCHMARKS_MD.write_text(updated, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    text = table(measure(args.periods, args.runs))
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
