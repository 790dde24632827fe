"""What every order source shares: the source protocol, rejected rows, and placing a row in a partition.

A source turns the rows of one partition (a store-local period, :class:`PartitionWindow`) into events. Two
things can go wrong with a row, and they are reported differently:

* the row can become an event, but not a valid one (no contact, a bad currency, a negative price): the
  mapping passes the bad value on, and the *validator* rejects the event, naming ``properties.orderID``;
* the row cannot even be placed in a partition, because the time that decides its day is not a usable
  instant (``'2024-03-09 23:59'`` without offset, ``'yesterday'``): it becomes a :class:`RowRejection`,
  handed to the ``reject`` callback of :meth:`OrderSource.iter_events` (the extractor counts them and
  writes them to ``rows_rejected.ndjson``).

So that every unplaceable row is reported exactly once: where the query filters on the instant exactly
(PostgreSQL), by the one partition whose query returned it; elsewhere (SQLite text, files), by the
partition whose day its text starts with (``'2024-03-09 23:59'`` -> 2024-03-09). A value with no date at all
(null, a number, ``'yesterday'``) is found by the store-wide :meth:`OrderSource.find_unplaceable` sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from airflow_omnisend.events.timefmt import InstantCache, InstantError, date_prefix, parse_instant

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator
    from datetime import datetime

    from airflow_omnisend.events.partition import PartitionWindow


@dataclass(frozen=True, slots=True)
class RowRejection:
    """A source row that could not become an event at all (see the module docstring)."""

    event_name: str
    order_id: Any
    column: str
    value: Any
    reason: str
    code: str = "unplaceable_time"
    refund_id: Any = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "eventName": self.event_name,
            "orderID": None if self.order_id is None else _shown(str(self.order_id)),
        }
        if self.refund_id is not None:
            out["refundID"] = _shown(str(self.refund_id))
        if self.line is not None:
            out["line"] = self.line
        out["column"] = self.column
        value = _shown(self.value) if type(self.value) is str else self.value
        out["value"] = value if value is None or isinstance(value, (str, int, float)) else repr(value)
        out["code"] = self.code
        out["reason"] = self.reason
        return out


def _shown(text: str) -> str:
    """``text`` as JSON can hold it: bytes that were not UTF-8 (read leniently, as lone surrogates) are
    shown as ``\\xff``."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@runtime_checkable
class OrderSource(Protocol):
    """Where one store's orders come from."""

    def iter_events(
        self, store_id: str, window: PartitionWindow, reject: Callable[[RowRejection], None]
    ) -> Iterator[dict[str, Any]]:
        """The events whose eventTime falls in ``window``; rows that cannot be placed go to ``reject``.

        Events of one order come out together, in lifecycle order, where the source can do that cheaply;
        consumers must not rely on it.
        """
        ...

    def find_unplaceable(self, reject: Callable[[RowRejection], None]) -> int:
        """Store-wide sweep: report rows whose event time has no date at all (so no partition reports
        them); return how many. Run it once per backfill, not per partition."""
        ...


def place(
    value: Any,
    window: PartitionWindow,
    day_labels: Collection[str],
    *,
    exact_source: bool = False,
    times: InstantCache | None = None,
) -> tuple[datetime, str] | str | None:
    """Where a row's event time puts it, relative to ``window``.

    :param exact_source: the rows come from a query that filtered on the instant exactly (PostgreSQL
        ``timestamptz``: each row is returned for one window only), so whatever it returned is reported
        here; elsewhere (SQLite text under a widened prefilter, files read whole) a text value is reported
        by the day it starts with and any other value is left to the sweep.
    :param day_labels: the window's days (``window.day_labels``): an unparseable text time is reported
        by the partition that holds the day it starts with.
    :param times: a memo of parsed times (the mapper's), so that each time is parsed once.
    :returns: ``(instant, canonical eventTime)`` when it belongs to the window; ``None`` when it belongs
        elsewhere (or is unplaceable but reported by another partition); the reason text when it is
        unplaceable and this window is the one that reports it.
    """
    if times is None:
        times = InstantCache(limit=1)
    found = times.lookup(value)
    if found is not None:
        return found if window.start_utc <= found[0] < window.end_utc else None
    if value is None:
        return None  # no event (paid_at null); a null created_at is the sweep's to report
    if exact_source or (type(value) is str and date_prefix(value) in day_labels):
        try:
            parse_instant(value)
        except InstantError as exc:
            return str(exc)
    return None
