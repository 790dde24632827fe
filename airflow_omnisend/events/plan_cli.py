"""``airflow-omnisend plan``: what a backfill would send, and how long it takes, before anything is sent.

Two inputs, outside Airflow:

* ``plan EVENTS.ndjson``: one file of Omnisend events (one period);
* ``plan --store ID --from DAY --to DAY [--period P] [--stores FILE] [--sqlite DB]``: the store's own
  source, one store-local period (partition) at a time, as the DAG extracts it - a ``source_path`` file,
  or a SQLite database for a ``source_conn_id`` store (``--sqlite``: Airflow connections are not read
  here). The period is the store's ``period`` unless ``--period`` (``day``, ``week``, ``month``) says
  otherwise; every whole period with a day in ``--from``..``--to`` is planned (``--from``/``--to`` take a
  day, or a key of the period: ``2024-W10``, ``2024-03``).

For each period it validates the events with the DAG's rules and plans the bodies for each API version
profile (its batch size; ``--max-payload-bytes``), then prints events, bodies and requests, and the
minutes they need at ``--rate`` requests per minute (:func:`~.chunk_plan.estimate_requests`: a floor).

Exit codes, as ``validate``: 0 everything would be sent; 1 some events or rows would be rejected or
dead-lettered; 2 the input is unusable (the message names it and the fix). No Airflow import.
"""

from __future__ import annotations

import io
import sqlite3
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from airflow_omnisend.events.chunk_plan import DEFAULT_RATE_PER_MINUTE, BatchLimits, estimate_requests
from airflow_omnisend.events.ndjson_validation import validate_ndjson
from airflow_omnisend.events.partition import (
    PartitionPeriod,
    PartitionWindow,
    parse_partition_day,
    parse_partition_key,
    parse_period,
    period_of_key,
)
from airflow_omnisend.events.planning import plan_batches
from airflow_omnisend.events.validation import EventValidator
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.hooks._profile import PROFILES

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator
    from datetime import date

    from airflow_omnisend.sources.base import OrderSource
    from airflow_omnisend.stores import StoreConfig

#: Omnisend's advised largest request body
DEFAULT_MAX_PAYLOAD_BYTES = 1_000_000
_SPOOL = 16 << 20


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Print what a backfill would send (periods, events, bodies, requests) and its time."
    parser.add_argument("events", metavar="EVENTS.ndjson", nargs="?", help="a file of Omnisend events")
    parser.add_argument("--store", metavar="ID", help="plan this store's own source (with --from/--to)")
    parser.add_argument("--from", dest="from_day", metavar="DAY", help="first store-local day (inclusive)")
    parser.add_argument("--to", dest="to_day", metavar="DAY", help="last store-local day (inclusive)")
    parser.add_argument(
        "--period",
        choices=[p.value for p in PartitionPeriod],
        help="plan by day, ISO week or month (default: the store's period)",
    )
    parser.add_argument("--stores", metavar="FILE", help="the stores file (default: as the DAGs find it)")
    parser.add_argument("--sqlite", metavar="DB", type=Path, help="SQLite file of a source_conn_id store")
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE_PER_MINUTE, help="requests per minute (default 400)"
    )
    parser.add_argument(
        "--max-payload-bytes", type=int, default=DEFAULT_MAX_PAYLOAD_BYTES, help="bytes per body (1 MB)"
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


@dataclass
class PeriodPlan:
    """One period's events and, per API version, its bodies and requests."""

    period: str
    events: int = 0
    valid: int = 0
    rejected: int = 0
    rows_rejected: int = 0
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "events": self.events,
            "valid": self.valid,
            "rejected": self.rejected,
            "rows_rejected": self.rows_rejected,
            "versions": self.versions,
        }


def plan_events(period: str, src: Any, rate: float, max_payload_bytes: int) -> PeriodPlan:
    """Validate the NDJSON events of ``src`` and plan their bodies for every API version profile."""
    result = PeriodPlan(period)
    with tempfile.SpooledTemporaryFile(_SPOOL) as valid:
        summary = validate_ndjson(src, valid, None, EventValidator())  # type: ignore[arg-type]
        result.events, result.valid, result.rejected = summary.events, summary.valid, summary.rejected
        for version, profile in PROFILES.items():
            valid.seek(0)
            limits = BatchLimits(max_items=profile.max_items_per_batch, max_payload_bytes=max_payload_bytes)
            plan = plan_batches(valid, limits, open_shard=None, dead_letters=io.BytesIO())  # type: ignore[arg-type]
            estimate = estimate_requests(plan, rate)
            result.versions[version] = {**estimate.to_dict(), "dead_lettered": plan.dead_lettered}
    return result


def run(args: argparse.Namespace) -> int:
    try:
        _check_args(args)
        periods = list(_periods(args))
    except (OmnisendConfigError, OmnisendInputError, OSError, sqlite3.Error) as exc:
        print(f"airflow-omnisend plan: {_describe(exc)}", file=sys.stderr)
        return 2
    totals = _totals(periods)
    if args.json:
        document = {"periods": [p.to_dict() for p in periods], "totals": totals.to_dict()}
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for period in [*periods, totals] if len(periods) > 1 else periods:
            print(_describe_period(period))
    dead = any(v["dead_lettered"] for v in totals.versions.values())
    return 1 if totals.rejected or totals.rows_rejected or dead else 0


def _check_args(args: argparse.Namespace) -> None:
    if (args.events is None) == (args.store is None):
        raise OmnisendConfigError("give either EVENTS.ndjson or --store ID --from DAY --to DAY, not both")
    if args.store is not None and (args.from_day is None or args.to_day is None):
        raise OmnisendConfigError("--store needs --from DAY and --to DAY (store-local days, inclusive)")
    if args.events is not None and args.period is not None:
        raise OmnisendConfigError(
            "--period plans a store (--store ID); an events file is planned as one period"
        )
    if not args.rate > 0:
        raise OmnisendConfigError(f"--rate must be > 0 requests per minute, got {args.rate!r}")


def _periods(args: argparse.Namespace) -> Iterator[PeriodPlan]:
    if args.events is not None:
        path = Path(args.events)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise OmnisendInputError(f"cannot read the events file {path}: {_describe(exc)}") from exc
        with handle:
            yield plan_events(path.name, handle, args.rate, args.max_payload_bytes)
        return
    yield from _store_periods(args)


def _range_day(value: str, period: PartitionPeriod, what: str) -> date:
    """``--from``/``--to``: a day, or a key of ``period`` (its first day)."""
    if period_of_key(value) is period:
        return parse_partition_key(value, period, what=what)
    return parse_partition_day(value, what=what)


def _store_periods(args: argparse.Namespace) -> Iterator[PeriodPlan]:
    from airflow_omnisend.sources.extract import extract_partition
    from airflow_omnisend.stores import load_stores

    store = load_stores(args.stores).get(args.store)
    period = parse_period(args.period) if args.period is not None else store.period
    first = _range_day(args.from_day, period, "--from")
    last = _range_day(args.to_day, period, "--to")
    if last < first:
        raise OmnisendConfigError(f"--to {last} is before --from {first}; swap them")
    source = _store_source(store, args.sqlite)
    start = period.start_of(first)
    while start <= last:
        window = PartitionWindow.for_period(start, period, store.timezone)
        with tempfile.SpooledTemporaryFile(_SPOOL) as events:
            extracted = extract_partition(source, store.store_id, window, events)
            events.seek(0)
            planned = plan_events(window.label, events, args.rate, args.max_payload_bytes)
        planned.rows_rejected = extracted.rows_rejected
        yield planned
        start = period.after(start)


def _store_source(store: StoreConfig, sqlite_path: Path | None) -> OrderSource:
    """The store's source as the extract step builds it, for what can be read without Airflow."""
    from airflow_omnisend.sources.files import NdjsonEventSource, OrderCsvSource, OrderNdjsonSource
    from airflow_omnisend.sources.sql import DbApiOrderSource, SqlQueries

    if store.source_path is not None:
        path = Path(store.source_path)
        if not path.is_file():
            raise OmnisendConfigError(f"{store.store_id}: source_path {path} is not a local file")
        if path.suffix.lower() == ".csv":
            return OrderCsvSource(path)
        return NdjsonEventSource(path) if _holds_events(path) else OrderNdjsonSource(path)
    if sqlite_path is None:
        raise OmnisendConfigError(
            f"{store.store_id} reads Airflow connection {store.source_conn_id!r}, which is not read here: "
            "pass --sqlite PATH (its SQLite file), or plan an exported EVENTS.ndjson"
        )
    if not sqlite_path.is_file():
        raise OmnisendConfigError(f"--sqlite {sqlite_path} is not a file")
    queries = SqlQueries(**store.queries_dict) if store.queries else None
    return DbApiOrderSource(lambda: sqlite3.connect(sqlite_path), dialect="sqlite", queries=queries)


def _holds_events(path: Path) -> bool:
    """An NDJSON file whose first object has ``eventName`` holds events, else orders."""
    with path.open("rb") as handle:
        for raw in handle:
            line = raw.strip().removeprefix(b"\xef\xbb\xbf")
            if line:
                try:
                    first = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return False  # the orders source names the broken line
                return isinstance(first, dict) and "eventName" in first
    return False


def _totals(periods: list[PeriodPlan]) -> PeriodPlan:
    totals = PeriodPlan("total")
    for period in periods:
        totals.events += period.events
        totals.valid += period.valid
        totals.rejected += period.rejected
        totals.rows_rejected += period.rows_rejected
        for version, figures in period.versions.items():
            into = totals.versions.setdefault(version, dict.fromkeys(figures, 0))
            for key, value in figures.items():
                into[key] = value if key == "rate_per_minute" else into[key] + value
    for figures in totals.versions.values():
        figures["minutes"] = round(figures["total_requests"] / figures["rate_per_minute"], 3)
    return totals


def _describe_period(period: PeriodPlan) -> str:
    head = f"{period.period}: {period.events} events, {period.valid} valid, {period.rejected} rejected"
    if period.rows_rejected:
        head += f", {period.rows_rejected} source rows rejected"
    lines = [head]
    for version, v in period.versions.items():
        lines.append(
            f"  API {version}: {v['bodies']} bodies, {v['total_requests']} requests "
            f"({v['submit_requests']} POST /batches + {v['poll_requests']} polls), about "
            f"{v['minutes']:.1f} min at {v['rate_per_minute']:g}/min"
            + (f", {v['dead_lettered']} dead-lettered (too big)" if v["dead_lettered"] else "")
        )
    return "\n".join(lines)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f" ({exc.filename})" if exc.filename else "")
    return str(exc)
