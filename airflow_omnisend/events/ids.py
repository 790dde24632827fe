"""Deterministic event ids.

Omnisend de-duplicates historic events on ``eventID`` + ``eventTime``, so a rerun of a day must produce
the very same ids: an id is a UUIDv5 over a fixed namespace and ``"{store_id}:{event_name}:{source_key}"``
(``source_key`` is the order id, or the refund id for ``order refunded``). The store id is part of the
name, so two stores never share an id, even when their order ids collide.

"""

from __future__ import annotations

import re
import uuid
from typing import Final

from airflow_omnisend.exceptions import OmnisendConfigError

#: Fixed namespace of every eventID this provider makes. Never change it: every id would change with it,
#: and a rerun would then duplicate a store's history in Omnisend.
OMNISEND_EVENT_NAMESPACE = uuid.UUID("6f1c2b8e-3d4a-5e9f-8a7b-0c1d2e3f4a5b")


#: The store-id rule: it names the store's DAG, pool and staging folder and is part of every eventID.
STORE_ID_PATTERN: Final = "[a-z0-9_]+"
#: Longest store id: ``omnisend_orders__<id>`` (DAG id) and ``omnisend_<id>`` (pool) stay well under 250.
MAX_STORE_ID_LENGTH: Final = 100
_STORE_ID = re.compile(STORE_ID_PATTERN)


def check_store_id(store_id: object, *, purpose: str = "name a store") -> str:
    """Return ``store_id`` when it follows the store-id rule, else raise :class:`OmnisendConfigError`.

    Lowercase letters, digits and ``_`` (:data:`STORE_ID_PATTERN`), at most :data:`MAX_STORE_ID_LENGTH`
    characters: the id is a folder name, part of a DAG id and a pool name, and part of every eventID's
    name ``"{store_id}:{event_name}:{source_key}"``, where a colon would make it ambiguous.

    :param purpose: what the id is for, in the message (``"name a staging folder"``).
    """
    if not isinstance(store_id, str) or not _STORE_ID.fullmatch(store_id):
        suggestion = re.sub(r"[^a-z0-9_]+", "_", str(store_id).lower()).strip("_") or "my_store"
        raise OmnisendConfigError(
            f"store_id {store_id!r} cannot {purpose}: use lowercase letters, digits and underscores only "
            f"(pattern {STORE_ID_PATTERN}), e.g. {suggestion[:MAX_STORE_ID_LENGTH]!r}"
        )
    if len(store_id) > MAX_STORE_ID_LENGTH:
        raise OmnisendConfigError(
            f"store_id {store_id[:20]!r}... is {len(store_id)} characters long; use at most "
            f"{MAX_STORE_ID_LENGTH}"
        )
    return store_id


def make_event_id(store_id: str, event_name: str, source_key: object) -> str:
    """The eventID of one event.

    ``uuid5(OMNISEND_EVENT_NAMESPACE, f"{store_id}:{event_name}:{source_key}")``.
    """
    return str(uuid.uuid5(OMNISEND_EVENT_NAMESPACE, f"{store_id}:{event_name}:{source_key}"))


class EventIdFactory:
    """The ids of one store's events of one name: :func:`make_event_id` with the store id checked once."""

    __slots__ = ("_event_name", "_store_id")

    def __init__(self, store_id: str, event_name: str) -> None:
        self._store_id = check_store_id(store_id)
        self._event_name = event_name

    def __call__(self, source_key: object) -> str:
        return make_event_id(self._store_id, self._event_name, source_key)
