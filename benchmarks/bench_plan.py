"""Benchmark: plan a large, realistic partition and report time, memory and packing ratio.

    .venv/bin/python benchmarks/bench_plan.py [--events 200000] [--seed 7] [--keep DIR]

The partition is synthetic but shaped like the mapping's output: orders of 1-5 lifecycle events
(placed, paid, fulfilled, canceled/refunded), event sizes 0.5-10 KB (log-normal, median ~1.2 KB,
about 1.5 KB on average: 200,000 events ~ 300 MB), all events of an order of similar size (same
line items). Each limit profile is planned in a fresh subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

PROFILES = {
    "1000 items / 1 MB (v5)": (1000, 1_000_000),
    "100 items / 1 MB (2026-03-15)": (100, 1_000_000),
    "1000 items / 256 KB (tight bytes)": (1000, 262_144),
    "100 items / 128 KB (both tight)": (100, 131_072),
}
LIFECYCLES = [
    (0.22, ["placed order"]),
    (0.30, ["placed order", "paid for order"]),
    (0.30, ["placed order", "paid for order", "order fulfilled"]),
    (0.10, ["placed order", "paid for order", "order fulfilled", "order refunded"]),
    (0.05, ["placed order", "paid for order", "order canceled", "order refunded"]),
    (0.03, ["placed order", "paid for order", "order fulfilled", "order refunded", "order refunded"]),
]
NAMESPACE = uuid.UUID("6f1c2a3e-0000-4000-8000-00000000be9c")


def _event(rng: random.Random, name: str, order: int, step: int, target: int) -> bytes:
    line_item = {
        "productID": f"p{rng.randrange(10_000)}",
        "productVariantID": f"v{rng.randrange(100_000)}",
        "productSKU": f"SKU-{rng.randrange(10**6):06d}",
        "productTitle": "Organic cotton t-shirt",
        "productVariantTitle": "Green / M",
        "productVendor": "Acme",
        "productPrice": 19.99,
        "productQuantity": 1 + rng.randrange(3),
        "productDiscount": 0,
        "productURL": "https://shop.example.com/products/organic-cotton-t-shirt",
        "productImageURL": "https://cdn.example.com/img/t-shirt-green.jpg",
        "productCategories": [{"id": "12", "title": "T-shirts"}],
    }
    event = {
        "eventName": name,
        "eventID": str(uuid.uuid5(NAMESPACE, f"store:{name}:{order}:{step}")),
        "eventTime": f"2026-03-0{1 + step % 9}T{10 + step:02d}:{order % 60:02d}:00Z",
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"email": f"customer{order % 50_000}@example.com", "firstName": "Ada"},
        "properties": {
            "orderID": str(order),
            "orderNumber": order,
            "currency": "EUR",
            "totalPrice": 59.97,
            "paymentStatus": "paid",
            "fulfillmentStatus": "unfulfilled",
            "createdAt": "2026-03-01T10:00:00Z",
            "lineItems": [],
        },
    }
    base = len(orjson.dumps(event))
    item_size = len(orjson.dumps(line_item)) + 1
    count = max(1, (target - base) // item_size)
    event["properties"]["lineItems"] = [line_item] * count  # type: ignore[index]
    pad = target - len(orjson.dumps(event)) - len(',"note":""')
    if pad > 0:
        event["properties"]["note"] = "x" * pad  # type: ignore[index]
    return orjson.dumps(event)


def write_realistic_partition(path: Path, n_events: int, seed: int = 7, median: int = 1200) -> None:
    """``n_events`` compact event lines (``median`` bytes for the median order's events); an order's
    events are spread over the file like a real day's (the file is written in 64 interleaved streams, so
    no order's events sit next to each other)."""
    rng = random.Random(seed)
    weights = [w for w, _ in LIFECYCLES]
    streams: list[list[bytes]] = [[] for _ in range(64)]
    written = 0
    order = 100_000
    with open(path, "wb") as out:
        while written < n_events:
            order += 1
            names = rng.choices([names for _, names in LIFECYCLES], weights)[0]
            base = min(10_000, max(500, int(rng.lognormvariate(math.log(median), 0.6))))
            for step, name in enumerate(names[: n_events - written]):
                size = min(10_000, max(500, int(base * rng.uniform(0.95, 1.1))))
                streams[rng.randrange(64)].append(_event(rng, name, order, step, size) + b"\n")
                written += 1
            if sum(len(s) for s in streams) > 4096 or written == n_events:
                for stream in streams:
                    out.writelines(stream)
                    stream.clear()


def _memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process; ``ru_maxrss`` would include the parent's peak,
    because Linux keeps it across exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _plan_one(path: str, max_items: int, max_payload: int, out_dir: str) -> None:
    """Child process: plan ``path`` and print one JSON line of measurements."""
    from airflow_omnisend.events.chunk_plan import BatchLimits
    from airflow_omnisend.events.planning import plan_batches

    rss_before = _memory_mb("VmRSS")
    out = Path(out_dir)
    started = time.perf_counter()
    with open(path, "rb") as src, open(out / "dead_letters.ndjson", "wb") as dead:
        plan = plan_batches(
            src,
            BatchLimits(max_items, max_payload),
            open_shard=lambda i: open(out / f"shard-{i:05d}.ndjson", "wb"),  # noqa: SIM115 (closed by the planner)
            dead_letters=dead,
        )
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "rss_before_mb": round(rss_before, 1),
                "peak_rss_mb": round(_memory_mb("VmHWM"), 1),
                "events": plan.events,
                "bodies": plan.bodies,
                "shards": len(plan.shards),
                "lower_bound": plan.lower_bound,
                "ratio": round(plan.packing_ratio, 4),
                "packing": plan.packing,
                "dead_lettered": plan.dead_lettered,
                "split_orders": plan.split_orders,
                "plan_json_bytes": len(json.dumps(plan.to_dict())),
            }
        )
    )


def compare_strategies(n_events: int, seed: int) -> None:
    """Sizes only: each packing strategy alone, for small, typical and large events."""
    from airflow_omnisend.events.chunk_plan import BatchLimits
    from airflow_omnisend.events.packing import lower_bound, pack_groups

    weights = [w for w, _ in LIFECYCLES]
    print(f"\nstrategies alone, {n_events} events of sizes only (bodies / lower bound):")
    print(f"{'median event':>12}  {'profile':36} {'LB':>6} {'ffd-balanced':>14} {'bfd':>14}")
    for median in (600, 1200, 3000):
        rng = random.Random(seed)
        costs, counts, total = [], [], 0
        while total < n_events:
            names = rng.choices([names for _, names in LIFECYCLES], weights)[0][: n_events - total]
            base = min(10_000, max(500, int(rng.lognormvariate(math.log(median), 0.6))))
            costs.append(sum(min(10_000, max(500, int(base * rng.uniform(0.95, 1.1)))) + 1 for _ in names))
            counts.append(len(names))
            total += len(names)
        for label, (max_items, max_payload) in PROFILES.items():
            limits = BatchLimits(max_items, max_payload)
            bound = lower_bound(sum(costs), sum(counts), limits)
            cells = []
            for strategy in ("ffd-balanced", "bfd"):
                started = time.perf_counter()
                packing = pack_groups(costs, counts, limits.body_capacity, max_items, strategies=(strategy,))
                seconds = time.perf_counter() - started
                cells.append(f"{len(packing.bodies) / bound:.4f} {seconds:4.1f}s")
            print(f"{median:>10} B  {label:36} {bound:>6} {cells[0]:>14} {cells[1]:>14}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", help="write the partition and shards here (default: a temp dir)")
    parser.add_argument("--compare", action="store_true", help="also compare the packing strategies")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, max_items, max_payload, out_dir = args.child
        _plan_one(path, int(max_items), int(max_payload), out_dir)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        src = root / "valid.ndjson"
        write_realistic_partition(src, args.events, args.seed)
        size = src.stat().st_size
        print(
            f"partition: {args.events} events, {size / 1e6:.1f} MB, "
            f"generated in {time.perf_counter() - started:.1f}s (python {sys.version.split()[0]})"
        )
        print(
            f"{'profile':36} {'time':>6} {'peak RSS':>9} {'bodies':>7} {'LB':>6} {'ratio':>7} "
            f"{'shards':>6}  packing"
        )
        for label, (max_items, max_payload) in PROFILES.items():
            out_dir = root / f"out-{max_items}-{max_payload}"
            out_dir.mkdir(exist_ok=True)
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(src),
                    str(max_items),
                    str(max_payload),
                    str(out_dir),
                ],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            )
            m = json.loads(result.stdout.strip().splitlines()[-1])
            print(
                f"{label:36} {m['seconds']:>5.1f}s {m['peak_rss_mb']:>7.0f}MB {m['bodies']:>7} "
                f"{m['lower_bound']:>6} {m['ratio']:>7.4f} {m['shards']:>6}  {m['packing']} "
                f"(base RSS {m['rss_before_mb']:.0f} MB, plan.json {m['plan_json_bytes'] / 1e3:.0f} KB)"
            )
    if args.compare:
        compare_strategies(args.events, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
