"""Which keys the emulator accepts, changeable at runtime: a key revoked mid-backfill answers 401 from
its next request on, as Omnisend does when a user deletes a key; a new key is granted the same way.

Changes are kept in the record (``key_changes``, by SHA-256, never the key itself), so an emulator
restarted on the same ``db_path`` still refuses a revoked key and still accepts a granted one, whatever
keys its configuration names.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_omnisend.testing.emulator.config import ApiKeyGrant

if TYPE_CHECKING:
    from airflow_omnisend.testing.emulator.store import EmulatorStore

__all__ = ["KeyRing", "key_hash"]


def key_hash(key: str) -> str:
    """The full SHA-256 of a key (its first 12 characters are the request log's ``key_fingerprint``)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _keys(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if (
        isinstance(value, str)
        or not isinstance(value, Iterable)
        or not all(isinstance(k, str) for k in value)
    ):
        raise ValueError(f"{name!r} must be a list of key strings ('KEY' or 'KEY:perm1,perm2' to grant)")
    return list(value)


class KeyRing:
    """The accepted keys: those of the configuration, then the runtime changes kept in the record."""

    def __init__(self, grants: Mapping[str, ApiKeyGrant]) -> None:
        self._lock = threading.Lock()
        self._by_hash: dict[str, frozenset[str]] = {key_hash(k): g.permissions for k, g in grants.items()}
        self._store: EmulatorStore | None = None

    def attach(self, store: EmulatorStore) -> None:
        """Apply the changes an earlier run on the same record made, and record new ones there."""
        with self._lock:
            self._store = store
            for digest, permissions, revoked in store.key_changes():
                if revoked:
                    self._by_hash.pop(digest, None)
                else:
                    self._by_hash[digest] = frozenset(json.loads(permissions or "[]"))

    def get(self, secret: str) -> ApiKeyGrant | None:
        """The grant of a presented key or token, or None (401)."""
        with self._lock:
            permissions = self._by_hash.get(key_hash(secret))
        return None if permissions is None else ApiKeyGrant(secret, permissions)

    def change(self, *, revoke: Iterable[str] = (), grant: Iterable[str] = ()) -> dict[str, Any]:
        """Revoke keys, then grant keys (``KEY`` = every permission, ``KEY:perm1,perm2``). Returns
        ``{"revoked", "granted", "keys"}``: counts and the fingerprints of every accepted key."""
        revoked = _keys(revoke, "revoke")
        granted = [ApiKeyGrant.parse(spec) for spec in _keys(grant, "grant")]
        with self._lock:
            for key in revoked:
                digest = key_hash(key)
                self._by_hash.pop(digest, None)
                self._record(digest, None, revoked=True)
            for new in granted:
                digest = key_hash(new.key)
                self._by_hash[digest] = new.permissions
                self._record(digest, json.dumps(sorted(new.permissions)), revoked=False)
            accepted = sorted(digest[:12] for digest in self._by_hash)
        return {"revoked": len(revoked), "granted": len(granted), "keys": accepted}

    def fingerprints(self) -> list[str]:
        with self._lock:
            return sorted(digest[:12] for digest in self._by_hash)

    def _record(self, digest: str, permissions: str | None, *, revoked: bool) -> None:
        if self._store is not None:
            self._store.save_key_change(digest, permissions, revoked)
