"""``airflow-omnisend validate EVENTS.ndjson [--valid OUT] [--rejected OUT] [--json]``.

Checks a file of Omnisend order events outside Airflow (a user's own export, or a partition's
``events.ndjson``) with the rules a DAG run applies, and says what would be rejected and why: the
schemas and eventTime rules (every eventTime form of Omnisend's 2026-03-15 events contract; ``--valid``
holds each valid event with its canonical UTC eventTime), a key repeated inside one object, eventID
collisions (one eventID and eventTime on two different events: the first is kept), the body limit of
the default API profile
(``--max-payload-bytes``; a run plans with its connection's limit and dead-letters a bigger event) and
the DAG's default minimum event age (``--min-age-seconds``; a run's safety check blocks a partition
with a younger event). Not checked without a connection: the store's automations (the DAG's safety
check) and a connection's own ``max_payload_bytes`` extra.

Exit codes: 0 every event is valid; 1 some are rejected (details in ``--rejected``); 2 the input is
unusable (cannot be read, or a line is not a JSON object: the message names the line). Output files are
written next to their final name and renamed at the end, so a failed run never leaves a half file that
looks finished. An output that is a symbolic link is written through: the file it points to is replaced,
the link stays. An output that exists but is not a regular file (a device, a FIFO, a folder) is refused
before anything is read (exit 2): a rename would replace the device node itself. No Airflow import: the
command starts in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

import orjson

from airflow_omnisend.events.chunk_plan import BatchLimits
from airflow_omnisend.events.lines import MAX_LINE_BYTES, check_line_cap
from airflow_omnisend.events.ndjson_validation import validate_ndjson
from airflow_omnisend.events.validation import DEFAULT_MIN_EVENT_AGE, EventValidator
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.hooks._profile import DEFAULT_MAX_PAYLOAD_BYTES

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

_BUFFER = 1 << 20
_MAX_AGE_SECONDS: Final = 366 * 86400


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Validate an NDJSON file of Omnisend order events (one JSON object per line)."
    parser.add_argument("events", metavar="EVENTS.ndjson", help="events to check; '-' reads standard input")
    parser.add_argument("--valid", metavar="OUT", type=Path, help="write the valid events here (NDJSON)")
    parser.add_argument(
        "--rejected",
        metavar="OUT",
        type=Path,
        help='write the rejected events here, one {"line", "event", "errors"} object per line',
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON instead of one line of text"
    )
    parser.add_argument(
        "--max-payload-bytes",
        type=int,
        default=DEFAULT_MAX_PAYLOAD_BYTES,
        help=f"reject an event too big for a request body of this size (default {DEFAULT_MAX_PAYLOAD_BYTES}, "
        "the API profile's; set it to your connection's max_payload_bytes extra)",
    )
    parser.add_argument(
        "--min-age-seconds",
        type=float,
        default=DEFAULT_MIN_EVENT_AGE.total_seconds(),
        help="reject an event younger than this (default: the DAG's min_event_age, "
        f"{DEFAULT_MIN_EVENT_AGE.total_seconds():g} s); 0 checks only that it is not in the future",
    )
    parser.add_argument(
        "--max-line-bytes",
        type=int,
        default=MAX_LINE_BYTES,
        help=f"refuse the file at a line longer than this (default {MAX_LINE_BYTES})",
    )
    parser.epilog = (
        "Not checked without a connection: the store's automations (the DAG's safety check) and the "
        "connection's own max_payload_bytes extra (pass it as --max-payload-bytes)."
    )


def run(args: argparse.Namespace) -> int:
    outputs = {"--valid": args.valid, "--rejected": args.rejected}
    try:
        max_event_bytes, min_age = _limits(args)
    except OmnisendConfigError as exc:
        print(f"airflow-omnisend validate: {exc}", file=sys.stderr)
        return 2
    clash = _clashing_paths(args.events, outputs) or _unwritable_outputs(outputs)
    if clash:
        print(f"airflow-omnisend validate: {clash}", file=sys.stderr)
        return 2
    try:
        with contextlib.ExitStack() as stack:
            src = _open_input(args.events, stack)
            files: dict[str, BinaryIO | None] = {}
            for option, path in outputs.items():
                files[option] = None if path is None else stack.enter_context(_open_output(option, path))
            summary = validate_ndjson(
                src,
                files["--valid"],
                files["--rejected"],
                EventValidator(min_age=min_age),
                max_line_bytes=args.max_line_bytes,
                max_event_bytes=max_event_bytes,
            )
        for path in outputs.values():
            if path is not None:
                os.replace(_partial(path), _target(path))
    except (OmnisendInputError, OSError) as exc:
        for path in outputs.values():
            if path is not None:
                with contextlib.suppress(OSError):
                    _partial(path).unlink()
        print(f"airflow-omnisend validate: {args.events}: {_describe(exc)}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(summary.one_line())
    return 1 if summary.rejected else 0


def _limits(args: argparse.Namespace) -> tuple[int, timedelta]:
    """The largest event in bytes and the minimum event age the options ask for."""
    check_line_cap(args.max_line_bytes)
    limits = BatchLimits(max_items=1, max_payload_bytes=args.max_payload_bytes)
    age = args.min_age_seconds
    if not math.isfinite(age) or not 0 <= age <= _MAX_AGE_SECONDS:
        raise OmnisendConfigError(
            f"--min-age-seconds must be a number of seconds from 0 to {_MAX_AGE_SECONDS}, got {age:g}"
        )
    return limits.max_event_bytes, timedelta(seconds=age)


def _clashing_paths(events: str, outputs: dict[str, Path | None]) -> str | None:
    """Two outputs on one file, or an output on the input, would destroy data: refuse before reading."""
    seen: dict[Path, str] = {} if events == "-" else {Path(events).resolve(): "EVENTS.ndjson"}
    for option, path in outputs.items():
        if path is None:
            continue
        where = path.resolve()
        if where in seen:
            return f"{option} {path} is the same file as {seen[where]}: give each its own path"
        seen[where] = option
    return None


def _unwritable_outputs(outputs: dict[str, Path | None]) -> str | None:
    """An output that exists and is not a regular file (after following links) cannot be replaced."""
    for option, path in outputs.items():
        if path is None:
            continue
        target = _target(path)
        try:
            mode = target.stat().st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"cannot write {option} {path}: {_describe(exc)}"
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, FIFO or socket)"
            shown = path if target == path else f"{path} (-> {target})"
            return f"{option} {shown} is {kind}: give the path of a regular file to write"
    return None


def _target(path: Path) -> Path:
    """Where ``path`` really is: a symbolic link is followed, so writing replaces the file it points to."""
    return path.resolve() if path.is_symlink() else path


def _open_input(name: str, stack: contextlib.ExitStack) -> BinaryIO:
    if name == "-":
        return sys.stdin.buffer
    try:
        return stack.enter_context(open(name, "rb", buffering=_BUFFER))
    except OSError as exc:
        raise OmnisendInputError(f"cannot read the events file: {_describe(exc)}") from exc


@contextlib.contextmanager
def _open_output(option: str, path: Path) -> Iterator[BinaryIO]:
    try:
        handle = open(_partial(path), "wb", buffering=_BUFFER)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise OmnisendInputError(f"cannot write {option} {path}: {_describe(exc)}") from exc
    with handle:
        yield handle


def _partial(path: Path) -> Path:
    target = _target(path)
    return target.with_name(target.name + ".partial")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f" ({exc.filename})" if exc.filename else "")
    return str(exc)
