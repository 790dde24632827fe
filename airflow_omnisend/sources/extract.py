"""The extract step: one partition of one store -> ``events.ndjson`` (+ ``rows_rejected.ndjson``).

This is what the extract operator calls. It streams: events are serialised (orjson, one compact object per
line) as the source yields them, so memory does not grow with the partition.

Reporting rows that could not become events: each :class:`RowRejection` is written as one JSON line to
``rows_rejected_out`` (when given) and counted in :attr:`ExtractSummary.rows_rejected` /
``rows_rejected_by_code``, with a few samples kept in the summary. The caller puts the summary in the
task's manifest, and the run's report lists these rows next to the validator's rejections: they are source
rows, not events, so they are outside the "every extracted event is accepted, rejected or dead-lettered"
count, but they are never silent. Rows with no date at all belong to no partition; :func:`sweep_unplaceable`
finds them once per backfill.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

import orjson

from airflow_omnisend.events.ids import check_store_id
from airflow_omnisend.progress import ProgressLog

if TYPE_CHECKING:
    from airflow_omnisend.events.partition import PartitionWindow
    from airflow_omnisend.sources.base import OrderSource, RowRejection

_WRITE_EVERY = 512
_SAMPLES = 20


@dataclass
class ExtractSummary:
    """What one extraction produced; small enough for XCom (:meth:`to_dict`)."""

    store_id: str
    day: str
    timezone: str
    start_utc: str
    end_utc: str
    events: int = 0
    by_event_name: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    rows_rejected: int = 0
    rows_rejected_by_code: dict[str, int] = field(default_factory=dict)
    rows_rejected_samples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "day": self.day,
            "timezone": self.timezone,
            "start_utc": self.start_utc,
            "end_utc": self.end_utc,
            "events": self.events,
            "by_event_name": dict(sorted(self.by_event_name.items())),
            "bytes_written": self.bytes_written,
            "rows_rejected": self.rows_rejected,
            "rows_rejected_by_code": dict(sorted(self.rows_rejected_by_code.items())),
            "rows_rejected_samples": list(self.rows_rejected_samples),
            "seconds": round(self.seconds, 3),
        }


class RejectedRowWriter:
    """Counts rejected rows, keeps a few samples, and writes each as a JSON line when given a file."""

    def __init__(self, out: IO[bytes] | None = None) -> None:
        self.out = out
        self.count = 0
        self.by_code: Counter[str] = Counter()
        self.samples: list[dict[str, Any]] = []

    def __call__(self, rejection: RowRejection) -> None:
        record = rejection.to_dict()
        self.count += 1
        self.by_code[rejection.code] += 1
        if len(self.samples) < _SAMPLES:
            self.samples.append(record)
        if self.out is not None:
            self.out.write(
                orjson.dumps(json_safe(record), default=json_default, option=orjson.OPT_APPEND_NEWLINE)
            )


def json_default(value: Any) -> Any:
    """orjson fallback for values a custom query may pass through into a text field (the validator then
    judges them): ``Decimal`` as its digits, bytes as text, anything else as ``str()``."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def json_safe(value: Any) -> Any:
    """``value`` with integers beyond 64 bits (which orjson refuses) as text; the rest unchanged."""
    if type(value) is dict:
        return {k: json_safe(v) for k, v in value.items()}
    if type(value) is list:
        return [json_safe(v) for v in value]
    if type(value) is int and not -(2**63) <= value < 2**64:
        return str(value)
    return value


def extract_partition(
    source: OrderSource,
    store_id: str,
    window: PartitionWindow,
    out: IO[bytes],
    *,
    rows_rejected_out: IO[bytes] | None = None,
) -> ExtractSummary:
    """Write the events of ``window`` from ``source`` to ``out`` as NDJSON; return what was written.

    :param out: binary file object for the events (one compact JSON object per line).
    :param rows_rejected_out: binary file object for rows that could not become events (see the module
        docstring); without it they are only counted and sampled in the summary.
    """
    check_store_id(store_id)
    started = time.perf_counter()
    rejects = RejectedRowWriter(rows_rejected_out)
    counts: Counter[str] = Counter()
    dumps = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE
    written = 0
    buffer: list[bytes] = []
    progress = ProgressLog(f"extract {store_id} {window.label}", unit="events")
    for event in source.iter_events(store_id, window, rejects):
        try:
            buffer.append(dumps(event, default=json_default, option=option))
        except TypeError:  # an integer beyond 64 bits passed through from a row
            buffer.append(dumps(json_safe(event), default=json_default, option=option))
        counts[event["eventName"]] += 1
        if len(buffer) >= _WRITE_EVERY:
            chunk = b"".join(buffer)
            out.write(chunk)
            written += len(chunk)
            buffer.clear()
            progress.update(counts.total())
    if buffer:
        chunk = b"".join(buffer)
        out.write(chunk)
        written += len(chunk)
    return ExtractSummary(
        store_id=store_id,
        day=window.label,
        timezone=window.timezone,
        start_utc=window.start_utc.isoformat(),
        end_utc=window.end_utc.isoformat(),
        events=sum(counts.values()),
        by_event_name={str(k): v for k, v in counts.items()},
        bytes_written=written,
        rows_rejected=rejects.count,
        rows_rejected_by_code=dict(rejects.by_code),
        rows_rejected_samples=rejects.samples,
        seconds=time.perf_counter() - started,
    )


def sweep_unplaceable(source: OrderSource, rows_rejected_out: IO[bytes] | None = None) -> RejectedRowWriter:
    """Store-wide: report rows whose event time has no date (so no partition reports them). Once per run."""
    rejects = RejectedRowWriter(rows_rejected_out)
    source.find_unplaceable(rejects)
    return rejects
