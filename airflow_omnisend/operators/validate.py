"""OmnisendValidateEventsOperator: a partition's events -> valid + rejected (with reasons) + a summary.

Reads ``events.ndjson`` of the partition (or any NDJSON file given as ``events_path``: the import-file
DAG validates a user's file into the same layout), checks every event against the shipped schemas and
the eventTime rules (:class:`~airflow_omnisend.events.validation.EventValidator`), and writes:

* ``valid.ndjson`` - the events that may be sent, as read but for an eventTime in another accepted form,
  which is rewritten to its canonical UTC string (the plan step's input);
* ``rejected.ndjson`` - ``{"line", "event", "errors": [{"path", "message", "code"}]}`` per rejected event;
* ``validation.json`` - the counts (``ValidationSummary.to_dict()`` plus ``warned``, the first and last
  eventTime of the valid events, where the events came from, their sha256 and the seconds taken).

A few rejected events are normal in a real shop (a typo in an email, a deleted product); many mean the
source or the mapping is wrong, and sending the rest would hide it. So the task fails - at once, without
retrying, since a retry rejects the same events - when ``rejected / events`` exceeds ``max_reject_ratio``,
naming the top reasons and the rejected file. The files are written first, so they can be read.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from airflow.sdk import ObjectStoragePath

from airflow_omnisend.events.ndjson_validation import ValidationSummary, validate_ndjson
from airflow_omnisend.events.validation import EventValidator
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.operators._failures import InputFailure, RejectRatioFailure, input_failure
from airflow_omnisend.operators.base import OmnisendPartitionBaseOperator
from airflow_omnisend.staging import utc_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_omnisend.staging import PartitionStaging

__all__ = ["OmnisendValidateEventsOperator"]

#: reasons named in the failure message and the log
TOP_REASONS = 5


class _HashingReader:
    """Reads the lines of ``src`` and hashes them (the sha256 of the file that was validated)."""

    def __init__(self, src: IO[bytes]) -> None:
        self._readline = src.readline
        self.sha256 = hashlib.sha256()

    def readline(self, size: int = -1) -> bytes:
        line = self._readline(size)
        self.sha256.update(line)
        return line


def parse_ratio(value: object, owner: str) -> float:
    """``max_reject_ratio`` as a float in [0, 1] (templated values arrive as text)."""
    ratio: object = value
    if isinstance(value, str):
        try:
            ratio = float(value.strip())
        except ValueError:
            ratio = None
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0:
        raise OmnisendConfigError(
            f"{owner}: max_reject_ratio must be a share between 0 and 1 (0.01 = 1%), got {value!r}"
        )
    return float(ratio)


def top_reasons(summary: ValidationSummary, limit: int = TOP_REASONS) -> str:
    """``negative_money 12, missing_field 3`` (most frequent first)."""
    ranked = sorted(summary.rejects_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return ", ".join(f"{code} {count}" for code, count in ranked)


class OmnisendValidateEventsOperator(OmnisendPartitionBaseOperator):
    """Validate a partition's events into ``valid.ndjson``, ``rejected.ndjson`` and ``validation.json``.

    ``store_id``, ``partition``, ``staging``: see :class:`OmnisendPartitionBaseOperator`.

    :param max_reject_ratio: the largest share of rejected events (0-1) that still lets the partition
        go on; above it the task fails without retrying (:class:`RejectRatioFailure`, an
        ``OmnisendRejectRatioError``). ``0`` tolerates no rejected event, ``1`` any number. Templated.
    :param events_path: validate this NDJSON file (a path, ``file://`` or fsspec URL, or an
        ``ObjectStoragePath``) instead of the partition's ``events.ndjson``; the outputs still go to
        the partition; blank or ``"None"`` (a missing param, rendered) means the partition's file.
        Templated.
    :param extracted: the extract task's manifest (``extract.output``): its ``events`` file is the
        partition's events (unless ``events_path`` is given), and its folder the partition's. Templated.

    Returns (XCom) a staging manifest: ``{"root", "store_id", "day", "files": {"valid", "rejected",
    "validation"}, "counts": {"events", "valid", "rejected", "warned"}, "hashes": {"events": <sha256 of
    the validated file>}}``.
    """

    template_fields: Sequence[str] = (
        *OmnisendPartitionBaseOperator.template_fields,
        "max_reject_ratio",
        "events_path",
        "extracted",
    )
    ui_color = "#fff4d6"

    def __init__(
        self,
        *,
        max_reject_ratio: float | str = 0.01,
        events_path: str | ObjectStoragePath | None = None,
        extracted: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_reject_ratio = max_reject_ratio
        self.events_path = events_path
        self.extracted = extracted
        if not (isinstance(max_reject_ratio, str) and "{{" in max_reject_ratio):
            parse_ratio(max_reject_ratio, type(self).__name__)

    @contextlib.contextmanager
    def _open_events(self, partition: PartitionStaging) -> Iterator[tuple[BinaryIO, str]]:
        """The events to validate, and how validation.json names them (relative path or URL)."""
        if self.events_path is None or (
            isinstance(self.events_path, str) and self.events_path.strip() in ("", "None")
        ):
            events = self.upstream_file(partition, self.extracted, "events")
            if not events.exists():
                raise InputFailure(
                    f"{events} does not exist; the extract step writes it - run it for "
                    f"{partition.store_id} {partition.day} first, or pass events_path"
                )
            with partition.local_copy(events) as local, open(local, "rb") as src:
                yield src, partition.relative(events)
            return
        try:
            path = (
                self.events_path
                if isinstance(self.events_path, ObjectStoragePath)
                else ObjectStoragePath(self.events_path.strip())
            )
        except ValueError as exc:  # a URL scheme no fsspec filesystem serves
            raise input_failure(f"events_path {self.events_path!r}", exc) from exc
        try:
            handle = path.fs.open(path.path, "rb")
        except (OSError, ValueError) as exc:
            raise input_failure(f"events_path {path}", exc) from exc
        with handle as src:
            yield cast("BinaryIO", src), str(path)

    def execute(self, context: Context) -> dict[str, Any]:
        owner = type(self).__name__
        max_ratio = parse_ratio(self.max_reject_ratio, owner)
        partition = self.partition_staging(self.extracted)
        started = time.perf_counter()
        validator = EventValidator()
        with self._open_events(partition) as (src, source):
            reader = _HashingReader(src)
            with (
                partition.open_write(partition.valid) as valid_out,
                partition.open_write(partition.rejected) as rejected_out,
            ):
                try:
                    summary = validate_ndjson(cast("BinaryIO", reader), valid_out, rejected_out, validator)
                except (OmnisendInputError, IsADirectoryError) as exc:
                    raise input_failure(f"events {source}", exc) from exc
        digest = reader.sha256.hexdigest()
        seconds = time.perf_counter() - started
        ratio = summary.rejected / summary.events if summary.events else 0.0
        partition.write_json(
            "validation",
            {
                **summary.to_dict(),
                **summary.valid_event_stats(),
                "reject_ratio": round(ratio, 6),
                "max_reject_ratio": max_ratio,
                "source": source,
                "events_sha256": digest,
                "validated_at": utc_timestamp(validator.now),
                "seconds": round(seconds, 3),
            },
        )
        self.log.info(
            "%s %s: %s (%d valid events with warnings) in %.2fs", partition.store_id, partition.day,
            summary.one_line(TOP_REASONS), summary.warned, seconds,
        )  # fmt: skip
        if summary.warnings_by_code:
            self.log.info(
                "Warnings (events are still sent): %s",
                ", ".join(f"{code} {n}" for code, n in summary.warnings_by_code.items()),
            )
        if summary.rejected:
            self.log.warning(
                "%d rejected event(s), with reasons, in %s", summary.rejected, partition.rejected
            )
        if ratio > max_ratio:
            raise RejectRatioFailure(
                f"{partition.store_id} {partition.day}: {summary.rejected} of {summary.events} events "
                f"({ratio:.2%}) were rejected, more than max_reject_ratio={max_ratio:g} allows. Top "
                f"reasons: {top_reasons(summary)}. The rejected events and their errors are in "
                f"{partition.rejected}. Fix the source rows (or the mapping), then rerun the partition; "
                "or raise max_reject_ratio if these events should be left out"
            )
        manifest = partition.manifest(
            files={"valid": "valid", "rejected": "rejected", "validation": "validation"},
            counts={
                "events": summary.events,
                "valid": summary.valid,
                "rejected": summary.rejected,
                "warned": summary.warned,
            },
            hashes={"events": digest},
        )
        return manifest.to_dict()
