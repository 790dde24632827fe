"""``airflow-omnisend emulator``: run the Omnisend emulator as a process until SIGTERM/SIGINT.

Prints exactly one line to stdout once it accepts connections, ``listening on http://HOST:PORT``, so a
script (or a test) that started it with ``--port 0`` can read the port back. A running emulator is
reconfigured through its control API: ``POST /__emulator__/faults``, ``POST /__emulator__/automations``,
``POST /__emulator__/keys`` (``{"revoke": [...], "grant": [...]}``), ``GET /__emulator__/stats``,
``GET /__emulator__/events``, ``POST /__emulator__/wait-idle``. Started with ``--record PATH``, a
restarted emulator carries on from the same record.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from airflow_omnisend.testing.emulator.config import (
    DEFAULT_API_KEY,
    FAULT_TARGETS,
    RATE_LIMIT_SIGNALS,
    ApiKeyGrant,
    EmulatorConfig,
    FaultConfig,
)

API_KEY_ENV = "AIRFLOW_OMNISEND_EMULATOR_API_KEY"


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _window(text: str) -> tuple[str, str]:
    start, sep, end = text.partition(",")
    if not sep:
        raise argparse.ArgumentTypeError("give FROM,TO as two RFC 3339 times, e.g. 2024-03-10T00:00:00Z,...")
    return start.strip(), end.strip()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the local Omnisend emulator until SIGTERM/SIGINT; prints 'listening on <url>' once it serves."
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--port", type=int, default=8899, help="port to bind; 0 picks a free one (default: %(default)s)")
    add(
        "--api-key",
        default=None,
        help=f"the full-permission key (default: ${API_KEY_ENV} or {DEFAULT_API_KEY!r})",
    )
    add(
        "--extra-key",
        action="append",
        default=[],
        metavar="KEY[:PERM,...]",
        help="a key with only these permissions, e.g. 'k2:events.write,events.read' (repeatable)",
    )
    add(
        "--db",
        "--record",
        dest="db",
        default=None,
        metavar="PATH",
        help="SQLite record to keep and reuse: a restarted emulator serves (and finishes) the batches, "
        "events and key changes of the last run; default: a temp file",
    )
    add("--automations", default=None, metavar="FILE", help="JSON list of 2026 Automation objects to serve")
    add("--rate-limit", type=int, default=400, help="requests per window and key (default: %(default)s)")
    add("--rate-limit-window", type=float, default=60.0, help="window seconds (default: %(default)s)")
    add(
        "--rate-limit-signals",
        type=_csv,
        default=sorted(RATE_LIMIT_SIGNALS),
        help=f"which of {','.join(sorted(RATE_LIMIT_SIGNALS))} to send (default: all)",
    )
    add("--fractional-seconds", action="store_true", help="send retry/reset times with millisecond fractions")
    add(
        "--processing-delay",
        type=float,
        default=0.05,
        help="seconds until a batch ends (default: %(default)s)",
    )
    add("--max-payload-bytes", type=int, default=1_000_000, help="body size limit (default: %(default)s)")
    add("--max-items-v5", type=int, default=1000, help="items per batch on /v5 (default: %(default)s)")
    add("--max-items-2026", type=int, default=100, help="items per batch on /api (default: %(default)s)")
    add(
        "--stop-window",
        type=int,
        default=20,
        help="items looked at for stopping a batch (default: %(default)s)",
    )
    add(
        "--stop-error-ratio",
        type=float,
        default=0.5,
        help="failed share that stops it (default: %(default)s)",
    )
    faults = parser.add_argument_group("faults (seeded, deterministic; see FaultConfig)")
    fadd = faults.add_argument
    fadd("--fault-seed", type=int, default=0)
    fadd(
        "--fault-targets",
        type=_csv,
        default=["create_batch"],
        help=f"operations faults hit: {','.join(sorted(FAULT_TARGETS))} or '*' (default: create_batch)",
    )
    fadd("--fault-5xx-rate", type=float, default=0.0, help="share answered 503/500 before acceptance")
    fadd("--fault-429-every", type=int, default=0, metavar="N", help="every Nth request starts a 429 burst")
    fadd("--fault-429-length", type=int, default=1, metavar="K", help="429s per burst")
    fadd("--fault-429-retry-after", type=float, default=1.0, metavar="S", help="seconds a burst 429 names")
    fadd("--fault-slow-rate", type=float, default=0.0, help="share of responses held back")
    fadd("--fault-slow-seconds", type=float, default=0.5, help="how long a slow response is held back")
    fadd(
        "--fault-drop-rate",
        type=float,
        default=0.0,
        help="share of accepted batches whose response is dropped",
    )
    fadd("--fault-stop-rate", type=float, default=0.0, help="share of accepted batches that stop")
    fadd("--fault-stop-after-items", type=int, default=None, help="items processed before such a stop")
    fadd(
        "--fault-item-5xx-rate",
        type=float,
        default=0.0,
        help="share of items failing with a 503 item response",
    )
    fadd(
        "--fault-refuse-window",
        type=_window,
        action="append",
        default=[],
        metavar="FROM,TO",
        help="refuse (503) batches with an eventTime in [FROM, TO) (repeatable)",
    )
    add("--log-level", default="WARNING", help="logging level on stderr (default: %(default)s)")


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    """The EmulatorConfig the parsed arguments describe (ValueError with the field's name if invalid)."""
    faults = FaultConfig(
        seed=args.fault_seed,
        targets=frozenset(args.fault_targets),
        error_5xx_rate=args.fault_5xx_rate,
        burst_429_every=args.fault_429_every,
        burst_429_length=args.fault_429_length,
        burst_429_retry_after=args.fault_429_retry_after,
        slow_rate=args.fault_slow_rate,
        slow_seconds=args.fault_slow_seconds,
        drop_response_rate=args.fault_drop_rate,
        stop_batch_rate=args.fault_stop_rate,
        stop_after_items=args.fault_stop_after_items,
        item_5xx_rate=args.fault_item_5xx_rate,
        refuse_event_windows=tuple(args.fault_refuse_window),
    )
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or DEFAULT_API_KEY,
        extra_keys=tuple(ApiKeyGrant.parse(spec) for spec in args.extra_key),
        db_path=args.db,
        automations_file=args.automations,
        rate_limit=args.rate_limit,
        rate_limit_window=args.rate_limit_window,
        rate_limit_signals=frozenset(args.rate_limit_signals),
        fractional_seconds=args.fractional_seconds,
        processing_delay=args.processing_delay,
        max_payload_bytes=args.max_payload_bytes,
        max_items_v5=args.max_items_v5,
        max_items_2026=args.max_items_2026,
        stop_window=args.stop_window,
        stop_error_ratio=args.stop_error_ratio,
        faults=faults,
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=str(args.log_level).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = build_config(args)
    except ValueError as exc:
        print(f"airflow-omnisend emulator: {exc}", file=sys.stderr)
        return 2
    from airflow_omnisend.testing.emulator.server import OmnisendEmulator

    emulator = OmnisendEmulator(config)
    try:
        emulator.start()
    except (OSError, ValueError) as exc:
        print(f"airflow-omnisend emulator: cannot start: {exc}", file=sys.stderr)
        emulator.stop()
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        print(f"listening on {emulator.base_url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emulator.stop()
    return 0
