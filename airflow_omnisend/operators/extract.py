"""OmnisendExtractOrdersOperator: one store-local day of a shop's orders -> ``events.ndjson`` in staging.

The first step of a partition. It reads the orders of one store-local calendar day from a SQL database
(any Airflow SQL connection: SQLite, PostgreSQL, ...) or from a file export, maps them to Omnisend order
events (deterministic eventIDs, the real eventTime), and writes into the partition's staging folder:

* ``events.ndjson`` - one event per line, the input of the validate step;
* ``rows_rejected.ndjson`` - source rows that could not become an event at all (a time without a date);
* ``extract.json`` - the extraction summary (counts by event name, rejected rows by reason, sha256 of
  the events file), read by the report.

It refuses a day that has not ended in the store's timezone: its orders are not all there yet, and an
event sent now would not be historic (Omnisend de-duplicates only historic events).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import orjson
from airflow.sdk import ObjectStoragePath

from airflow_omnisend.events.lines import capped_lines
from airflow_omnisend.events.partition import (
    PartitionWindow,
    load_timezone,
)
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendError, OmnisendInputError
from airflow_omnisend.faultpoints import faultpoint
from airflow_omnisend.operators._failures import input_failure
from airflow_omnisend.operators.base import OmnisendPartitionBaseOperator
from airflow_omnisend.sources import (
    NdjsonEventSource,
    OrderCsvSource,
    OrderNdjsonSource,
    OrderSource,
    SqlOrderSource,
    SqlQueries,
    extract_partition,
    sweep_unplaceable,
)
from airflow_omnisend.sources.sql_queries import check_paramstyle
from airflow_omnisend.staging import is_local, utc_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow.sdk import Context

    from airflow_omnisend.lineage import Lineage

__all__ = ["CSV_TABLES", "SOURCE_FORMATS", "OmnisendExtractOrdersOperator"]

#: ``source_format`` values: ready Omnisend events, one order object per line, CSV exports of the tables
SOURCE_FORMATS = ("events_ndjson", "orders_ndjson", "orders_csv")
#: file names looked for in a CSV folder (``orders.csv`` is required, the others optional)
CSV_TABLES = ("orders.csv", "order_lines.csv", "refunds.csv", "refund_lines.csv")
_NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".json")
#: what reading a file source raises when the file itself is wrong (ValueError: an unknown URL scheme)
_INPUT_ERRORS = (
    OmnisendError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    ValueError,
)


class _HashingWriter:
    """Passes bytes on to ``out`` and hashes them (the sha256 of the events file, for the manifest)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        written = self._out.write(data)
        faultpoint("extract.mid_write")
        return written


def _is_templated(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


def _given(value: str | None) -> str | None:
    """``value`` stripped, or ``None`` when unset: ``None``, blank, or the text ``"None"`` (what
    ``"{{ params.x }}"`` renders for a missing param)."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "None") else text


class OmnisendExtractOrdersOperator(OmnisendPartitionBaseOperator):
    """Extract one store-local day of orders as Omnisend order events into the partition's staging.

    Give exactly one source: ``source_conn_id`` (SQL) or ``source_path`` (a file or folder); blank, or
    the text ``"None"`` a template renders for a missing param, counts as not given.

    ``store_id``, ``partition`` and ``staging``: :class:`OmnisendPartitionBaseOperator` (the store id is
    part of every eventID).

    :param timezone: the store's IANA timezone (``Europe/Vilnius``): it decides which instants belong to
        the day. Templated.
    :param source_conn_id: an Airflow SQL connection (any ``DbApiHook``); the reference-schema queries of
        its dialect are used unless ``queries`` is given. Templated.
    :param source_path: a local path or an fsspec URL (``s3://conn@bucket/orders.ndjson``; downloaded to
        a temporary folder first): a file, or for ``orders_csv`` a folder holding :data:`CSV_TABLES`.
        Templated.
    :param source_format: one of :data:`SOURCE_FORMATS`; default: a folder or ``.csv`` is
        ``orders_csv``, an NDJSON file is ``events_ndjson`` when its first object has an ``eventName``,
        else ``orders_ndjson``. Templated.
    :param queries: custom :class:`~airflow_omnisend.sources.SqlQueries` (SQL sources only).
    :param paramstyle: bind the queries' parameters in this DB-API paramstyle instead of the driver's.
    :param fetch_size: rows per fetch from the database (the memory bound).
    :param check_unplaceable: also sweep the whole source for rows whose time has no date at all (null,
        ``"yesterday"``, ``2024-02-30``): no day's window can select them, so without this sweep they
        would never be reported. They are listed in ``unplaceable_rows.ndjson`` of every partition run
        (store-wide, until fixed in the source) and counted as ``rows_unplaceable`` in ``extract.json``
        and the report. One extra scan of the source per run; turn it off for a huge store once it is
        known to be clean.

    Returns (XCom) a staging manifest: ``{"root", "store_id", "day", "files": {"events", "rows_rejected",
    "extract"}, "counts": {"events", "rows_rejected", "rows_unplaceable"}, "hashes": {"events":
    <sha256>}, "by_event_name": {<eventName>: <count>}}`` - never event data.
    """

    template_fields: Sequence[str] = (
        *OmnisendPartitionBaseOperator.template_fields,
        "timezone",
        "source_conn_id",
        "source_path",
        "source_format",
    )
    ui_color = "#e8f4e8"

    def __init__(
        self,
        *,
        timezone: str,
        source_conn_id: str | None = None,
        source_path: str | None = None,
        source_format: str | None = None,
        queries: SqlQueries | None = None,
        fetch_size: int = 2000,
        check_unplaceable: bool = True,
        paramstyle: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.timezone = timezone
        self.source_conn_id = source_conn_id
        self.source_path = source_path
        self.source_format = source_format
        self.queries = queries
        self.fetch_size = fetch_size
        self.check_unplaceable = check_unplaceable
        self.paramstyle = None if paramstyle is None else check_paramstyle(paramstyle)
        owner = type(self).__name__
        if queries is not None and not isinstance(queries, SqlQueries):
            raise OmnisendConfigError(
                f"{owner}: queries must be a SqlQueries (start from SqlQueries.default(dialect)), "
                f"got {type(queries).__name__}"
            )
        if isinstance(fetch_size, bool) or not isinstance(fetch_size, int) or fetch_size < 1:
            raise OmnisendConfigError(f"{owner}: fetch_size must be an integer >= 1, got {fetch_size!r}")
        if not _is_templated(timezone):
            load_timezone(timezone)
        self._check_source()

    # -- arguments -----------------------------------------------------------------------------------

    def _check_source(self) -> None:
        """Exactly one source, a known format, queries only for SQL (again after rendering; a source
        that is still a template may render to nothing, so with one the rules wait for execute)."""
        owner = type(self).__name__
        if _is_templated(self.source_conn_id) or _is_templated(self.source_path):
            return
        conn_id = _given(self.source_conn_id)
        path = _given(self.source_path)
        if (conn_id is None) == (path is None):
            raise OmnisendConfigError(
                f"{owner}: give exactly one source - source_conn_id (an Airflow SQL connection) or "
                f"source_path (a file or folder) - got source_conn_id={self.source_conn_id!r}, "
                f"source_path={self.source_path!r}"
            )
        if self.queries is not None and conn_id is None:
            raise OmnisendConfigError(
                f"{owner}: queries apply to a SQL source only; drop them or use source_conn_id"
            )
        fmt = _given(self.source_format)
        if fmt is not None and not _is_templated(fmt):
            if conn_id is not None:
                raise OmnisendConfigError(
                    f"{owner}: source_format={fmt!r} describes a file; a SQL source (source_conn_id) has none"
                )
            if fmt not in SOURCE_FORMATS:
                raise OmnisendConfigError(
                    f"{owner}: source_format must be one of {', '.join(SOURCE_FORMATS)}, got {fmt!r}"
                )

    def _window(self, now: datetime) -> PartitionWindow:
        partition = self.partition
        window = (
            PartitionWindow.for_key(partition, self.timezone)
            if isinstance(partition, str)
            else PartitionWindow.for_day(partition, self.timezone)
        )
        if window.end_utc > now:
            local_now = now.astimezone(load_timezone(self.timezone))
            raise OmnisendConfigError(
                f"{type(self).__name__}: the {window.period.noun} {window.label} has not ended in the "
                "store's timezone "
                f"{self.timezone}: it is {local_now.isoformat(timespec='seconds')} there now. Its orders "
                f"are not all there yet; extract it after {window.end_utc.astimezone(local_now.tzinfo)} "
                "(local midnight)"
            )
        return window

    # -- sources -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _source(self) -> Iterator[tuple[OrderSource, str]]:
        conn_id, path = _given(self.source_conn_id), _given(self.source_path)
        if conn_id is not None:
            source = SqlOrderSource(
                conn_id, queries=self.queries, fetch_size=self.fetch_size, paramstyle=self.paramstyle
            )
            yield source, f"sql:{conn_id}"
            return
        assert path is not None
        with contextlib.ExitStack() as stack:
            try:
                local = stack.enter_context(_local_source(path))
                fmt = _given(self.source_format) or _guess_format(local)
                if fmt not in SOURCE_FORMATS:
                    raise OmnisendConfigError(
                        f"{type(self).__name__}: source_format must be one of {', '.join(SOURCE_FORMATS)}, "
                        f"got {fmt!r}"
                    )
                file_source = _file_source(local, fmt)
            except _INPUT_ERRORS as exc:  # no retry reads the same file differently
                raise input_failure(f"source_path {path}", exc) from exc
            yield file_source, f"{fmt}:{path}"

    # -- Airflow entry point -------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        self._check_source()  # templated values are rendered now
        window = self._window(datetime.now(UTC))
        partition = self.partition_staging()
        with self._source() as (source, description):
            self.log.info("Extracting %s %s from %s", partition.store_id, window, description)
            with (
                partition.open_write(partition.events) as out,
                partition.open_write(partition.rows_rejected) as rejected_out,
            ):
                writer = _HashingWriter(out)
                try:
                    summary = extract_partition(
                        source,
                        partition.store_id,
                        window,
                        cast("IO[bytes]", writer),
                        rows_rejected_out=rejected_out,
                    )
                except OmnisendInputError as exc:
                    if _given(self.source_conn_id) is not None:
                        raise  # a SQL error may pass (a dropped connection): the retry policy decides
                    raise input_failure(description, exc) from exc
            unplaceable, unplaceable_by_code = 0, {}
            if self.check_unplaceable:
                with partition.open_write(partition.file("unplaceable")) as unplaceable_out:
                    swept = sweep_unplaceable(source, unplaceable_out)
                unplaceable, unplaceable_by_code = swept.count, dict(sorted(swept.by_code.items()))
        digest = writer.sha256.hexdigest()
        partition.write_json(
            "extract",
            {
                **summary.to_dict(),
                "source": description,
                "events_sha256": digest,
                "rows_unplaceable": unplaceable if self.check_unplaceable else None,
                "rows_unplaceable_by_code": unplaceable_by_code,
                "extracted_at": utc_timestamp(),
            },
        )
        names = ", ".join(f"{name} {count}" for name, count in sorted(summary.by_event_name.items()))
        self.log.info(
            "%s %s: %d events (%s), %d source rows rejected, %d bytes in %.2fs -> %s",
            partition.store_id, partition.day, summary.events, names or "none", summary.rows_rejected,
            summary.bytes_written, summary.seconds, partition.events,
        )  # fmt: skip
        if summary.rows_rejected:
            self.log.warning(
                "%d source row(s) could not become events (%s); they are listed in %s",
                summary.rows_rejected,
                ", ".join(f"{code} {n}" for code, n in sorted(summary.rows_rejected_by_code.items())),
                partition.rows_rejected,
            )
        if unplaceable:
            self.log.warning(
                "%d source row(s) of store %s belong to no day (%s: a time without a date, or no "
                "order/refund/line they belong to), so no partition can send them; fix them in the "
                "source. They are listed in %s",
                unplaceable,
                partition.store_id,
                ", ".join(f"{code} {n}" for code, n in unplaceable_by_code.items()),
                partition.file("unplaceable"),
            )
        manifest = partition.manifest(
            files={"events": "events", "rows_rejected": "rows_rejected", "extract": "extract"},
            counts={
                "events": summary.events,
                "rows_rejected": summary.rows_rejected,
                "rows_unplaceable": unplaceable,
            },
            hashes={"events": digest},
        )
        return {**manifest.to_dict(), "by_event_name": dict(sorted(summary.by_event_name.items()))}

    # -- OpenLineage (extra ``[openlineage]``; see airflow_omnisend/lineage.py) -----------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """Source tables or files -> the staged events, with the events extracted."""
        from airflow_omnisend.lineage import extract_lineage

        return extract_lineage(self, complete=True)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Lineage | None:
        """The same datasets without counts (the events file may be partial)."""
        from airflow_omnisend.lineage import extract_lineage

        return extract_lineage(self, complete=False)


# ---------------------------------------------------------------------------------------------------
# file sources


@contextlib.contextmanager
def _local_source(location: str) -> Iterator[Path]:
    """``location`` on this machine: the path itself when local, else a temporary download (a file, or
    the :data:`CSV_TABLES` of a folder), deleted afterwards."""
    if "://" not in location:
        yield Path(location).expanduser()
        return
    remote = ObjectStoragePath(location)
    if is_local(remote):
        yield Path(remote.path)
        return
    folder = Path(tempfile.mkdtemp(prefix="omnisend-source-"))
    try:
        if remote.is_dir():
            local = folder / (remote.name or "source")
            local.mkdir()
            for name in CSV_TABLES:
                if (remote / name).exists():
                    _download(remote / name, local / name)
        else:
            local = folder / remote.name
            _download(remote, local)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _download(remote: ObjectStoragePath, local: Path) -> None:
    with remote.fs.open(remote.path, "rb") as src, open(local, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _guess_format(path: Path) -> str:
    if path.is_dir() or path.suffix.lower() == ".csv":
        return "orders_csv"
    if path.suffix.lower() in _NDJSON_SUFFIXES:
        return "events_ndjson" if _first_object_has_event_name(path) else "orders_ndjson"
    raise OmnisendConfigError(
        f"cannot tell the format of {path}; pass source_format= one of {', '.join(SOURCE_FORMATS)}"
    )


def _first_object_has_event_name(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            for raw in capped_lines(handle, what=str(path)):
                line = raw.strip().removeprefix(b"\xef\xbb\xbf")
                if line:
                    first = orjson.loads(line)
                    return isinstance(first, dict) and "eventName" in first
    except FileNotFoundError:
        raise OmnisendConfigError(f"source file {path} does not exist") from None
    except orjson.JSONDecodeError:
        return False  # an orders file with a broken first line: its source reports the line
    return False


def _file_source(path: Path, fmt: str) -> OrderSource:
    if fmt == "events_ndjson":
        return NdjsonEventSource(path)
    if fmt == "orders_ndjson":
        return OrderNdjsonSource(path)
    if not path.is_dir():
        return OrderCsvSource(path)
    tables = [path / name for name in CSV_TABLES]
    if not tables[0].is_file():
        raise OmnisendInputError(
            f"CSV folder {path} has no orders.csv; it should hold {', '.join(CSV_TABLES)} (all but "
            "orders.csv optional)"
        )
    lines, refunds, refund_lines = (t if t.is_file() else None for t in tables[1:])
    return OrderCsvSource(tables[0], lines, refunds, refund_lines)
