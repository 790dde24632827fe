"""An order's ``paymentStatus`` and ``fulfillmentStatus`` as of an event's time.

A replayed history must read like it happened: the placed event of an order paid an hour later says
``awaitingPayment``, its paid event ``paid``, a later refund ``partiallyRefunded`` or ``refunded``. A time
that cannot be read counts as "has not happened"; ``as_of=None`` means the end of time. ``instant`` reads
a time (the mapper passes its :class:`~airflow_omnisend.events.timefmt.InstantCache`'s ``instant``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from airflow_omnisend.events.coercions import to_decimal
from airflow_omnisend.events.timefmt import try_parse_instant

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from datetime import datetime

#: Every refund of an order: (instant, amount); either is None when unreadable.
RefundHistory = list[tuple["datetime | None", "Decimal | None"]]

_ZERO = Decimal(0)


def parse_refund_history(value: Any) -> RefundHistory | None:
    """The ``refund_history`` column: a JSON array of ``[created_at, amount]`` pairs (text, or already
    decoded by the driver), one per refund of the order. ``None`` when the column is null or unreadable.
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(value, list):
        return None
    history: RefundHistory = []
    for entry in value:
        if isinstance(entry, (list, tuple)) and len(entry) == 2:
            history.append((try_parse_instant(entry[0]), to_decimal(entry[1])))
    return history


def history_of(refunds: Iterable[Mapping[str, Any]]) -> RefundHistory:
    """The refund history of an order from its ``refunds`` rows (dicts keyed by column name)."""
    return [(try_parse_instant(r.get("created_at")), to_decimal(r.get("amount"))) for r in refunds]


def refunded_by(history: RefundHistory, as_of: datetime | None) -> Decimal:
    """What the refunds had paid back by ``as_of`` (unreadable refunds and absurd amounts count as 0)."""
    total = _ZERO
    try:
        for instant, amount in history:
            if amount is not None and instant is not None and (as_of is None or instant <= as_of):
                total += amount
    except ArithmeticError:
        return _ZERO
    return total


def happened(value: Any, as_of: datetime | None, instant: Callable[[Any], datetime | None]) -> bool:
    """``value`` is a time at or before ``as_of`` (a null or unreadable time has not happened)."""
    if value is None:
        return False
    at = instant(value)
    return at is not None and (as_of is None or at <= as_of)


def payment_status(
    total_price: Any,
    paid_at: Any,
    canceled_at: Any,
    *,
    as_of: datetime | None,
    history: RefundHistory | None,
    instant: Callable[[Any], datetime | None],
) -> str:
    """``refunded`` / ``partiallyRefunded`` once refunds paid money back (all of ``total_price`` or
    not), else ``paid``, ``voided`` (canceled unpaid) or ``awaitingPayment``."""
    refunded = refunded_by(history, as_of) if history else _ZERO
    if refunded > 0:
        total = to_decimal(total_price)
        return "refunded" if total is not None and refunded >= total else "partiallyRefunded"
    if happened(paid_at, as_of, instant):
        return "paid"
    if happened(canceled_at, as_of, instant):
        return "voided"
    return "awaitingPayment"


def fulfillment_status(
    fulfilled_at: Any, *, as_of: datetime | None, instant: Callable[[Any], datetime | None]
) -> str:
    """``fulfilled`` once ``fulfilled_at`` has happened, else ``unfulfilled``."""
    return "fulfilled" if happened(fulfilled_at, as_of, instant) else "unfulfilled"
