"""Orders and events from files: NDJSON events (passed through), NDJSON order objects, CSV tables.

* :class:`NdjsonEventSource` - a file of ready Omnisend events, one JSON object per line. Each partition
  keeps the events whose ``eventTime`` falls in its window (or all of them with ``by_window=False``).
* :class:`OrderNdjsonSource` - one order per line: the ``orders`` columns, its ``lines`` (``order_lines``
  rows) and its ``refunds`` (``refunds`` rows, each with its ``lines``: ``refund_lines`` rows). The same
  mapping as the SQL source makes the events.
* :class:`OrderCsvSource` - CSV exports of the tables (header row = the schema's column names; an empty
  cell is null): ``orders`` and optionally ``order_lines``, ``refunds``, ``refund_lines``. Memory is
  bounded by the partition, not the file: one pass finds the orders with an event in the window, a second
  collects their lines and refunds, a third maps them.

A file is read whole for every partition, so a line that cannot be placed at all (not JSON, no usable
date) would be seen by every partition: those are reported by :meth:`find_unplaceable` (once per
backfill), and a time that has a date but cannot be read by the partition of that date (see
``sources.base``).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from airflow_omnisend.events.columns import ORDER_TIME_COLUMN, line_tuple, order_tuple, refund_tuple
from airflow_omnisend.events.lines import capped_lines, capped_text_lines
from airflow_omnisend.events.mapping import OrderEventMapper, refunded_lines
from airflow_omnisend.events.names import LIFECYCLE_RANK, PLACED, REFUNDED
from airflow_omnisend.events.statuses import history_of
from airflow_omnisend.events.timefmt import InstantCache, date_prefix, try_parse_instant
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.sources.base import RowRejection, place

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from airflow_omnisend.events.partition import PartitionWindow


def _existing(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise OmnisendConfigError(f"{what} file {str(p)!r} does not exist (or is not a file)")
    return p


def _ndjson_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(capped_lines(handle, what=str(path)), 1):
            line = raw.strip()
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:].strip()
            if line:
                yield number, line


class NdjsonEventSource:
    """Ready events from an NDJSON file, passed through unchanged (their own eventIDs are kept).

    :param by_window: keep only the events whose ``eventTime`` is in the partition (default); with
        ``False`` every event goes to every partition it is asked for (a file that already is one day).
    """

    def __init__(self, path: str | Path, *, by_window: bool = True) -> None:
        self.path = _existing(path, "events")
        self.by_window = by_window

    def iter_events(
        self, store_id: str, window: PartitionWindow, reject: Callable[[RowRejection], None]
    ) -> Iterator[dict[str, Any]]:
        del store_id  # the events carry their own ids
        mapper_times = InstantCache()
        day = window.day_labels
        for number, line in _ndjson_lines(self.path):
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if not self.by_window:
                    reject(_bad_line(number, f"not JSON ({exc})"))
                continue  # with by_window: reported once by find_unplaceable
            if type(event) is not dict:
                if not self.by_window:
                    reject(_bad_line(number, "not a JSON object"))
                continue
            if not self.by_window:
                yield event
                continue
            value = event.get("eventTime")
            placed = place(value, window, day, times=mapper_times)
            if type(placed) is tuple:
                yield event
            elif placed is not None:
                reject(_event_rejection(event, number, str(placed)))

    def find_unplaceable(self, reject: Callable[[RowRejection], None]) -> int:
        """Lines that are not JSON objects, and events whose eventTime has no date."""
        if not self.by_window:
            return 0  # every line is read by every partition; iter_events reports them
        count = 0
        for number, line in _ndjson_lines(self.path):
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                reject(_bad_line(number, f"not JSON ({exc})"))
                count += 1
                continue
            if type(event) is not dict:
                reject(_bad_line(number, "not a JSON object"))
                count += 1
                continue
            value = event.get("eventTime")
            if try_parse_instant(value) is None and date_prefix(value) is None:
                reject(_event_rejection(event, number, f"eventTime {value!r} has no date", code="no_date"))
                count += 1
        return count


def _bad_line(number: int, reason: str) -> RowRejection:
    return RowRejection(
        event_name="",
        order_id=None,
        column="",
        value=None,
        reason=f"line {number}: {reason}",
        code="bad_line",
        line=number,
    )


def _event_rejection(
    event: dict[str, Any], number: int, reason: str, code: str = "unplaceable_time"
) -> RowRejection:
    props = event.get("properties")
    order_id = props.get("orderID") if isinstance(props, dict) else None
    name = event.get("eventName")
    return RowRejection(
        event_name=name if isinstance(name, str) else "",
        order_id=order_id,
        column="eventTime",
        value=event.get("eventTime"),
        reason=reason,
        code=code,
        line=number,
    )


# -- order rows -----------------------------------------------------------------------------------------


def order_events_in_window(
    mapper: OrderEventMapper,
    order: Mapping[str, Any],
    lines: Iterable[Mapping[str, Any]],
    refunds: Iterable[Mapping[str, Any]],
    window: PartitionWindow,
    reject: Callable[[RowRejection], None],
    *,
    line: int | None = None,
) -> list[dict[str, Any]]:
    """The events of one order (dict rows) that fall in ``window``, in lifecycle order.

    ``refunds`` are ``refunds`` rows, each with its ``refund_lines`` rows under ``"lines"``.
    """
    day = window.day_labels
    order_t = order_tuple(order)
    refund_rows = list(refunds)
    found: list[tuple[Any, ...]] = []
    for name, column in ORDER_TIME_COLUMN.items():
        value = order.get(column)
        placed = place(value, window, day, times=mapper.times)
        if type(placed) is tuple:
            found.append((placed[0], LIFECYCLE_RANK[name], "", name, placed, None))
        elif placed is not None:
            reject(RowRejection(name, order_t[0], column, value, str(placed), line=line))
    for refund in refund_rows:
        value = refund.get("created_at")
        placed = place(value, window, day, times=mapper.times)
        if type(placed) is tuple:
            found.append(
                (placed[0], LIFECYCLE_RANK[REFUNDED], str(refund.get("refund_id")), REFUNDED, placed, refund)
            )
        elif placed is not None:
            reject(
                RowRejection(
                    REFUNDED,
                    refund.get("order_id", order_t[0]),
                    "created_at",
                    value,
                    str(placed),
                    refund_id=refund.get("refund_id"),
                    line=line,
                )
            )
    if not found:
        return []
    found.sort(key=lambda item: item[:3])
    line_ts = [line_tuple(row) for row in lines]
    prepared = mapper.prepare(order_t, line_ts)
    history = history_of(refund_rows)
    events = []
    for _instant, _rank, _key, name, (instant, canonical), refund in found:
        if refund is None:
            events.append(
                mapper.order_event(
                    name,
                    prepared,
                    event_time=canonical,
                    as_of=instant,
                    history=history,
                    time_is_canonical=True,
                )
            )
        else:
            events.append(
                mapper.refund_event(
                    prepared,
                    line_ts,
                    refund_tuple(refund),
                    refunded_lines(refund.get("lines") or (), line_ts),
                    event_time=canonical,
                    as_of=instant,
                    history=history,
                    time_is_canonical=True,
                )
            )
    return events


def _no_date(value: Any) -> bool:
    return try_parse_instant(value) is None and date_prefix(value) is None


def _undated_order_times(order: Mapping[str, Any], line: int | None) -> list[RowRejection]:
    """Times of an order that have no date a partition could report them by (a null created_at too)."""
    found = []
    for name, column in ORDER_TIME_COLUMN.items():
        value = order.get(column)
        if (value is not None or column == "created_at") and _no_date(value):
            found.append(
                RowRejection(
                    name,
                    order.get("order_id"),
                    column,
                    value,
                    f"{column} {value!r} has no date",
                    code="no_date",
                    line=line,
                )
            )
    return found


def _undated_refund(refund: Mapping[str, Any], order_id: Any, line: int | None) -> list[RowRejection]:
    value = refund.get("created_at")
    if not _no_date(value):
        return []
    return [
        RowRejection(
            REFUNDED,
            refund.get("order_id", order_id),
            "created_at",
            value,
            f"created_at {value!r} has no date",
            code="no_date",
            refund_id=refund.get("refund_id"),
            line=line,
        )
    ]


class OrderNdjsonSource:
    """Orders from an NDJSON file: one order object per line with nested ``lines`` and ``refunds``."""

    def __init__(self, path: str | Path) -> None:
        self.path = _existing(path, "orders")

    def _orders(self) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
        for number, line in _ndjson_lines(self.path):
            try:
                order = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, None, f"not JSON ({exc})"
                continue
            if type(order) is not dict:
                yield number, None, "not a JSON object"
                continue
            yield number, order, ""

    def iter_events(
        self, store_id: str, window: PartitionWindow, reject: Callable[[RowRejection], None]
    ) -> Iterator[dict[str, Any]]:
        mapper = OrderEventMapper(store_id)
        for number, order, _problem in self._orders():
            if order is None:
                continue  # reported once by find_unplaceable
            lines = order.get("lines")
            refunds = order.get("refunds")
            yield from order_events_in_window(
                mapper,
                order,
                lines if isinstance(lines, list) else (),
                [r for r in refunds if isinstance(r, dict)] if isinstance(refunds, list) else (),
                window,
                reject,
                line=number,
            )

    def find_unplaceable(self, reject: Callable[[RowRejection], None]) -> int:
        count = 0
        for number, order, problem in self._orders():
            if order is None:
                reject(_bad_line(number, problem))
                count += 1
                continue
            refunds = order.get("refunds")
            found = _undated_order_times(order, number)
            for refund in refunds if isinstance(refunds, list) else ():
                if isinstance(refund, dict):
                    found += _undated_refund(refund, order.get("order_id"), number)
            for rejection in found:
                reject(rejection)
            count += len(found)
        return count


class OrderCsvSource:
    """Orders from CSV exports of the reference tables (header row = column names, empty cell = null).

    :param orders: the ``orders`` table.
    :param lines: ``order_lines`` (with ``order_id``); optional.
    :param refunds: ``refunds`` (with ``order_id``); optional.
    :param refund_lines: ``refund_lines`` (with ``refund_id``); optional, needs ``refunds``.
    """

    def __init__(
        self,
        orders: str | Path,
        lines: str | Path | None = None,
        refunds: str | Path | None = None,
        refund_lines: str | Path | None = None,
        *,
        encoding: str = "utf-8-sig",
        delimiter: str = ",",
    ) -> None:
        if refund_lines is not None and refunds is None:
            raise OmnisendConfigError("refund_lines needs refunds: pass the refunds CSV too")
        self.orders = _existing(orders, "orders CSV")
        self.lines = _existing(lines, "order_lines CSV") if lines is not None else None
        self.refunds = _existing(refunds, "refunds CSV") if refunds is not None else None
        self.refund_lines = _existing(refund_lines, "refund_lines CSV") if refund_lines is not None else None
        self.encoding = encoding
        self.delimiter = delimiter
        self._check_header(self.orders, ("order_id", "created_at", "currency"))
        if self.lines is not None:
            self._check_header(self.lines, ("order_id",))
        if self.refunds is not None:
            self._check_header(self.refunds, ("refund_id", "order_id", "created_at"))
        if self.refund_lines is not None:
            self._check_header(self.refund_lines, ("refund_id", "line_number"))

    def _rows(self, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
        with path.open(newline="", encoding=self.encoding) as handle:
            reader = csv.DictReader(capped_text_lines(handle, what=str(path)), delimiter=self.delimiter)
            try:
                for row in reader:
                    yield (
                        reader.line_num,
                        {k: (v if v != "" else None) for k, v in row.items() if k is not None},
                    )
            except UnicodeDecodeError as exc:
                raise self._not_text(path, exc, reader.line_num + 1) from None

    def _not_text(self, path: Path, exc: UnicodeDecodeError, line: int) -> OmnisendInputError:
        """A CSV in another encoding is a property of the whole export, not of one row: name the fix."""
        return OmnisendInputError(
            f"{path} is not {self.encoding} text: byte {exc.object[exc.start : exc.start + 1]!r} near line "
            f"{line} ({exc.reason}); pass the export's encoding, e.g. OrderCsvSource(..., encoding='cp1252')"
        )

    def _check_header(self, path: Path, required: tuple[str, ...]) -> None:
        with path.open(newline="", encoding=self.encoding) as handle:
            try:
                lines = capped_text_lines(handle, what=str(path))
                header = next(csv.reader(lines, delimiter=self.delimiter), [])
            except UnicodeDecodeError as exc:
                raise self._not_text(path, exc, 1) from None
        missing = [c for c in required if c not in header]
        if missing:
            raise OmnisendInputError(
                f"{path.name} has no column(s) {', '.join(missing)} in its header row ({', '.join(header)})"
            )

    def _wanted(self, window: PartitionWindow, mapper: OrderEventMapper) -> set[Any]:
        """Pass 1: the orders with an event in the window (or a time this window must report)."""
        day = window.day_labels
        wanted: set[Any] = set()
        for _number, row in self._rows(self.orders):
            for column in ORDER_TIME_COLUMN.values():
                value = row.get(column)
                if value is not None and place(value, window, day, times=mapper.times) is not None:
                    wanted.add(row.get("order_id"))
                    break
        if self.refunds is not None:
            for _number, row in self._rows(self.refunds):
                value = row.get("created_at")
                if value is not None and place(value, window, day, times=mapper.times) is not None:
                    wanted.add(row.get("order_id"))
        return wanted

    def _refunds_of(self, wanted: set[Any]) -> dict[Any, list[dict[str, Any]]]:
        refunds: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        if self.refunds is None:
            return refunds
        by_id: dict[Any, dict[str, Any]] = {}
        for _number, row in self._rows(self.refunds):
            if row.get("order_id") in wanted:
                row["lines"] = []
                refunds[row.get("order_id")].append(row)
                by_id[row.get("refund_id")] = row
        if self.refund_lines is not None:
            for _number, row in self._rows(self.refund_lines):
                refund = by_id.get(row.get("refund_id"))
                if refund is not None:
                    refund["lines"].append(row)
        return refunds

    def iter_events(
        self, store_id: str, window: PartitionWindow, reject: Callable[[RowRejection], None]
    ) -> Iterator[dict[str, Any]]:
        mapper = OrderEventMapper(store_id)
        wanted = self._wanted(window, mapper)
        if not wanted:
            return
        lines: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        if self.lines is not None:
            for _number, row in self._rows(self.lines):
                if row.get("order_id") in wanted:
                    lines[row.get("order_id")].append(row)
        refunds = self._refunds_of(wanted)
        seen: set[Any] = set()
        for number, row in self._rows(self.orders):
            order_id = row.get("order_id")
            if order_id not in wanted:
                continue
            seen.add(order_id)
            order_lines = sorted(lines.get(order_id, ()), key=_line_number_key)
            yield from order_events_in_window(
                mapper, row, order_lines, refunds.get(order_id, ()), window, reject, line=number
            )
        # refunds whose order is not in the orders file: the refund events still happen (and are rejected
        # by the validator for want of a contact, naming the order id)
        for order_id in sorted(wanted - seen, key=str):
            yield from order_events_in_window(
                mapper, {"order_id": order_id}, (), refunds.get(order_id, ()), window, reject
            )

    def find_unplaceable(self, reject: Callable[[RowRejection], None]) -> int:
        """Store-wide: undated times, and rows of a table whose parent row does not exist (a line of an
        order, a refund line of a refund), which no partition would ever read."""
        found: list[RowRejection] = []
        order_ids: set[Any] = set()
        for number, row in self._rows(self.orders):
            found += _undated_order_times(row, number)
            order_ids.add(row.get("order_id"))
        if self.lines is not None:
            found += self._orphans(self.lines, "order_id", order_ids, PLACED, "line_without_order", "order")
        if self.refunds is not None:
            refund_ids: set[Any] = set()
            for number, row in self._rows(self.refunds):
                found += _undated_refund(row, None, number)
                refund_ids.add(row.get("refund_id"))
            if self.refund_lines is not None:
                found += self._orphans(
                    self.refund_lines,
                    "refund_id",
                    refund_ids - {None},
                    REFUNDED,
                    "refund_line_without_refund",
                    "refund",
                )
        for rejection in found:
            reject(rejection)
        return len(found)

    def _orphans(
        self, path: Path, column: str, parents: set[Any], event_name: str, code: str, parent: str
    ) -> list[RowRejection]:
        """Rows of ``path`` whose ``column`` names no row of the parent table."""
        return [
            RowRejection(
                event_name,
                row.get("order_id"),
                column,
                row.get(column),
                f"{path.name} line {number} names {parent} {row.get(column)!r}, which does not exist: "
                f"add the {parent} or delete the line",
                code=code,
                refund_id=row.get("refund_id"),
                line=number,
            )
            for number, row in self._rows(path)
            if row.get(column) not in parents or row.get(column) is None
        ]


def _line_number_key(row: Mapping[str, Any]) -> tuple[int, Any]:
    number = row.get("line_number")
    try:
        return (0, int(number))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (1, str(number))
