"""The five Omnisend order events and their lifecycle order: the one definition every layer imports.

Lifecycle order is a total order of the names: placed order, paid for order, order fulfilled, order
canceled, order refunded. Where events of one order must be ordered (the source's event stream, the
planner's bodies, a split order's pieces), this rank decides first or breaks the tie, as each place
documents; a refund ranks after a cancellation because a cancellation is what usually refunds an order,
and an earlier partial refund still carries its own real eventTime (docs/architecture.md).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

PLACED: Final = "placed order"
PAID: Final = "paid for order"
FULFILLED: Final = "order fulfilled"
CANCELED: Final = "order canceled"
REFUNDED: Final = "order refunded"

#: The five event names, in lifecycle order.
EVENT_NAMES: Final[tuple[str, ...]] = (PLACED, PAID, FULFILLED, CANCELED, REFUNDED)

#: Events Omnisend derives from imported ones: derived name -> the imported names it comes from
#: (``ordered product``, one per line item of a ``placed order``; omnisend-api.md 6.1 and 7.1).
DERIVED_EVENT_NAMES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({"ordered product": (PLACED,)})

#: eventName -> its position in an order's life (0 for placed order ... 4 for order refunded).
LIFECYCLE_RANK: Final[Mapping[str, int]] = MappingProxyType({name: r for r, name in enumerate(EVENT_NAMES)})

#: The rank of anything that is not one of the five names: after all of them.
UNKNOWN_RANK: Final = len(EVENT_NAMES)


def lifecycle_rank(name: object) -> int:
    """The lifecycle rank of an eventName; :data:`UNKNOWN_RANK` for any other value."""
    return LIFECYCLE_RANK.get(name, UNKNOWN_RANK) if isinstance(name, str) else UNKNOWN_RANK
