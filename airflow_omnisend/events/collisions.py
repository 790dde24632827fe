"""eventID collisions: two different events with one eventID and eventTime.

Omnisend keeps one event per (eventID, eventTime) and answers "accepted" for both, so the second event
would be lost while the report counted it as sent. :class:`CollisionIndex` finds them as the events
stream through validation: the first event of a key is kept, a later one with different bytes is
rejected (code :data:`COLLISION_CODE`) naming the line of the first. An exact repeat (same bytes) is no
collision: Omnisend de-duplicates it, which is what a repeat wants.

Memory is flat per event whatever its size: a key is kept as a 64-bit hash of (eventID, eventTime as an
instant) with a 64-bit digest of the event's bytes and its line number, in an open-addressing table of
two ``array('Q')`` and one ``array('I')`` (20 bytes a slot, at most half full: ~40 MB for a million
events; measured figures in BENCHMARKS.md). Two different keys share a 64-bit hash with a probability of
about n^2 / 2^65 (3e-8 for a million events); such a pair would be reported as a collision, never lost.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Final

from airflow_omnisend.events.explanations import Issue

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["COLLISION_CODE", "CollisionIndex"]

#: reason code of a rejected event whose (eventID, eventTime) an earlier, different event holds
COLLISION_CODE: Final = "event_id_collision"
_INITIAL_SLOTS: Final = 1 << 12


_MASK64: Final = (1 << 64) - 1


class CollisionIndex:
    """The (eventID, eventTime) keys seen so far, each with its event's digest and line number."""

    __slots__ = ("_digests", "_keys", "_lines", "_mask", "_used")

    def __init__(self, slots: int = _INITIAL_SLOTS) -> None:
        size = 1 << max(4, (slots - 1).bit_length())
        self._keys = array("Q", bytes(8 * size))
        self._digests = array("Q", bytes(8 * size))
        self._lines = array("I", bytes(4 * size))
        self._mask = size - 1
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def check(self, event_id: str, instant: datetime, content: bytes, line_no: int) -> Issue | None:
        """Record the event of ``line_no``; an :class:`Issue` when an earlier event holds its key with
        other bytes (``content``: the event's line, trimmed)."""
        # Python's own (SipHash) hashes: 64 bits, in C; salted per process, which one run never sees
        key = hash((event_id, round(instant.timestamp() * 1_000_000))) & _MASK64 or 1  # 0: empty slot
        digest = hash(content) & _MASK64 or 1
        keys, mask = self._keys, self._mask
        slot = key & mask
        while (found := keys[slot]) != 0:
            if found == key:
                if self._digests[slot] == digest:
                    return None
                return Issue(
                    "eventID",
                    f"eventID {event_id!r} with this eventTime is already used by a different event on "
                    f"line {self._lines[slot]}; Omnisend would keep only one of them. Give each event its "
                    "own eventID (or drop the duplicate)",
                    COLLISION_CODE,
                )
            slot = (slot + 1) & mask
        keys[slot] = key
        self._digests[slot] = digest
        self._lines[slot] = min(line_no, 0xFFFFFFFF)
        self._used += 1
        if 2 * self._used > len(keys):
            self._grow()
        return None

    def _grow(self) -> None:
        old = zip(self._keys, self._digests, self._lines, strict=True)
        size = 2 * len(self._keys)
        self._keys = array("Q", bytes(8 * size))
        self._digests = array("Q", bytes(8 * size))
        self._lines = array("I", bytes(4 * size))
        self._mask = mask = size - 1
        keys = self._keys
        for key, digest, line in old:
            if key == 0:
                continue
            slot = key & mask
            while keys[slot] != 0:
                slot = (slot + 1) & mask
            keys[slot] = key
            self._digests[slot] = digest
            self._lines[slot] = line
