"""``GET /api/automations``: the 2026 list with ``isEnabled``/``nameContains`` filters and cursor paging.

Cursors are opaque to clients (base64 of a position), as Omnisend's are; a client that builds or
edits one gets a 400, which is how a test notices a hook that does not treat them as opaque.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from typing import Any

from airflow_omnisend.testing.emulator.batches import new_object_id
from airflow_omnisend.testing.emulator.items import FieldError

MAX_LIMIT = 250
DEFAULT_LIMIT = 100


class AutomationQueryError(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def _encode(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"p": position}).encode()).decode().rstrip("=")


def _decode(cursor: str, name: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)["p"]
        if isinstance(position, int) and position >= 0:
            return position
    except (ValueError, KeyError, TypeError):
        pass
    raise AutomationQueryError(
        [FieldError(name, "invalid_format", f"{name} is not a cursor this API issued")]
    )


def normalise_automations(automations: Any) -> list[dict[str, Any]]:
    """A JSON list of Automation objects (or ``{"automations": [...]}``); missing ids are generated."""
    if isinstance(automations, Mapping) and "automations" in automations:
        automations = automations["automations"]
    if isinstance(automations, str | bytes) or not isinstance(automations, list | tuple):
        raise ValueError('automations must be a JSON list of Automation objects (or {"automations": [...]})')
    result = []
    for i, auto in enumerate(automations):
        if not isinstance(auto, Mapping):
            raise ValueError(f"automation #{i} must be a JSON object, got {type(auto).__name__}")
        entry = dict(auto)
        entry.setdefault("id", new_object_id())
        if not isinstance(entry.get("isEnabled", False), bool):
            raise ValueError(f"automation #{i} ({entry['id']}): isEnabled must be true or false")
        result.append(entry)
    return result


class AutomationCatalog:
    def __init__(self, automations: Any = ()) -> None:  # list, tuple or {"automations": [...]}
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = normalise_automations(automations)

    def set(self, automations: Any) -> int:
        items = normalise_automations(automations)
        with self._lock:
            self._items = items
        return len(items)

    def get(self, automation_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((a for a in self._items if a.get("id") == automation_id), None)

    def page(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The ``ListAutomationsResponse`` for these query parameters; AutomationQueryError when invalid."""
        enabled, limit, name_part = _parse_query(query)
        with self._lock:
            matches = [
                a
                for a in self._items
                if (enabled is None or a.get("isEnabled") is enabled)
                and (name_part is None or name_part.lower() in str(a.get("name", "")).lower())
            ]
        start, stop = _page_bounds(query, limit)
        page = matches[start:stop]
        end = start + len(page)
        has_more = end < len(matches)
        return {
            "automations": page,
            "paging": {
                "cursors": {
                    "after": _encode(end) if has_more else None,
                    "before": _encode(start) if start else None,
                },
                "hasMore": has_more,
                "limit": limit,
            },
        }


def _parse_query(query: Mapping[str, str]) -> tuple[bool | None, int, str | None]:
    """(``isEnabled`` filter, page size, ``nameContains``); AutomationQueryError naming each bad one."""
    errors: list[FieldError] = []
    enabled: bool | None = None
    if "isEnabled" in query:
        flag = query["isEnabled"].lower()
        if flag not in ("true", "false"):
            errors.append(FieldError("isEnabled", "invalid_type", "isEnabled must be true or false"))
        enabled = flag == "true"
    limit = _page_limit(query, errors)
    if "after" in query and "before" in query:
        errors.append(FieldError("after", "conflict", "give either after or before, not both"))
    name_part = query.get("nameContains")
    if name_part is not None and len(name_part) > 200:
        errors.append(FieldError("nameContains", "too_long", "nameContains is at most 200 characters"))
    if errors:
        raise AutomationQueryError(errors)
    return enabled, limit, name_part


def _page_limit(query: Mapping[str, str], errors: list[FieldError]) -> int:
    """The ``limit`` parameter (default :data:`DEFAULT_LIMIT`); out of range appends to ``errors``."""
    if "limit" not in query:
        return DEFAULT_LIMIT
    try:
        limit = int(query["limit"])
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        errors.append(FieldError("limit", "out_of_range", f"limit must be an integer 1-{MAX_LIMIT}"))
    return limit


def _page_bounds(query: Mapping[str, str], limit: int) -> tuple[int, int]:
    """The slice of the matches one page shows: ``limit`` after the ``after`` cursor or before ``before``."""
    if "after" in query:
        start = _decode(query["after"], "after")
        return start, start + limit
    if "before" in query:
        stop = _decode(query["before"], "before")
        return max(0, stop - limit), stop
    return 0, limit
