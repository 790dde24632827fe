"""Deterministic event ids.

Omnisend de-duplicates historic events on ``eventID`` + ``eventTime``, so a rerun of a day must produce
the very same ids: an id is a UUIDv5 over a fixed namespace and ``"{store_id}:{event_name}:{source_key}"``
(``source_key`` is the order id, or the refund id for ``order refunded``). The store id is part of the
name, so two stores never share an id, even when their order ids collide.

:class:`EventIdFactory` computes exactly ``uuid.uuid5`` but about three times faster: it hashes the
namespace and the ``"{store_id}:{event_name}:"`` prefix once and only feeds the key per event (this runs
once per extracted event).
"""

from __future__ import annotations

import hashlib
import uuid

from airflow_omnisend.exceptions import OmnisendConfigError

#: Fixed namespace of every eventID this provider makes. Never change it: every id would change with it,
#: and a rerun would then duplicate a store's history in Omnisend.
OMNISEND_EVENT_NAMESPACE = uuid.UUID("6f1c2b8e-3d4a-5e9f-8a7b-0c1d2e3f4a5b")


def check_store_id(store_id: str) -> str:
    """Return ``store_id`` when it can name a store in event ids, else raise :class:`OmnisendConfigError`.

    A colon is refused so that ``"{store_id}:{event_name}:{source_key}"`` can be split back unambiguously:
    with it, store ``"a:placed order"`` could produce the same name as store ``"a"``.
    """
    if not isinstance(store_id, str) or not store_id.strip():
        raise OmnisendConfigError(f"store_id must be a non-empty string, got {store_id!r}")
    if ":" in store_id:
        raise OmnisendConfigError(
            f"store_id {store_id!r} contains ':', which would make event ids ambiguous; "
            "use letters, digits, '-', '_' or '.'"
        )
    return store_id


def make_event_id(store_id: str, event_name: str, source_key: object) -> str:
    """The eventID of one event.

    ``uuid5(OMNISEND_EVENT_NAMESPACE, f"{store_id}:{event_name}:{source_key}")``; the reference that
    :class:`EventIdFactory` is tested against.
    """
    return str(uuid.uuid5(OMNISEND_EVENT_NAMESPACE, f"{store_id}:{event_name}:{source_key}"))


class EventIdFactory:
    """Makes the ids of one store's events of one name; equal to :func:`make_event_id`, only faster."""

    __slots__ = ("_prefix",)

    def __init__(self, store_id: str, event_name: str) -> None:
        check_store_id(store_id)
        prefix = hashlib.sha1(OMNISEND_EVENT_NAMESPACE.bytes, usedforsecurity=False)
        prefix.update(f"{store_id}:{event_name}:".encode())
        self._prefix = prefix

    def __call__(self, source_key: object) -> str:
        digest = self._prefix.copy()
        digest.update((source_key if type(source_key) is str else str(source_key)).encode())
        h = digest.hexdigest()
        # RFC 4122 version 5 (high nibble of byte 6) and variant 10xx (high bits of byte 8).
        return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


#: hex digit -> the same digit with its two high bits set to the RFC 4122 variant ``10``.
_VARIANT = {d: format(8 | (int(d, 16) & 3), "x") for d in "0123456789abcdef"}
