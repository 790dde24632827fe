"""Validate Omnisend order events: the verdict on one event, from the shipped schemas and the eventTime rule.

:class:`EventValidator` judges an event in two steps. The compiled screen
(:mod:`~airflow_omnisend.events.screen`) answers whether the schema holds; only an event it refuses is
explained by ``jsonschema``, the reference validator (:mod:`~airflow_omnisend.events.explanations`),
which names every error with a JSON path, a message and a stable reason code. A differential property
test holds the two to the same verdict.

What JSON Schema cannot say is one Python post-check, run the same way on both paths: the eventTime is a
real instant (no month 13, Feb 30 or offset minute 60) that is not in the future, nor younger than
``min_age`` (Omnisend de-duplicates only *historic* events). The eventTime may be in any form Omnisend's
events contract accepts (:func:`~airflow_omnisend.events.timefmt.read_event_time`); the verdict carries
its canonical UTC string, which is what is sent.

Warnings do not stop an event; they name the recommended properties it lacks, above all ``totalPrice``,
without which Omnisend's revenue reporting ignores the order. Streaming a whole NDJSON file through the
validator is :func:`~airflow_omnisend.events.ndjson_validation.validate_ndjson`; how the pieces relate is
in docs/validation.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_omnisend.events.explanations import (
    Issue,
    explain_schema,
    not_an_object,
    unknown_event_name,
)
from airflow_omnisend.events.names import CANCELED, EVENT_NAMES, FULFILLED, PAID, PLACED, REFUNDED
from airflow_omnisend.events.schema import line_item_screen, schema_documents
from airflow_omnisend.events.screen import inlined_screen, passes
from airflow_omnisend.events.timefmt import (
    DEFAULT_MIN_EVENT_AGE,
    EARLIEST_EVENT_TIME,
    InstantError,
    read_event_time,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_MIN_EVENT_AGE",
    "RECOMMENDED_PROPERTIES",
    "EventValidator",
    "EventVerdict",
    "Issue",
]

#: eventName -> (property, warning code): recommended ``properties`` whose absence is a warning. Kept
#: small on purpose: a warning that fires on every event is noise. Omnisend's own example (the seed
#: fixture) lacks only totalPrice.
RECOMMENDED_PROPERTIES: dict[str, tuple[tuple[str, str], ...]] = {
    PLACED: (("totalPrice", "missing_total_price"), ("lineItems", "missing_line_items")),
    PAID: (("totalPrice", "missing_total_price"),),
    FULFILLED: (("totalPrice", "missing_total_price"),),
    CANCELED: (("totalPrice", "missing_total_price"), ("cancelReason", "missing_cancel_reason")),
    REFUNDED: (
        ("totalPrice", "missing_total_price"),
        ("totalRefundedAmount", "missing_total_refunded_amount"),
    ),
}
_WARNING_WHY = {
    "totalPrice": "Omnisend needs it for revenue reporting",
    "lineItems": "product-based segments and reports need the ordered products",
    "cancelReason": "the cancellation flow and segments show the reason",
    "totalRefundedAmount": "revenue reports subtract the refunded amount",
}

#: The schema's own eventTime pattern; ``fullmatch`` has no trailing-newline loophole.
_EVENT_TIME_RE = re.compile(schema_documents()["defs.json"]["$defs"]["eventTime"]["pattern"])


@dataclass(frozen=True, slots=True)
class EventVerdict:
    """The outcome for one event: any error rejects it; warnings are counted, the event is still sent.

    ``event_instant`` is the eventTime of an event without errors as an aware datetime and
    ``event_time`` its canonical UTC string (what is sent, and what eventID + eventTime de-duplication
    sees; ``None`` for a rejected event): derived from the event, so they take no part in comparing two
    verdicts.
    """

    errors: list[Issue]
    warnings: list[Issue]
    event_instant: datetime | None = field(default=None, compare=False)
    event_time: str | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return not self.errors


class EventValidator:
    """Checks order events against the shipped schemas plus the eventTime post-check.

    :param now: the instant "the future" starts at (timezone-aware); default: when the validator is
        made, so one run judges every event against the same instant.
    :param min_age: an event must be at least this old (``eventTime <= now - min_age``). Omnisend
        de-duplicates on eventID + eventTime only for historic events; this keeps a backfill away from
        events that could still count as real-time.
    """

    def __init__(self, now: datetime | None = None, min_age: timedelta = timedelta(0)) -> None:
        if now is None:
            now = datetime.now(UTC)
        elif now.utcoffset() is None:
            raise ValueError(
                f"EventValidator(now={now!r}): now must be timezone-aware, e.g. datetime.now(UTC)"
            )
        if min_age < timedelta(0):
            raise ValueError(f"EventValidator(min_age={min_age!r}): min_age must not be negative")
        self.now = now
        self.min_age = min_age
        self._cutoff = now - min_age
        self._screens: dict[str, Callable[[Any], bool]] = {
            name: inlined_screen(name).is_valid for name in EVENT_NAMES
        }
        self._line_item_ok = line_item_screen().is_valid
        self._warnings: dict[str, tuple[tuple[str, Issue], ...]] = {
            name: tuple((prop, _warning(prop, code)) for prop, code in props)
            for name, props in RECOMMENDED_PROPERTIES.items()
        }

    # -- the full check ---------------------------------------------------------------------------

    def check(self, event: Any) -> EventVerdict:
        """Errors (schema + eventTime post-check) and warnings for one event."""
        if type(event) is not dict:
            return EventVerdict([not_an_object(event)], [])
        name = event.get("eventName")
        if type(name) is not str or (screen := self._screens.get(name)) is None:
            return EventVerdict([unknown_event_name(event)], [])
        if passes(screen, event):
            instant, canonical, errors = self._judge_time(event["eventTime"])
            return EventVerdict(errors, self._missing_recommended(name, event), instant, canonical)
        errors = self._explain_known(name, event)
        time_value = event.get("eventTime")
        if type(time_value) is str and not any(e.path == "eventTime" for e in errors):
            errors.extend(self._judge_time(time_value)[2])
        return EventVerdict(errors, self._missing_recommended(name, event))

    def _missing_recommended(self, name: str, event: dict[str, Any]) -> list[Issue]:
        props = event.get("properties")
        if type(props) is not dict:
            return []
        return [issue for prop, issue in self._warnings[name] if prop not in props]

    # -- the two schema verdicts (the differential test compares these) -------------------------------

    def screen_is_valid(self, event: Any) -> bool:
        """The compiled validator's verdict on the schema alone (no eventTime post-check)."""
        if type(event) is not dict or type(event.get("eventName")) is not str:
            return False
        screen = self._screens.get(event["eventName"])
        return screen is not None and screen(event)

    def explain(self, event: Any) -> list[Issue]:
        """The reference validator's schema errors (no eventTime post-check); empty when the schema holds."""
        if type(event) is not dict:
            return [not_an_object(event)]
        name = event.get("eventName")
        if type(name) is not str or name not in self._screens:
            return [unknown_event_name(event)]
        return self._explain_known(name, event)

    def _explain_known(self, name: str, event: dict[str, Any]) -> list[Issue]:
        return explain_schema(name, event, self._line_item_ok)

    # -- the shared post-check ---------------------------------------------------------------------

    def post_check(self, event: Any) -> list[Issue]:
        """The checks JSON Schema cannot express, for an event whose eventTime the schema accepts."""
        value = event.get("eventTime") if type(event) is dict else None
        if type(value) is not str or not _EVENT_TIME_RE.fullmatch(value):
            return []  # missing or malformed: the schema reports it
        return self._judge_time(value)[2]

    def _judge_time(self, value: str) -> tuple[datetime | None, str | None, list[Issue]]:
        """``(instant, canonical string, [])`` for an eventTime (already matching the schema's pattern)
        that is a real instant old enough, else ``(None, None, [the error])``."""
        read = _read_event_time(value)
        if isinstance(read, Issue):
            return None, None, [read]
        instant, canonical = read
        if instant < EARLIEST_EVENT_TIME:
            message = (
                f"{value!r} is before {EARLIEST_EVENT_TIME.date()}: such dates are a source's placeholder "
                "(0001-01-01, 1900-01-01, 1970-01-01), not a purchase; fix the row's date"
            )
            return None, None, [Issue("eventTime", message, "event_time_too_old")]
        if instant <= self._cutoff:
            return instant, canonical, []
        if instant > self.now:
            message = (
                f"{value!r} is in the future (now is {self.now.isoformat()}): a backfill sends only "
                "events that have happened"
            )
            return None, None, [Issue("eventTime", message, "event_time_future")]
        message = (
            f"{value!r} is younger than the minimum age {self.min_age} (cutoff "
            f"{self._cutoff.isoformat()}): Omnisend de-duplicates only historic events"
        )
        return None, None, [Issue("eventTime", message, "event_time_too_recent")]


def _warning(prop: str, code: str) -> Issue:
    return Issue(f"properties.{prop}", f"recommended property {prop} is missing: {_WARNING_WHY[prop]}", code)


def _read_event_time(value: str) -> tuple[datetime, str] | Issue:
    """``(instant, canonical string)`` of an eventTime (one matching the schema's pattern), or the error
    saying why there is none.

    :func:`~airflow_omnisend.events.timefmt.read_event_time` is the one eventTime rule: it also refuses
    the few texts the pattern lets through that name no real time (offsets beyond ±14:59, years outside
    0002-9998, dates and times that do not exist).
    """
    try:
        return read_event_time(value)
    except InstantError as exc:
        return Issue("eventTime", str(exc), "event_time_invalid")
