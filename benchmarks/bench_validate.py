"""Benchmark: ``airflow-omnisend validate`` against a plain-jsonschema script, on one core.

    .venv/bin/python benchmarks/bench_validate.py [--events 100000] [--seed 11] [--runs 3] [--no-write]

1. Generates a realistic NDJSON file (orders living through their lifecycle events, 1-6 line items
   each, unicode names, ~1% dirty events of several kinds, ~5% without totalPrice) with its own
   generator, so the figures do not depend on the mapping code.
2. Whole process, start-up, parsing, validation and writing included: the ``airflow-omnisend validate``
   command (best of ``--runs``) versus ``benchmarks/plain_jsonschema_validate.py`` (json + jsonschema,
   the same schema files) on the same file. Target: at least 20x faster.
3. The validation step alone: ``EventValidator.check`` on already-parsed events, events per second.
   Target: at least 100,000 events/s.

Everything runs pinned to one CPU (children inherit the affinity). The markdown table is printed and
written to the "## Validation" section of BENCHMARKS.md at the repository root (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
PLAIN_SCRIPT = Path(__file__).resolve().parent / "plain_jsonschema_validate.py"
NPROC = len(os.sched_getaffinity(0))  # before the benchmark pins itself to one CPU
NAMESPACE = uuid.UUID("3d0c8f0e-5b7a-4c59-9a53-0bd1a7e1c0de")

LIFECYCLES = [
    (0.25, ["placed order"]),
    (0.30, ["placed order", "paid for order"]),
    (0.30, ["placed order", "paid for order", "order fulfilled"]),
    (0.08, ["placed order", "paid for order", "order fulfilled", "order refunded"]),
    (0.07, ["placed order", "paid for order", "order canceled"]),
]
FIRST_NAMES = ["Ona", "Jonas", "Žydrūnė", "Łukasz", "María José", "Zoë", "Søren", "Ayşe", "Дмитрий", "美咲"]
LAST_NAMES = ["Kazlauskienė", "Petraitis", "Nowak", "García", "O'Brien", "Müller", "Öztürk", "Иванов", "佐藤"]
PRODUCTS = [
    ("Organic cotton t-shirt", "Apparel", 19.99),
    ("Linen shirt", "Apparel", 49.0),
    ("Wool socks (3 pairs)", "Accessories", 14.5),
    ("Ceramic mug — 350 ml", "Home", 12.0),
    ("Leather wallet", "Accessories", 59.9),
    ("Running shoes", "Footwear", 89.95),
    ("Rain jacket", "Apparel", 129.0),
    ("Bamboo toothbrush", "Home", 3.49),
]
CURRENCIES = ["EUR", "EUR", "EUR", "USD", "GBP", "PLN", "SEK"]
# How the ~1% dirty events are broken, as a shop's own data breaks them.
DIRTY = ["negative_price", "bad_currency", "no_contact", "zero_quantity", "naive_time", "long_name"]


def _line_items(rng: random.Random, count: int) -> list[dict[str, Any]]:
    items = []
    for _ in range(count):
        title, category, price = rng.choice(PRODUCTS)
        pid = rng.randrange(1, 5000)
        item: dict[str, Any] = {
            "productID": str(pid),
            "productVariantID": f"{pid}-{rng.randrange(1, 9)}",
            "productSKU": f"SKU-{pid:05d}-{rng.choice('SMLX')}",
            "productTitle": title,
            "productVariantTitle": f"{title} - {rng.choice(['Green', 'Navy', 'Sand', 'Black'])}",
            "productVendor": "Audinys",
            "productPrice": price,
            "productQuantity": rng.choice([1, 1, 1, 2, 2, 3]),
            "productURL": f"https://shop.example.lt/products/{pid}",
            "productImageURL": f"https://cdn.example.lt/img/{pid}.jpg",
            "productCategories": [{"id": str(abs(hash(category)) % 1000), "title": category}],
        }
        if rng.random() < 0.2:
            item["productDiscount"] = round(price * 0.1, 2)
        items.append(item)
    return items


def _order_events(rng: random.Random, order_no: int, start: dt.datetime) -> list[dict[str, Any]]:
    names = rng.choices([n for _, n in LIFECYCLES], weights=[w for w, _ in LIFECYCLES])[0]
    items = _line_items(rng, rng.randint(1, 6))
    subtotal = round(sum(float(i["productPrice"]) * int(i["productQuantity"]) for i in items), 2)
    shipping = rng.choice([0.0, 2.99, 4.99])
    discount = round(subtotal * 0.1, 2) if rng.random() < 0.15 else 0.0
    tax = round((subtotal - discount) * 0.21 / 1.21, 2)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    contact: dict[str, Any] = {
        "email": f"customer{rng.randrange(10**6)}@example.{rng.choice(['lt', 'com', 'de'])}",
        "firstName": first,
        "lastName": last,
        "customProperties": {"shopCustomerID": str(rng.randrange(10**6))},
    }
    if rng.random() < 0.4:
        contact["phone"] = f"+3706{rng.randrange(10**7):07d}"
    created = start + dt.timedelta(
        seconds=rng.randrange(0, 365 * 86400), microseconds=rng.randrange(0, 10**6, 1000)
    )
    base: dict[str, Any] = {
        "orderID": str(100000 + order_no),
        "orderNumber": 100000 + order_no,
        "currency": rng.choice(CURRENCIES),
        "totalPrice": round(subtotal - discount + shipping, 2),
        "subTotalPrice": subtotal,
        "totalDiscount": discount,
        "totalTax": tax,
        "shippingPrice": shipping,
        "paymentMethod": rng.choice(["card", "paypal", "bank transfer"]),
        "shippingMethod": rng.choice(["DPD", "Omniva parcel locker", "courier"]),
        "createdAt": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "billingAddress": {
            "address1": f"Gedimino pr. {rng.randint(1, 99)}",
            "city": "Vilnius",
            "zip": f"{rng.randrange(10**5):05d}",
            "countryCode": "LT",
        },
        "lineItems": items,
    }
    if discount:
        base["discounts"] = [{"code": "SPRING10", "amount": discount}]
    if rng.random() < 0.1:
        base["note"] = "Paskambinkite prieš atvežant 📦"
    events = []
    when = created
    for name in names:
        props = dict(base)
        props["paymentStatus"] = "awaitingPayment" if name == "placed order" else "paid"
        props["fulfillmentStatus"] = (
            "fulfilled" if name in ("order fulfilled", "order refunded") else "unfulfilled"
        )
        if name == "order fulfilled":
            props["tracking"] = {"code": f"LT{rng.randrange(10**9)}", "courierTitle": "DPD"}
        elif name == "order canceled":
            props["paymentStatus"] = "voided"
            props["cancelReason"] = "customer request"
        elif name == "order refunded":
            props["paymentStatus"] = "partiallyRefunded"
            refunded = [dict(items[0], productQuantity=1)]
            props["totalRefundedAmount"] = items[0]["productPrice"]
            props["totalRefundedTaxAmount"] = round(float(items[0]["productPrice"]) * 0.21 / 1.21, 2)
            props["refundedLineItems"] = refunded
        if rng.random() < 0.05:
            del props["totalPrice"]  # a warning, not an error
        fraction = when.microsecond // 1000
        event_time = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction:03d}Z" if fraction else "Z")
        events.append(
            {
                "eventName": name,
                "eventID": str(uuid.uuid5(NAMESPACE, f"bench:{name}:{order_no}")),
                "eventTime": event_time,
                "eventVersion": "v2",
                "origin": "api",
                "contact": contact,
                "properties": props,
            }
        )
        when += dt.timedelta(hours=rng.randint(1, 72), seconds=rng.randrange(3600))
    return events


def _make_dirty(rng: random.Random, event: dict[str, Any]) -> dict[str, Any]:
    event = orjson.loads(orjson.dumps(event))
    props: dict[str, Any] = event["properties"]
    kind = rng.choice(DIRTY)
    if kind == "negative_price":
        props["lineItems"][0]["productPrice"] = -5.0
    elif kind == "bad_currency":
        props["currency"] = rng.choice(["eur", "EURO", "€", ""])
    elif kind == "no_contact":
        event["contact"] = {"firstName": "Ona"}
    elif kind == "zero_quantity":
        props["lineItems"][-1]["productQuantity"] = 0
    elif kind == "naive_time":
        event["eventTime"] = str(event["eventTime"]).rstrip("Z")
    else:
        event["contact"]["firstName"] = "Labai ilgas vardas " * 4
    return event


def generate_events(path: Path, count: int, seed: int) -> dict[str, float]:
    """Write ``count`` events to ``path``; returns a few facts about the file."""
    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    written = dirty = items = 0
    order_no = 0
    with path.open("wb") as out:
        while written < count:
            order_no += 1
            for event in _order_events(rng, order_no, start):
                if written >= count:
                    break
                if rng.random() < 0.01:
                    event = _make_dirty(rng, event)
                    dirty += 1
                items += len(event["properties"]["lineItems"])
                out.write(orjson.dumps(event) + b"\n")
                written += 1
    return {"events": written, "dirty": dirty, "orders": order_no, "avg_line_items": items / written}


# -- measuring -----------------------------------------------------------------------------------------


def _pin_to_one_cpu() -> int:
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def _timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, result


def _validate_command() -> list[str]:
    script = Path(sys.executable).with_name("airflow-omnisend")
    return [str(script)] if script.exists() else [sys.executable, "-m", "airflow_omnisend.cli"]


def measure(events_file: Path, work: Path, runs: int) -> dict[str, Any]:
    from airflow_omnisend.events.names import EVENT_NAMES
    from airflow_omnisend.events.schema import registry_reference_validator
    from airflow_omnisend.events.validation import EventValidator

    with events_file.open("rb") as handle:
        n_events = sum(1 for _ in handle)
    results: dict[str, Any] = {"events": n_events, "file_mb": events_file.stat().st_size / 1e6}

    # start-up alone: a one-event file
    one = work / "one.ndjson"
    one.write_bytes(events_file.open("rb").readline())
    startup = min(_timed([*_validate_command(), "validate", str(one)])[0] for _ in range(5))
    results["startup_s"] = startup

    ours = []
    summary_line = ""
    for _ in range(runs):
        elapsed, proc = _timed(
            [
                *_validate_command(),
                "validate",
                str(events_file),
                "--valid",
                str(work / "valid.ndjson"),
                "--rejected",
                str(work / "rejected.ndjson"),
            ]
        )
        if proc.returncode not in (0, 1):
            raise SystemExit(f"airflow-omnisend validate failed: {proc.stderr}")
        summary_line = proc.stdout.strip()
        ours.append(elapsed)
    results["ours_s"] = min(ours)
    results["ours_summary"] = summary_line

    print(f"plain jsonschema on {n_events} events (about a minute)...", file=sys.stderr)
    plain_s, proc = _timed(
        [
            sys.executable,
            str(PLAIN_SCRIPT),
            str(events_file),
            str(work / "plain-valid.ndjson"),
            str(work / "plain-rejected.ndjson"),
        ]
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(f"plain script failed: {proc.stderr}")
    results["plain_s"] = plain_s
    results["plain_summary"] = proc.stdout.strip()

    # the validation step alone, on parsed events
    parsed = [orjson.loads(line) for line in events_file.open("rb")]
    validator = EventValidator()
    check = validator.check
    for event in parsed[:2000]:
        check(event)  # warm up (first failures build the jsonschema validators)
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        for event in parsed:
            check(event)
        best = min(best, time.perf_counter() - started)
    results["step_events_per_s"] = len(parsed) / best

    sample = parsed[:5000]
    by_name = {name: registry_reference_validator(name) for name in EVENT_NAMES}  # as the plain script
    started = time.perf_counter()
    for event in sample:
        validator_ = by_name.get(event.get("eventName"))
        if validator_ is not None:
            list(validator_.iter_errors(event))
    results["plain_step_events_per_s"] = len(sample) / (time.perf_counter() - started)
    return results


# -- reporting -----------------------------------------------------------------------------------------


def render(results: dict[str, Any], facts: dict[str, float], seed: int) -> str:
    n = int(results["events"])
    ours, plain = float(results["ours_s"]), float(results["plain_s"])
    step, plain_step = float(results["step_events_per_s"]), float(results["plain_step_events_per_s"])
    startup_ms = float(results["startup_s"]) * 1000
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def verdict(good: bool) -> str:
        return "met" if good else "**missed**"

    rows = [
        (
            f"Whole process, {n:,} events (start-up, parse, validate, write)",
            f"{ours:.2f} s ({n / ours:,.0f} events/s)",
            f"{plain:.1f} s ({n / plain:,.0f} events/s)",
            f"{plain / ours:.0f}x faster",
            f">= 20x: {verdict(plain / ours >= 20)}",
        ),
        (
            "Validation step alone (`EventValidator.check` on parsed events)",
            f"{step:,.0f} events/s",
            f"{plain_step:,.0f} events/s (first 5,000 events)",
            f"{step / plain_step:.0f}x",
            f">= 100,000 events/s: {verdict(step >= 100_000)}",
        ),
        (
            "Start-up (`validate` on a one-event file, whole process)",
            f"{startup_ms:.0f} ms",
            "",
            "",
            f"well under 1 s: {verdict(startup_ms < 500)}",
        ),
    ]
    lines = [
        "## Validation",
        "",
        f"`benchmarks/bench_validate.py --events {n} --seed {seed}`, {when}, pinned to one CPU.",
        f"Input: {n:,} events of {int(facts['orders']):,} orders ({float(results['file_mb']):.0f} MB of "
        f"NDJSON, {facts['avg_line_items']:.1f} line items per event on average, "
        f"{int(facts['dirty']):,} dirty events). Both sides use the same shipped schema files; the plain "
        "script (`benchmarks/plain_jsonschema_validate.py`) is json + jsonschema `Draft202012Validator`, "
        "one per event name, writing the same two files.",
        "",
        "| Measure | airflow-omnisend validate | plain jsonschema | Ratio | Target |",
        "|---|---|---|---|---|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        f"`airflow-omnisend validate` printed: `{results['ours_summary']}`; the plain script: "
        f"`{results['plain_summary']}`.",
        "",
        "How: each event is screened by the compiled `jsonschema_rs` validator of its eventName; only "
        "the rejected ones go to `jsonschema`, on a `$ref`-inlined copy of the schema and with their valid "
        "line items blanked (the tests hold that to plain jsonschema's errors); lines are parsed with "
        "orjson and valid lines are written as read, not re-serialised.",
        "",
    ]
    return "\n".join(lines)


def machine_header() -> str:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open() as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        "# Benchmarks\n\n"
        f"Machine: `nproc` {NPROC}, {cpu}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}. "
        f"File created {dt.date.today().isoformat()}; each section says when it was measured.\n\n"
    )


def write_section(section: str) -> None:
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else machine_header()
    pattern = re.compile(r"^## Validation\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    BENCHMARKS_MD.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--keep", type=Path, help="keep the generated files in this folder")
    args = parser.parse_args()

    cpu = _pin_to_one_cpu()
    work = Path(tempfile.mkdtemp(prefix="bench-validate-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        events_file = work / f"events-{args.events}.ndjson"
        facts = generate_events(events_file, args.events, args.seed)
        print(f"generated {events_file} on CPU {cpu}: {facts}", file=sys.stderr)
        results = measure(events_file, work, args.runs)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    section = render(results, facts, args.seed)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"wrote the Validation section of {BENCHMARKS_MD}", file=sys.stderr)


if __name__ == "__main__":
    main()
