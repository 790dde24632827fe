"""Baseline for bench_validate.py: validate NDJSON events the plain way, with json and jsonschema only.

    python benchmarks/plain_jsonschema_validate.py EVENTS.ndjson VALID_OUT REJECTED_OUT

What a careful engineer writes first: the same shipped schema files and registry, one
``Draft202012Validator`` per event name built once, every event fully validated by jsonschema, valid
events re-serialised to one file and rejected ones (with path + message) to the other. Exit 1 when any
event is rejected.
"""

from __future__ import annotations

import json
import sys
from importlib import resources

import referencing
from jsonschema import Draft202012Validator
from referencing.jsonschema import DRAFT202012

FILES = {
    "placed order": "placed-order.json",
    "paid for order": "paid-for-order.json",
    "order fulfilled": "order-fulfilled.json",
    "order canceled": "order-canceled.json",
    "order refunded": "order-refunded.json",
}


def main(src: str, valid_path: str, rejected_path: str) -> int:
    folder = resources.files("airflow_omnisend.events") / "schemas"
    docs = {name: json.loads((folder / name).read_text()) for name in ["defs.json", *FILES.values()]}
    registry = referencing.Registry().with_resources(
        (doc["$id"], DRAFT202012.create_resource(doc)) for doc in docs.values()
    )
    validators = {name: Draft202012Validator(docs[f], registry=registry) for name, f in FILES.items()}
    valid = rejected = 0
    with open(src, encoding="utf-8") as lines, open(valid_path, "w") as ok, open(rejected_path, "w") as bad:
        for line in lines:
            if not line.strip():
                continue
            event = json.loads(line)
            validator = validators.get(event.get("eventName"))
            if validator is None:
                errors = [{"path": "eventName", "message": "unknown eventName"}]
            else:
                errors = [
                    {"path": ".".join(map(str, e.absolute_path)) or "$", "message": e.message}
                    for e in validator.iter_errors(event)
                ]
            if errors:
                rejected += 1
                bad.write(json.dumps({"event": event, "errors": errors}, ensure_ascii=False) + "\n")
            else:
                valid += 1
                ok.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{valid + rejected} events: {valid} valid, {rejected} rejected")
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
