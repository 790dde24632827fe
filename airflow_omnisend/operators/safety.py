"""OmnisendAutomationSafetyOperator: nothing is sent while an enabled automation could fire on it.

Historic order events look like new orders to Omnisend's automations: an enabled "order confirmation"
flow triggered by ``placed order`` would email every customer of the backfill about an order they placed
years ago. Before a partition is planned and sent, this task pages through the brand's *enabled*
automations (``GET /api/automations?isEnabled=true``) and judges each one
(:mod:`airflow_omnisend.events.automation_risk`): it blocks - fails without retrying - on every one
the imported data can start (a trigger on an imported event name or on one Omnisend derives from it,
a segment-entry trigger, a shape it does not know), naming each by name and id with why, and warns
(log and report) on those it can change while they run (exit conditions, audience filters and split
blocks reading order data, other origins, names in another case). ``automation_check.json`` lists
every automation considered with its verdict.

When the check cannot be made (401, 403 - the key lacks ``automations.read`` -, 404 - an API root
without the 2026 automations endpoint -, 5xx after the hook's retries, no response, any other error),
that counts as a risk and blocks too, saying why - except an outage (5xx or 429 after the hook's
retries, no response): it holds the partition the same way but raises the retryable
:class:`~airflow_omnisend.exceptions.OmnisendAutomationCheckUnavailableError`, since another attempt may
get the answer; a person need not rerun the day. The only way past a block is
``acknowledge_automations``: the reason, in words, why the risk is accepted. It is logged and kept in
``automation_check.json`` (and so in the report).

Independently, the task refuses a partition whose newest valid event is in the future or younger than
``min_event_age``: Omnisend de-duplicates only historic events, and a too-recent event may still be
arriving through the shop's live integration. An acknowledgement does not lift this; lower
``min_event_age`` explicitly if that is really wanted.

A block's message starts with one short line, ``BLOCKED <period>: <what>; <how to proceed>`` (kept
as ``summary``), then where it happened and the detail, one automation a line: Airflow's log view
cuts long lines at the window's width until Wrap is on.

How the block avoids retries: it raises :class:`~airflow_omnisend.operators._failures.AutomationRiskFailure`,
which is both an ``OmnisendAutomationRiskError`` (the provider's retry policy answers FAIL for it) and an
``AirflowFailException`` (the task runner fails the task before it looks at ``retries`` or any retry
policy).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from airflow_omnisend.approvals import automation_set, load_approval
from airflow_omnisend.events.automation_risk import IMPORT_ORIGIN, AutomationVerdict, assess_automations
from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.timefmt import DEFAULT_MIN_EVENT_AGE, parse_instant
from airflow_omnisend.exceptions import (
    OmnisendAPIError,
    OmnisendAuthError,
    OmnisendAutomationCheckUnavailableError,
    OmnisendConfigError,
    OmnisendError,
    OmnisendNotFoundError,
    OmnisendPartitionHeldError,
    OmnisendRateLimitError,
    OmnisendServerError,
    OmnisendTransportError,
)
from airflow_omnisend.operators._failures import AutomationRiskFailure
from airflow_omnisend.operators.base import OmnisendPartitionBaseOperator
from airflow_omnisend.operators.links import OmnisendAutomationsLink, OmnisendStoreDashboardLink
from airflow_omnisend.staging import utc_timestamp

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_omnisend.hooks._pacing import RetryConfig
    from airflow_omnisend.hooks.omnisend import OmnisendHook
    from airflow_omnisend.staging import PartitionStaging

__all__ = [
    "MIN_ACKNOWLEDGEMENT_CHARS",
    "OmnisendAutomationSafetyOperator",
    "check_acknowledgement",
]

MIN_ACKNOWLEDGEMENT_CHARS = 10
#: words that acknowledge without saying why (compared lower-case, without trailing punctuation)
_NOT_A_REASON = frozenset(
    {
        "y", "yes", "yep", "yeah", "true", "ok", "okay", "k", "1", "ack", "acknowledged", "acknowledge",
        "sure", "confirm", "confirmed", "agree", "i agree", "accept", "accepted", "fine", "go", "proceed",
        "yes i know", "i know", "whatever", "n/a", "none", "-",
    }
)  # fmt: skip
#: how Jinja renders a missing/None param: treated as "no acknowledgement"
_RENDERED_NONE = "None"
_OUTCOMES = ("passed", "blocked", "acknowledged", "approved", "awaiting_approval")
#: the outcomes after which a partition's events may be planned and sent; the others hold it back
CLEARED_OUTCOMES = frozenset({"passed", "acknowledged", "approved"})
APPROVAL_MODES = ("none", "ui")
#: failures to check that pass with time: the partition is held and the task retried, not blocked
_OUTAGES = (OmnisendServerError, OmnisendTransportError, OmnisendRateLimitError)
#: how many automations a block's first line names, and how much of each name
_HEADLINE_NAMES = 2
_HEADLINE_NAME_CHARS = 24


def check_acknowledgement(value: object, owner: str = "OmnisendAutomationSafetyOperator") -> str | None:
    """The acknowledgement as one line of text, ``None`` when none is given; a useless one is refused.

    ``None`` and the text ``"None"`` (what ``"{{ params.x }}"`` renders for a missing param) mean "no
    acknowledgement". Anything else must say, in words, why the risk is accepted: an empty or blank text,
    fewer than :data:`MIN_ACKNOWLEDGEMENT_CHARS` characters, or a bare "yes"/"true"/"ok" is refused with
    :class:`OmnisendConfigError`.
    """
    if value is None or value == _RENDERED_NONE:
        return None
    example = (
        "e.g. acknowledge_automations='Order confirmation flow 65f0... is disabled by hand for the "
        "backfill (Ann, 2026-03-02)'"
    )
    if not isinstance(value, str):
        raise OmnisendConfigError(
            f"{owner}: acknowledge_automations must be the reason in words why the automation risk is "
            f"accepted, not {type(value).__name__} {value!r}; {example}"
        )
    text = " ".join(value.split())
    if not text:
        raise OmnisendConfigError(
            f"{owner}: acknowledge_automations is empty; leave it unset (None) to keep the check, or "
            f"write why the risk is accepted, {example}"
        )
    if text.lower().rstrip(".!?") in _NOT_A_REASON:
        raise OmnisendConfigError(
            f"{owner}: acknowledge_automations={value!r} says yes but not why; an acknowledgement must be "
            f"the reason in words (it goes into the report), {example}"
        )
    if len(text) < MIN_ACKNOWLEDGEMENT_CHARS:
        raise OmnisendConfigError(
            f"{owner}: acknowledge_automations={value!r} is too short to be a reason (at least "
            f"{MIN_ACKNOWLEDGEMENT_CHARS} characters); {example}"
        )
    return text


def explain_check_error(error: BaseException, conn_id: str) -> str:
    """Why the automation check could not be made, and what fixes it."""
    if isinstance(error, OmnisendAuthError) and error.status == 403:
        return (
            f"Omnisend refused to list automations (403) on connection {conn_id!r}: the API key lacks the "
            f"automations.read permission ({error}). Add the permission to the key"
        )
    if isinstance(error, OmnisendAuthError):
        return (
            f"Omnisend refused the credentials ({error.status}) on connection {conn_id!r}: the key is wrong "
            "or was revoked. Check the connection's password (a new key if it was revoked)"
        )
    if isinstance(error, OmnisendNotFoundError):
        return (
            f"GET /api/automations does not exist at the API root of connection {conn_id!r} (404: {error}). "
            "The automations check needs Omnisend's 2026 API; check the connection's host"
        )
    if isinstance(error, OmnisendServerError):
        return (
            f"Omnisend kept failing ({error.status}) while listing automations, after the hook's retries "
            f"({error}). Try again later"
        )
    if isinstance(error, OmnisendTransportError):
        return f"no usable answer from Omnisend while listing automations ({error}). Try again later"
    if isinstance(error, OmnisendAPIError):
        return f"Omnisend answered {error.status} while listing automations ({error})"
    if isinstance(error, OmnisendError):
        return f"the automations could not be listed: {error}"
    return f"the automations could not be listed: {type(error).__name__}: {error}"


def _short_id(ident: str) -> str:
    """The end of an id: Omnisend's ids start with their creation time, so they differ at the end."""
    return ident if len(ident) <= 9 else f"...{ident[-6:]}"


def _short_name(name: str) -> str:
    return name if len(name) <= _HEADLINE_NAME_CHARS else f"{name[: _HEADLINE_NAME_CHARS - 3]}..."


def _risk_headline(matches: Sequence[AutomationVerdict], check_error: BaseException | None) -> str:
    """The automation risk in a few words and the ways forward: the block's first line."""
    if check_error is not None:
        return (
            f"the automation check could not be made ({_short_check_error(check_error)}); fix that or "
            "acknowledge to proceed"
        )
    named = "; ".join(f"{_short_name(m.name)!r}, {_short_id(m.id)}" for m in matches[:_HEADLINE_NAMES])
    if len(matches) > _HEADLINE_NAMES:
        named += f" and {len(matches) - _HEADLINE_NAMES} more"
    noun = "automation" if len(matches) == 1 else "automations"
    return f"{len(matches)} {noun} ({named}) could message customers; acknowledge or approve to proceed"


def _risk_detail(matches: Sequence[AutomationVerdict], risk: str, fix: str) -> list[str]:
    """The detail lines under the first line: the risk (one automation a line), then the fix."""
    if not matches:
        return [f"{risk}.", f"{fix}."]
    return [
        f"{len(matches)} enabled automation(s) could message customers from the imported historic events:",
        *(f"  - {m.describe()}" for m in matches),
        f"{fix}.",
    ]


def _short_check_error(error: BaseException) -> str:
    """Why the check could not be made, in a few words (the detail lines say it in full)."""
    if isinstance(error, OmnisendAuthError) and error.status == 403:
        return "403: the key lacks automations.read"
    if isinstance(error, OmnisendAPIError):
        return f"Omnisend answered {error.status}"
    if isinstance(error, OmnisendTransportError):
        return "no answer from Omnisend"
    return type(error).__name__


def _time_headline(record: Mapping[str, Any]) -> str:
    event_time = record["event_time"]
    return (
        f"the newest event ({event_time['newest']}) is too recent to send; run it after "
        f"{event_time['ready_at']}"
    )


def held_message(partition: PartitionStaging, headline: str, *detail: str, conn_id: str | None = None) -> str:
    """The text of a partition held back: ``BLOCKED <period>: <headline>`` first (the short line a person
    reads first), then where it happened, then the detail line by line."""
    where = f"store {partition.store_id}, partition {partition.day}"
    if conn_id is not None:
        where += f", connection {conn_id}"
    return "\n".join((f"BLOCKED {partition.day}: {headline}", where, *detail))


class OmnisendAutomationSafetyOperator(OmnisendPartitionBaseOperator):
    """Block the partition while an enabled automation could fire on its events (see the module).

    ``store_id``, ``partition``, ``staging``: see :class:`OmnisendPartitionBaseOperator`.

    :param omnisend_conn_id: the ``omnisend`` connection of the brand. Templated.
    :param acknowledge_automations: the reason, in words, why the risk is accepted: the only way past a
        block (also past a check that could not be made). Refused when empty, shorter than
        :data:`MIN_ACKNOWLEDGEMENT_CHARS` characters, or a bare "yes"/"true"/"ok". ``None`` (or the
        rendered text ``"None"`` of a missing param) means no acknowledgement. Templated.
    :param min_event_age: the newest valid event must be at least this old; ``timedelta(0)`` still
        refuses events in the future.
    :param event_names: the event names to check; default: the names with valid events in the
        partition's ``validation.json``. Templated.
    :param api_retry: the hook's retry settings for listing automations (default: the hook's).
    :param validated: the validate task's manifest (``validate.output``): ``validation.json`` and
        ``valid.ndjson`` are read where it names them. Templated.

    Writes ``automation_check.json`` into the partition: ``{"store_id", "partition", "outcome"
    ("passed" | "blocked" | "acknowledged"), "reason", "summary" (a block's first line, else None),
    "acknowledgement", "checked_at", "event_names",
    "origin", "automations_checked", "automations": [{"id", "name", "verdict", "reasons", "event",
    "origin", "updatedAt"}], "automations_matched": [{"id", "name", "event", "origin", "reasons"}],
    "warnings", "check_error", "event_time": {"newest", "min_event_age_seconds", "cutoff",
    "too_recent", "ready_at" (when too recent)}, "omnisend_conn_id"}``.

    Returns (XCom) a staging manifest ``{"root", "store_id", "day", "files": {"automation_check"},
    "counts": {"automations_checked", "automations_matched", "warnings"}, "hashes": {}, "outcome"}``.
    Raises :class:`~airflow_omnisend.operators._failures.AutomationRiskFailure` when blocked.
    """

    template_fields: Sequence[str] = (
        *OmnisendPartitionBaseOperator.template_fields,
        "omnisend_conn_id",
        "acknowledge_automations",
        "event_names",
        "validated",
    )
    ui_color = "#ffe0e0"
    operator_extra_links = (OmnisendAutomationsLink(), OmnisendStoreDashboardLink())

    def __init__(
        self,
        *,
        omnisend_conn_id: str = "omnisend_default",
        acknowledge_automations: str | None = None,
        min_event_age: timedelta = DEFAULT_MIN_EVENT_AGE,
        event_names: Sequence[str] | None = None,
        api_retry: RetryConfig | None = None,
        validated: Mapping[str, Any] | None = None,
        approval: str = "none",
        approval_valid_for: timedelta = timedelta(days=30),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        if approval not in APPROVAL_MODES:
            raise OmnisendConfigError(f"{owner}: approval must be one of {APPROVAL_MODES}, got {approval!r}")
        self.approval = approval
        self.approval_valid_for = approval_valid_for
        self.omnisend_conn_id = omnisend_conn_id
        self.acknowledge_automations = acknowledge_automations
        self.min_event_age = min_event_age
        self.event_names = event_names
        self.api_retry = api_retry
        self.validated = validated
        if not isinstance(min_event_age, timedelta) or min_event_age < timedelta(0):
            raise OmnisendConfigError(
                f"{owner}: min_event_age must be a timedelta >= 0 (default 1 hour), got {min_event_age!r}"
            )
        if not (isinstance(acknowledge_automations, str) and "{{" in acknowledge_automations):
            check_acknowledgement(acknowledge_automations, owner)  # fail at parse time, not mid-backfill
        if event_names is not None and not (isinstance(event_names, str) and "{{" in event_names):
            self._names_given()

    def get_hook(self) -> OmnisendHook:
        from airflow_omnisend.hooks.omnisend import OmnisendHook  # the HTTP stack: only when run

        return OmnisendHook(self.omnisend_conn_id, retry=self.api_retry)

    # -- inputs --------------------------------------------------------------------------------------

    def _names_given(self) -> list[str]:
        names = self.event_names
        if isinstance(names, str) or not all(isinstance(n, str) and n.strip() for n in names or ()):
            raise OmnisendConfigError(
                f"{type(self).__name__}: event_names must be a list of event names such as "
                f"{list(EVENT_NAMES[:2])}, got {names!r}"
            )
        return sorted(set(names or ()))

    def _imported_names(self, validation: Mapping[str, Any] | None) -> list[str]:
        if self.event_names is not None:
            return self._names_given()
        assert validation is not None
        by_name = validation.get("by_event_name") or {}
        return sorted(
            name
            for name, counts in by_name.items()
            if name in EVENT_NAMES and isinstance(counts, dict) and counts.get("valid", 0) > 0
        )

    def _newest_event_time(
        self, partition: PartitionStaging, validation: Mapping[str, Any] | None
    ) -> str | None:
        """The latest valid eventTime: from validation.json, else by reading valid.ndjson (if any)."""
        if validation is not None and "last_event_time" in validation:
            value = validation["last_event_time"]
            return value if isinstance(value, str) else None
        valid = self.upstream_file(partition, self.validated, "valid")
        if not valid.exists():
            return None
        newest: tuple[datetime, str] | None = None
        with partition.local_copy(valid) as local, open(local, "rb") as src:
            for raw in src:
                if raw.strip():
                    text = orjson.loads(raw)["eventTime"]
                    instant = parse_instant(text)
                    if newest is None or instant > newest[0]:
                        newest = (instant, text)
        return newest[1] if newest else None

    # -- the check -----------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        partition = self.partition_staging(self.validated)
        now = datetime.now(UTC)
        record = self._new_record(partition, now)
        try:
            acknowledgement = check_acknowledgement(self.acknowledge_automations, type(self).__name__)
        except OmnisendConfigError as err:
            headline = "acknowledge_automations is not a reason in words; write why, or leave it unset"
            raise self._block(partition, record, str(err), headline) from None
        record["acknowledgement"] = acknowledgement
        validation: dict[str, Any] | None = None
        validation_path = self.upstream_file(partition, self.validated, "validation")
        try:
            if self.event_names is None or validation_path.exists():
                validation = partition.read_json(validation_path)  # says which step writes it if missing
        except OmnisendError as err:
            reason = f"cannot tell which events will be imported: {err}"
            headline = "cannot tell which events will be imported (validation.json); run validate first"
            raise self._block(partition, record, reason, headline) from None
        names = self._imported_names(validation)
        record["event_names"] = names
        newest = self._newest_event_time(partition, validation)
        record["event_time"]["newest"] = newest
        time_problem = self._time_problem(newest, now, record)
        matches, check_error = self._check_automations(names, record)
        for warning in record["warnings"]:
            self.log.warning("Automation warning: %s", warning)
        risk, fix = self._risk(matches, check_error, record)
        if isinstance(check_error, _OUTAGES) and time_problem is None and acknowledgement is None:
            raise self._hold(partition, record, check_error)
        if time_problem is not None:  # no acknowledgement lifts it
            also = f" Also: {risk}." if risk is not None else ""
            headline = _time_headline(record)
            raise self._block(partition, record, f"{time_problem}.{also}", headline, check_error)
        if risk is not None and acknowledgement is None:
            if matches and check_error is None and self.approval == "ui":
                return self._approval_route(partition, record, risk)
            headline = _risk_headline(matches, check_error)
            detail = _risk_detail(matches, risk, fix)
            raise self._block(partition, record, f"{risk}. {fix}", headline, check_error, detail)
        if risk is not None:
            record["outcome"] = "acknowledged"
            record["reason"] = f"{risk}. Acknowledged: {acknowledgement}"
            self.log.warning(
                "%s %s: %s. Going on because acknowledge_automations says: %s",
                partition.store_id, partition.day, risk, acknowledgement,
            )  # fmt: skip
        else:
            self._passed(partition, record, names, acknowledgement)
        return self._finish(partition, record)

    # -- the steps of the check ----------------------------------------------------------------------

    def _new_record(self, partition: PartitionStaging, now: datetime) -> dict[str, Any]:
        """``automation_check.json`` before the check: blocked until shown otherwise."""
        return {
            "store_id": partition.store_id,
            "partition": partition.day,
            "outcome": "blocked",
            "reason": None,
            "summary": None,
            "acknowledgement": None,
            "checked_at": utc_timestamp(now),
            "event_names": [],
            "origin": IMPORT_ORIGIN,
            "automations_checked": None,
            "automations": [],
            "automations_matched": [],
            "warnings": [],
            "check_error": None,
            "event_time": {
                "newest": None,
                "min_event_age_seconds": self.min_event_age.total_seconds(),
                "cutoff": utc_timestamp(now - self.min_event_age),
                "too_recent": False,
            },
            "omnisend_conn_id": self.omnisend_conn_id,
        }

    def _block(
        self,
        partition: PartitionStaging,
        record: dict[str, Any],
        reason: str,
        headline: str,
        cause: BaseException | None = None,
        detail: Sequence[str] | None = None,
        *,
        failure: Callable[[str], OmnisendPartitionHeldError] = AutomationRiskFailure,
    ) -> OmnisendPartitionHeldError:
        """Record the block in ``automation_check.json`` and return the failure to raise.

        Its message is ``BLOCKED <period>: <headline>`` on the first line, then where and the detail
        (``reason``, or ``detail`` line by line). A provider error that caused it is already told in the
        reason, so it is not chained (Airflow would log its traceback too); anything else is."""
        message = held_message(partition, headline, *(detail or (reason,)), conn_id=self.omnisend_conn_id)
        record["outcome"], record["reason"], record["summary"] = "blocked", reason, message.partition("\n")[0]
        self._finish(partition, record)
        error = failure(message)
        if cause is not None and not isinstance(cause, OmnisendError):
            error.__cause__ = cause
        else:
            error.__suppress_context__ = True
        return error

    def _hold(
        self, partition: PartitionStaging, record: dict[str, Any], cause: BaseException
    ) -> OmnisendPartitionHeldError:
        """Record the partition as blocked for now and return the retryable error to raise: Omnisend
        did not answer the check, which says nothing about the automations."""
        headline = (
            f"the automation check could not be made ({_short_check_error(cause)}); nothing is sent, "
            "the task is retried"
        )
        reason = (
            f"{record['check_error']}. Nothing is planned or sent until the check is made; the task is "
            "retried (an acknowledgement would skip the check)"
        )
        retry_after = cause.retry_after if isinstance(cause, OmnisendRateLimitError) else None
        unavailable = partial(OmnisendAutomationCheckUnavailableError, retry_after=retry_after)
        return self._block(partition, record, reason, headline, failure=unavailable)

    def _time_problem(self, newest: str | None, now: datetime, record: dict[str, Any]) -> str | None:
        """Why the newest valid event is too recent to send (in the future or younger than
        ``min_event_age``), or ``None``."""
        if newest is None:
            return None
        instant = parse_instant(newest)
        if instant <= now - self.min_event_age:
            return None
        record["event_time"]["too_recent"] = True
        ready_at = instant + self.min_event_age
        record["event_time"]["ready_at"] = utc_timestamp(ready_at)
        what = "in the future" if instant > now else f"younger than min_event_age={self.min_event_age}"
        return (
            f"the newest valid event ({newest}) is {what} (now {utc_timestamp(now)}): Omnisend "
            "de-duplicates only historic events, and recent ones may still arrive through the "
            f"shop's live integration. Run this partition after {utc_timestamp(ready_at)}"
        )

    def _check_automations(
        self, names: list[str], record: dict[str, Any]
    ) -> tuple[list[AutomationVerdict], BaseException | None]:
        """List the enabled automations and match them to ``names``; any failure to check is returned
        (it counts as a risk). Nothing is asked when no event will be imported."""
        if not names:
            return [], None
        hook: OmnisendHook | None = None
        try:
            hook = self.get_hook()
            automations = hook.list_automations(enabled=True)
        except Exception as err:  # any failure to check counts as a risk
            record["check_error"] = explain_check_error(err, self.omnisend_conn_id)
            return [], err
        finally:
            if hook is not None:
                hook.close()
        record["automations_checked"] = len(automations)
        assessment = assess_automations(automations, names)
        matches = assessment.blocking
        record["automations"] = [v.to_dict() for v in assessment.verdicts]
        record["automations_matched"] = [
            {
                "id": m.id,
                "name": m.name,
                "event": m.event,
                "origin": m.origin,
                "updatedAt": m.updated_at,
                "reasons": list(m.reasons),
            }
            for m in matches
        ]
        record["warnings"] = assessment.warnings
        return matches, None

    @staticmethod
    def _risk(
        matches: list[AutomationVerdict], check_error: BaseException | None, record: Mapping[str, Any]
    ) -> tuple[str | None, str]:
        """The automation risk in words and its fix, or ``(None, "")`` when there is none."""
        way_past = "or accept the risk with acknowledge_automations='<why, in words>'"
        if check_error is not None:
            risk = f"the automation check could not be made, which counts as a risk: {record['check_error']}"
            return risk, f"Fix that and run again, {way_past}"
        if matches:
            listed = "; ".join(m.describe() for m in matches)
            risk = (
                f"{len(matches)} enabled automation(s) could message customers from the imported "
                f"historic events: {listed}"
            )
            return risk, f"Disable them in Omnisend for the backfill and run again, {way_past}"
        return None, ""

    def _approval_route(
        self, partition: PartitionStaging, record: dict[str, Any], risk: str
    ) -> dict[str, Any]:
        """``approval: ui``: go on under a kept approval of the same automations, else ask a person
        (the ``automation_approval`` task reads ``awaiting_approval`` and waits for the answer)."""
        pairs = automation_set(record["automations_matched"])
        kept = load_approval(partition)
        if kept is not None and kept.holds_for(pairs):
            record["outcome"], record["approval"] = "approved", {**kept.to_dict(), "kept": True}
            record["reason"] = (
                f"{risk}. Approved by {kept.approved_by} at {kept.approved_at} for these automations "
                f"(kept until {kept.expires_at}): {kept.reason}"
            )
        else:
            record["outcome"], record["approval"] = "awaiting_approval", {"automations": pairs}
            record["reason"] = f"{risk}. Waiting for a person's answer in Airflow's UI (automation_approval)"
        self.log.warning("%s %s: %s", partition.store_id, partition.day, record["reason"])
        return self._finish(partition, record)

    def _passed(
        self,
        partition: PartitionStaging,
        record: dict[str, Any],
        names: list[str],
        acknowledgement: str | None,
    ) -> None:
        record["outcome"] = "passed"
        record["reason"] = (
            f"none of {record['automations_checked']} enabled automation(s) can be started by the "
            f"imported {', '.join(repr(n) for n in names)} (origin {IMPORT_ORIGIN!r}), what Omnisend "
            "derives from them, or a segment entry"
            if names
            else "no valid events: nothing will be sent"
        )
        if acknowledgement is not None:
            self.log.info("Nothing to acknowledge; the acknowledgement is recorded: %s", acknowledgement)
        self.log.info(
            "%s %s: automation check passed: %s", partition.store_id, partition.day, record["reason"]
        )

    def _finish(self, partition: PartitionStaging, record: dict[str, Any]) -> dict[str, Any]:
        assert record["outcome"] in _OUTCOMES
        partition.write_json("automation_check", record)
        manifest = partition.manifest(
            files={"automation_check": "automation_check"},
            counts={
                "automations_checked": record["automations_checked"] or 0,
                "automations_matched": len(record["automations_matched"]),
                "warnings": len(record["warnings"]),
            },
        )
        return {**manifest.to_dict(), "outcome": record["outcome"]}
