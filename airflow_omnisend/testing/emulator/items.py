"""The per-item checks the emulator runs when it processes a batch of events.

They are the rules Omnisend is documented (or, where undocumented, safely assumed) to enforce on one
event: a name, ``eventVersion`` and ``origin``, an RFC 3339 ``eventTime`` with an offset that is not
in the future, a contact identifier, a UUID ``eventID`` when one is given. The emulator is stricter
than Omnisend in one place on purpose: ``eventTime`` is required, because an event without it would
land on the import date, which a historic backfill must never do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

_EVENT_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CONTACT_IDENTIFIERS = ("email", "phone", "id")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of a ValidationProblem's ``errors``."""

    field: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


def parse_event_time(text: str) -> datetime | None:
    """RFC 3339 (``T`` or, as the 2026 API also accepts, a space) with ``Z`` or ``±HH:MM``; None if not.

    Fractions beyond microseconds are truncated; a missing offset is refused (the instant would be
    ambiguous). This is the API's reading, deliberately looser than the provider's own rule
    (:mod:`airflow_omnisend.events.timefmt`; see docs/testing.md).
    """
    match = _EVENT_TIME.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    try:
        if zulu:
            tz = UTC
        else:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            if int(off_m) > 59:
                return None
            tz = timezone(-offset if sign == "-" else offset)
        micro = int((frac or "0").ljust(6, "0")[:6])
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz)
    except ValueError:
        return None


def _non_empty_string(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def check_event_item(item: Any, now: datetime, future_tolerance: float = 0.0) -> list[FieldError]:
    """Every reason Omnisend would refuse this events-batch item; empty when it would accept it."""
    if not isinstance(item, dict):
        return [FieldError("", "invalid_type", "an event must be a JSON object")]
    errors = _name_errors(item)
    errors += _event_time_errors(item.get("eventTime"), now, future_tolerance)
    event_id = item.get("eventID")
    if event_id is not None and not (isinstance(event_id, str) and _UUID.fullmatch(event_id)):
        errors.append(FieldError("eventID", "invalid_format", "eventID must be a UUID"))
    errors += _contact_errors(item.get("contact"))
    properties = item.get("properties")
    if properties is not None and not isinstance(properties, dict):
        errors.append(FieldError("properties", "invalid_type", "properties must be an object"))
    return errors


def _name_errors(item: dict[str, Any]) -> list[FieldError]:
    """``eventName``, ``eventVersion`` and ``origin``: each required, each a non-empty string."""
    errors: list[FieldError] = []
    for name in ("eventName", "eventVersion", "origin"):
        value = item.get(name)
        if value is None:
            errors.append(FieldError(name, "required", f"{name} is required"))
        elif not _non_empty_string(value):
            errors.append(FieldError(name, "invalid_type", f"{name} must be a non-empty string"))
    return errors


def _event_time_errors(event_time: Any, now: datetime, future_tolerance: float) -> list[FieldError]:
    """``eventTime``: required (a historic event), RFC 3339 with an offset, not after ``now`` + tolerance."""
    if event_time is None:
        return [FieldError("eventTime", "required", "eventTime is required for historical events")]
    if not isinstance(event_time, str) or (instant := parse_event_time(event_time)) is None:
        return [FieldError("eventTime", "invalid_format", "eventTime must be RFC 3339 with Z or an offset")]
    if instant > now + timedelta(seconds=future_tolerance):
        return [FieldError("eventTime", "future", "eventTime must not be in the future")]
    return []


def _contact_errors(contact: Any) -> list[FieldError]:
    """``contact``: required, an object with at least one of :data:`CONTACT_IDENTIFIERS`."""
    if contact is None:
        return [FieldError("contact", "required", "contact is required")]
    if not isinstance(contact, dict):
        return [FieldError("contact", "invalid_type", "contact must be an object")]
    if not any(_non_empty_string(contact.get(k)) for k in CONTACT_IDENTIFIERS):
        return [FieldError("contact", "required", "contact needs at least one of email, phone, id")]
    return []
