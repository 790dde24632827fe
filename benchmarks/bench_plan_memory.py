"""Benchmark: peak memory and wall time of the plan step for a 1M-event month.

    .venv/bin/python benchmarks/bench_plan_memory.py [--events 1000000] [--median 1800] [--keep DIR]
        [--code DIR]

Writes a month's ``valid.ndjson`` with ``bench_plan``'s generator (orders of 1-5 lifecycle events,
median event ~1.8 KB, ~6 KB per order) unless ``--keep DIR`` already holds one, then plans it (v5
limits: 1,000 items / 1 MB, every shard written) in a child process and prints the child's peak RSS
(VmHWM of ``/proc/self/status``, not ``ru_maxrss``, which Linux carries across exec), its wall time
and a sha256 over everything the planner wrote. ``--code DIR`` plans with the package in ``DIR`` (a
checkout of another commit), so before and after can be compared on the same file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _vm(field: str) -> float:
    """A ``/proc/self/status`` figure (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def _outputs_sha256(out: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(out.iterdir()):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as data:
            while chunk := data.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _child(path: str, out_dir: str, max_items: int, max_payload: int) -> None:
    """Plan ``path`` into ``out_dir`` and print one JSON line of measurements."""
    from airflow_omnisend.events.chunk_plan import BatchLimits
    from airflow_omnisend.events.planning import plan_batches

    out = Path(out_dir)
    baseline = _vm("VmRSS")
    started = time.perf_counter()
    with open(path, "rb") as src, open(out / "dead_letters.ndjson", "wb") as dead:
        plan = plan_batches(
            src,
            BatchLimits(max_items, max_payload),
            open_shard=lambda i: open(out / f"shard-{i:05d}.ndjson", "wb"),  # noqa: SIM115 (closed by the planner)
            dead_letters=dead,
        )
    seconds = time.perf_counter() - started
    peak = _vm("VmHWM")
    (out / "plan.json").write_text(json.dumps(plan.to_dict(), sort_keys=True))
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "baseline_mb": round(baseline, 1),
                "peak_rss_mb": round(peak, 1),
                "events": plan.events,
                "bodies": plan.bodies,
                "shards": len(plan.shards),
                "ratio": round(plan.packing_ratio, 4),
                "split_orders": plan.split_orders,
                "outputs_sha256": _outputs_sha256(out),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--median", type=int, default=1800, help="median event bytes of an order")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-items", type=int, default=1000)
    parser.add_argument("--max-payload", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) valid.ndjson here")
    parser.add_argument("--code", type=Path, default=HERE.parent, help="the checkout whose planner runs")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, out_dir, max_items, max_payload = args.child
        _child(path, out_dir, int(max_items), int(max_payload))
        return 0

    sys.path.insert(0, str(HERE))
    from bench_plan import write_realistic_partition

    with tempfile.TemporaryDirectory(prefix="bench-plan-memory-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        src = root / f"valid-{args.events}-{args.median}-{args.seed}.ndjson"
        if not src.exists():
            started = time.perf_counter()
            write_realistic_partition(src, args.events, args.seed, args.median)
            print(f"generated {src.name} in {time.perf_counter() - started:.0f} s")
        print(f"partition: {args.events} events, {src.stat().st_size / 1e6:.0f} MB")
        with tempfile.TemporaryDirectory(prefix="out-", dir=root) as out_dir:
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(src),
                    out_dir,
                    str(args.max_items),
                    str(args.max_payload),
                ],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(args.code.resolve())},
            )
        m = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"plan ({args.code}): {m['seconds']} s wall, peak RSS {m['peak_rss_mb']:.0f} MB (baseline "
            f"{m['baseline_mb']:.0f} MB), {m['bodies']} bodies in {m['shards']} shards, ratio {m['ratio']}, "
            f"{m['split_orders']} orders split; outputs sha256 {m['outputs_sha256']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
