"""OmnisendReportOperator: account for every extracted event of a partition, write ``report.json``.

The last task of a partition. It reads what the earlier steps left in staging - ``extract.json``,
``validation.json``, ``automation_check.json``, ``plan.json``, the receipts of the plan's bodies and
the dead-letter files - and checks the provider's central invariant: every extracted event ended in
exactly one of *accepted by Omnisend*, *rejected by validation* or *dead-lettered* (too large for any
body, or refused by Omnisend). In a dry run nothing is sent: valid events are "planned, not sent", and
that is accounted. It writes ``report.json``, logs a readable summary, and fails - without retrying,
a retry would count the same files - when anything is unaccounted for.

Only the bodies of the *current* ``plan.json`` count: a rerun of a partition may leave receipts and
dead letters of an earlier plan behind (bodies are content-addressed, so an unchanged body keeps its
receipt and is not sent again).

Trigger rule: the report is the DAG's last task, so it decides the DAG run's state. Use
``none_failed`` (the default here):

* a dry run maps the send over an empty list, so ``send`` is *skipped*; the default ``all_success``
  would skip the report too (skips propagate), ``none_failed`` runs it;
* a failed ``send`` makes the report ``upstream_failed``, so the DAG run fails and
  ``airflow backfill create --reprocess-behavior failed`` runs the day again. ``all_done`` would be
  wrong: the report would run after a failed send and, as the only leaf, could leave the run green.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, TriggerRule

from airflow_omnisend.events.chunk_plan import ChunkPlan
from airflow_omnisend.exceptions import OmnisendError, OmnisendInputError
from airflow_omnisend.faultpoints import faultpoint
from airflow_omnisend.flags import parse_flag
from airflow_omnisend.operators._failures import UnaccountedEventsFailure
from airflow_omnisend.operators.base import OmnisendPartitionBaseOperator
from airflow_omnisend.operators.links import OmnisendPeriodReportLink, OmnisendStoreDashboardLink
from airflow_omnisend.operators.receipts import PartitionReceipts, SendingRun
from airflow_omnisend.staging import utc_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_omnisend.events.chunk_plan import BodyPlan
    from airflow_omnisend.operators.receipts import BatchReceipt
    from airflow_omnisend.staging import PartitionStaging

__all__ = ["RECOMMENDED_TRIGGER_RULE", "OmnisendReportOperator", "build_report"]

RECOMMENDED_TRIGGER_RULE = TriggerRule.NONE_FAILED
_MAX_PROBLEMS = 20
#: the report counts an asset event's extra carries
_ANNOUNCED = ("events_extracted", "events_accepted", "events_rejected", "events_dead_lettered")


def _count_lines(partition: PartitionStaging, path: Any) -> int | None:
    """Non-blank lines of a staging file, ``None`` when it does not exist."""
    if not path.exists():
        return None
    with partition.local_copy(path) as local, open(local, "rb") as src:
        return sum(1 for line in src if line.strip())


def _read_optional(partition: PartitionStaging, name: str) -> dict[str, Any] | None:
    if not partition.file(name).exists():
        return None
    data = partition.read_json(name)
    if not isinstance(data, dict):
        raise OmnisendInputError(f"{partition.file(name)} is not a JSON object")
    return data


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text)
    return None


class _SendTotals:
    """What the receipts of the current plan's bodies say (see ``build_report`` for the fields)."""

    def __init__(self) -> None:
        self.bodies = 0
        self.bodies_finished = 0
        self.events_sent = 0
        self.accepted = 0
        self.dead_lettered = 0
        self.duplicates: int | None = None
        self.batches = 0
        self.requests = 0
        self.item_submissions = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.dead_letter_files: list[str] = []
        #: the part of the above that this run sent (see ``build_report``), and who sent the rest
        self.bodies_this_run = 0
        self.events_sent_this_run = 0
        self.batches_this_run = 0
        self.requests_this_run = 0
        self.earlier_runs: set[str] = set()

    def span(self, started: str | None, finished: str | None) -> None:
        start, end = _instant(started), _instant(finished)
        if start is not None and (self.first is None or start < self.first):
            self.first = start
        if end is not None and (self.last is None or end > self.last):
            self.last = end

    def submissions(self, receipt: BatchReceipt) -> None:
        self.requests += receipt.attempts
        self.item_submissions += receipt.items * receipt.attempts
        self.span(receipt.submitted_at, receipt.finished_at)

    @property
    def seconds(self) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return round(max(0.0, (self.last - self.first).total_seconds()), 3)


def _send_totals(
    partition: PartitionStaging, plan: ChunkPlan, problems: list[str], this_run: SendingRun | None
) -> _SendTotals:
    totals = _SendTotals()
    receipts = PartitionReceipts(partition)
    for shard, body in plan.iter_bodies():
        totals.bodies += 1
        where = f"body {body.body_id[:12]} (shard {shard.index} #{body.index}, {body.items} events)"
        receipt = receipts.read(body.body_id)
        dead_path = partition.send_dead_letters(body.body_id)
        dead_lines = _count_lines(partition, dead_path) or 0
        if dead_lines:
            totals.dead_letter_files.append(str(dead_path))
        if receipt is None:
            _account_unsent_body(body, dead_lines, where, totals, problems)
        else:
            _account_sent_body(receipts, body, receipt, where, totals)
            _account_sender(receipts, body, receipt, this_run, totals)
            problems.extend(_sent_body_problems(body, receipt, dead_lines, dead_path, where))
    return totals


def _account_unsent_body(
    body: BodyPlan, dead_lines: int, where: str, totals: _SendTotals, problems: list[str]
) -> None:
    """A body that never got a batch id; one Omnisend refused as a whole has its events dead-lettered."""
    totals.dead_lettered += dead_lines
    missing = body.items - dead_lines
    if missing:
        problems.append(f"{where} was never sent: {missing} events not accepted or dead-lettered")


def _account_sent_body(
    receipts: PartitionReceipts, body: BodyPlan, receipt: BatchReceipt, where: str, totals: _SendTotals
) -> None:
    """Add what a body's receipt (and its follow-up rounds' receipts) say to ``totals``."""
    totals.events_sent += receipt.items
    totals.batches += 1 + len(receipt.retry_batch_ids)
    totals.accepted += receipt.accepted
    totals.dead_lettered += receipt.dead_lettered
    if receipt.duplicates is not None:
        totals.duplicates = (totals.duplicates or 0) + receipt.duplicates
    totals.submissions(receipt)
    for round_number in range(1, len(receipt.retry_batch_ids) + 1):
        followup = receipts.read_followup(body.body_id, round_number)
        if followup is not None:
            totals.submissions(followup)
    if receipt.status == "finished":
        totals.bodies_finished += 1


def _sent_this_run(receipt: BatchReceipt, this_run: SendingRun | None) -> bool:
    """Whether this run submitted the body; outside a DAG run, the receipts that name no run did."""
    if this_run is None:
        return receipt.run_id is None
    return this_run.same_run(receipt)


def _account_sender(
    receipts: PartitionReceipts,
    body: BodyPlan,
    receipt: BatchReceipt,
    this_run: SendingRun | None,
    totals: _SendTotals,
) -> None:
    """Add a sent body to this run's part of ``totals``, or name the earlier run that sent it."""
    if not _sent_this_run(receipt, this_run):
        sender = receipt.sending_run
        totals.earlier_runs.add(sender.describe() if sender else "a run before receipts named theirs")
        return
    totals.bodies_this_run += 1
    totals.events_sent_this_run += receipt.items
    totals.batches_this_run += 1 + len(receipt.retry_batch_ids)
    totals.requests_this_run += receipt.attempts
    for round_number in range(1, len(receipt.retry_batch_ids) + 1):
        followup = receipts.read_followup(body.body_id, round_number)
        if followup is not None:
            totals.requests_this_run += followup.attempts


def _sent_body_problems(
    body: BodyPlan, receipt: BatchReceipt, dead_lines: int, dead_path: Any, where: str
) -> list[str]:
    """Where a body's receipt disagrees with the plan or its dead letters, or leaves events open."""
    problems: list[str] = []
    if receipt.items != body.items:
        problems.append(f"{where}: its receipt is for {receipt.items} events, so it is not this plan's body")
    if dead_lines != receipt.dead_lettered:
        problems.append(
            f"{where}: the receipt counts {receipt.dead_lettered} dead-lettered events but "
            f"{dead_path} holds {dead_lines}"
        )
    lost = body.items - receipt.accepted - receipt.dead_lettered
    if lost:
        state = "finished" if receipt.status == "finished" else f"still {receipt.status}"
        problems.append(
            f"{where} is {state} with {receipt.accepted} accepted + {receipt.dead_lettered} "
            f"dead-lettered: {lost} events unaccounted for (batch {receipt.batch_id})"
        )
    return problems


def _automation_summary(check: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "outcome": check.get("outcome"),
        "reason": check.get("reason"),
        "acknowledgement": check.get("acknowledgement"),
        "automations_matched": check.get("automations_matched") or [],
        "automations": check.get("automations") or [],
        "warnings": len(check.get("warnings") or []),
        "checked_at": check.get("checked_at"),
    }


@dataclass(frozen=True)
class _Extracted:
    """How many events the partition started with, and from where (extract.json, else validation)."""

    events: int
    source: str
    rows_rejected: int = 0
    rows_unplaceable: int = 0
    seconds: Any = None


def _extracted(
    partition: PartitionStaging,
    extract: Mapping[str, Any] | None,
    validation: Mapping[str, Any],
    problems: list[str],
) -> _Extracted:
    """The extracted events: extract.json's when validation read its events.ndjson, else validation's
    (the events came from another file); notes in ``problems`` where the two disagree."""
    source = validation.get("source")
    if extract is None or source not in (None, partition.relative(partition.events)):
        return _Extracted(events=int(validation["events"]), source=str(source))
    extracted = int(extract["events"])
    if extracted != validation["events"]:
        problems.append(
            f"extract.json counts {extracted} events, validation.json {validation['events']}: "
            "validation ran on another events file (re-run validate after extract)"
        )
    digest_extract, digest_validated = extract.get("events_sha256"), validation.get("events_sha256")
    if digest_extract and digest_validated and digest_extract != digest_validated:
        problems.append(
            "validation.json is of a different events.ndjson than extract.json describes "
            "(extract ran again without validate)"
        )
    return _Extracted(
        events=extracted,
        source=str(extract.get("source") or "extract"),
        rows_rejected=int(extract.get("rows_rejected", 0)),
        rows_unplaceable=int(extract.get("rows_unplaceable") or 0),
        seconds=extract.get("seconds"),
    )


def _planned_and_sent(
    partition: PartitionStaging, valid: int, problems: list[str], this_run: SendingRun | None
) -> tuple[ChunkPlan, _SendTotals]:
    """The current plan and what its bodies' receipts say; notes in ``problems`` where plan.json
    disagrees with validation or with the plan's dead letters."""
    plan = ChunkPlan.from_dict(partition.read_json("plan"))
    if plan.events != valid:
        problems.append(
            f"plan.json covers {plan.events} events but validation found {valid} valid ones: the plan "
            "is of other events (re-run plan after validate)"
        )
    plan_dead_path = partition.dead_letters("plan")
    plan_dead_lines = _count_lines(partition, plan_dead_path) or 0
    if plan_dead_lines != plan.dead_lettered:
        problems.append(
            f"plan.json counts {plan.dead_lettered} dead-lettered events but {plan_dead_path} holds "
            f"{plan_dead_lines}"
        )
    totals = _send_totals(partition, plan, problems, this_run)
    if plan_dead_lines:
        totals.dead_letter_files.insert(0, str(plan_dead_path))
    return plan, totals


def _notes(
    partition: PartitionStaging, check: Mapping[str, Any] | None, rows_unplaceable: int, *, dry_run: bool
) -> list[str]:
    notes: list[str] = []
    if check is None and not dry_run:
        notes.append("no automation_check.json: the automation safety check did not run for this partition")
    if rows_unplaceable:
        notes.append(
            f"{rows_unplaceable} source rows of the store belong to no day (a time without a date, or no "
            "order/refund/line they belong to: codes in extract.json rows_unplaceable_by_code), so no "
            f"partition sends them; fix them in the source (listed in {partition.file('unplaceable')})"
        )
    return notes


def build_report(
    partition: PartitionStaging, *, dry_run: bool, this_run: SendingRun | None = None
) -> dict[str, Any]:
    """The report of one partition (what ``report.json`` holds; see :class:`OmnisendReportOperator`).

    ``this_run``: the DAG run (and its attempt) the report is for; the receipts it wrote count as sent
    by this run, the others as sent by earlier runs. ``None`` (outside a DAG run): receipts that name
    no run count as this run's.

    Never raises for an accounting problem: those are listed under ``problems`` and make
    ``events_unaccounted`` non-zero or ``accounted`` false. Raises :class:`OmnisendInputError` when
    ``validation.json`` (or, unless ``dry_run``, ``plan.json``) is missing or unreadable.
    """
    problems: list[str] = []
    extract = _read_optional(partition, "extract")
    validation = partition.read_json("validation")
    check = _read_optional(partition, "automation_check")
    extracted = _extracted(partition, extract, validation, problems)
    valid, rejected = int(validation["valid"]), int(validation["rejected"])
    totals = _SendTotals()
    plan_dead = plan_bodies = 0
    if not dry_run:
        plan, totals = _planned_and_sent(partition, valid, problems, this_run)
        plan_bodies, plan_dead = plan.bodies, plan.dead_lettered
    preview = _read_optional(partition, "plan_preview") if dry_run else None
    dead_lettered = plan_dead + totals.dead_lettered
    planned_not_sent = valid if dry_run else 0
    unaccounted = extracted.events - (totals.accepted + rejected + dead_lettered + planned_not_sent)
    if unaccounted:
        problems.insert(
            0,
            f"{extracted.events} events extracted, but {totals.accepted} accepted + {rejected} rejected + "
            f"{dead_lettered} dead-lettered{f' + {planned_not_sent} planned' if dry_run else ''} = "
            f"{extracted.events - unaccounted}: {unaccounted} unaccounted for",
        )
    notes = _notes(partition, check, extracted.rows_unplaceable, dry_run=dry_run)
    seconds_by_step = {
        "extract": extracted.seconds,
        "validate": validation.get("seconds"),
        "send": totals.seconds,
    }
    return {
        "store_id": partition.store_id,
        "partition": partition.day,
        "dry_run": dry_run,
        "generated_at": utc_timestamp(),
        "accounted": not problems,
        "extracted_from": extracted.source,
        "events_extracted": extracted.events,
        "rows_rejected": extracted.rows_rejected,
        "rows_unplaceable": extracted.rows_unplaceable,
        "events_valid": valid,
        "events_rejected": rejected,
        "events_warned": validation.get("warned"),
        "events_planned_not_sent": planned_not_sent,
        "events_sent": totals.events_sent,
        "events_sent_this_run": totals.events_sent_this_run,
        "events_sent_earlier": totals.events_sent - totals.events_sent_this_run,
        "events_accepted": totals.accepted,
        "events_dead_lettered": dead_lettered,
        "events_dead_lettered_by_stage": {"plan": plan_dead, "send": totals.dead_lettered},
        "events_duplicates": totals.duplicates,
        "events_unaccounted": unaccounted,
        "bodies": plan_bodies,
        "bodies_finished": totals.bodies_finished,
        "batches": totals.batches,
        "batches_this_run": totals.batches_this_run,
        "batches_earlier": totals.batches - totals.batches_this_run,
        "bodies_sent_this_run": totals.bodies_this_run,
        "requests": totals.requests,
        "requests_this_run": totals.requests_this_run,
        "run": _run_summary(this_run),
        "earlier_runs": sorted(totals.earlier_runs),
        "item_submissions": totals.item_submissions,
        "seconds": totals.seconds,
        "seconds_by_step": seconds_by_step,
        "automation_check": _automation_summary(check),
        "dry_run_plan": _dry_run_plan(preview),
        "rejected_file": str(partition.rejected) if rejected else None,
        "rows_rejected_file": str(partition.rows_rejected) if extracted.rows_rejected else None,
        "dead_letter_files": totals.dead_letter_files,
        "notes": notes,
        "problems": problems[:_MAX_PROBLEMS] + (["..."] if len(problems) > _MAX_PROBLEMS else []),
    }


def _run_summary(run: SendingRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"run_id": run.run_id, "clear_number": run.clear_number, "try_number": run.try_number}


def _dry_run_plan(preview: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a real run would send: bodies, requests and minutes at the rate limit (dry runs only)."""
    if preview is None:
        return None
    estimate = preview.get("estimate", {})
    return {
        "events": preview.get("events"),
        "bodies": preview.get("bodies"),
        "shards": preview.get("shards"),
        "dead_lettered": preview.get("dead_lettered"),
        "packing_ratio": preview.get("packing_ratio"),
        "requests": estimate.get("total_requests"),
        "minutes": estimate.get("minutes"),
        "rate_per_minute": estimate.get("rate_per_minute"),
    }


def describe(report: Mapping[str, Any]) -> str:
    """The report as a few readable lines (the task log)."""
    head = f"Omnisend report for {report['store_id']} {report['partition']}"
    lines = [head + (" (dry run: nothing sent)" if report["dry_run"] else ""), "-" * len(head)]
    lines.append(
        f"extracted   {report['events_extracted']:>9}   (from {report['extracted_from']}; "
        f"{report['rows_rejected']} source rows could not become events)"
    )
    warned = report["events_warned"]
    lines.append(
        f"valid       {report['events_valid']:>9}   ({'?' if warned is None else warned} with warnings)"
    )
    lines.append(f"rejected    {report['events_rejected']:>9}   {report['rejected_file'] or ''}".rstrip())
    if report["dry_run"]:
        lines.append(f"planned     {report['events_planned_not_sent']:>9}   (not sent: dry run)")
        if plan := report.get("dry_run_plan"):
            lines.append(
                f"would send  {plan['bodies']:>9} bodies: {plan['requests']} requests, about "
                f"{plan['minutes']:.1f} min at {plan['rate_per_minute']:g} requests/min"
            )
    else:
        lines.extend(_sent_lines(report))
        lines.append(f"accepted    {report['events_accepted']:>9}")
        by_stage = report["events_dead_lettered_by_stage"]
        lines.append(
            f"dead-letter {report['events_dead_lettered']:>9}   (plan {by_stage['plan']}, send "
            f"{by_stage['send']})"
        )
    lines.append(f"unaccounted {report['events_unaccounted']:>9}")
    check = report["automation_check"]
    if check is None:
        lines.append("automations: not checked")
    else:
        lines.append(f"automations: {check['outcome']} - {check['reason']}")
    lines.extend(f"dead letters: {path}" for path in report["dead_letter_files"])
    lines.extend(f"note: {note}" for note in report["notes"])
    lines.extend(f"PROBLEM: {problem}" for problem in report["problems"])
    return "\n".join(lines)


def _sent_lines(report: Mapping[str, Any]) -> list[str]:
    """What was sent, this run's part first: a rerun that sends nothing says so."""
    lines = [
        f"sent        {report['events_sent_this_run']:>9}   this run, in {report['batches_this_run']} "
        f"batches, {report['requests_this_run']} POST requests"
    ]
    if report["events_sent_earlier"]:
        runs = report["earlier_runs"]
        named = f" ({', '.join(runs[:3])}{', ...' if len(runs) > 3 else ''})" if runs else ""
        lines.append(
            f"            {report['events_sent_earlier']:>9}   in {report['batches_earlier']} batches "
            f"sent by earlier runs{named}, not sent again"
        )
    lines.append(f"send time   {report['seconds']:>9}s  first submission to last finished batch")
    return lines


class OmnisendReportOperator(OmnisendPartitionBaseOperator):
    """Write ``report.json`` for a partition and fail if any extracted event is unaccounted for.

    ``store_id``, ``partition``, ``staging``: see :class:`OmnisendPartitionBaseOperator`.

    :param keep_staged_events: keep events, valid events and bodies after a real run accounted for every
        event (default: delete them, ``staging.DISCARDED_AFTER_SEND``; a dry run keeps them).
    :param dry_run: the run planned but sent nothing (pass the same value as the plan task's
        ``dry_run``): plan and receipts are not read, valid events count as planned. Templated.
    :param trigger_rule: default ``none_failed`` (see the module docstring); pass another to override.

    Its :class:`~airflow.sdk.Asset` outlets (a store DAG's ``omnisend://<store_id>/orders``) get one event
    per successful real run, keyed by the partition (``partition_key``) with the report's counts in
    ``extra``; a dry run emits none.

    ``report.json`` (all counts are events unless named otherwise):

    * ``store_id``, ``partition`` (the store-local day), ``dry_run``, ``generated_at`` (UTC).
    * ``events_extracted``: lines of ``events.ndjson`` per ``extract.json``; when the events came from
      another file (``events_path`` of the validate step, or no extract step) the events validation
      read. ``extracted_from`` names the source.
    * ``rows_rejected``: source *rows* the extract step could not turn into an event (listed in
      ``rows_rejected.ndjson``); they are not events, so they are outside the accounting below.
    * ``rows_unplaceable``: source rows of the whole store whose time has no date at all, so no
      partition can select them (listed in ``unplaceable_rows.ndjson``; a note says so); outside the
      accounting like ``rows_rejected``.
    * ``events_valid`` / ``events_rejected``: validation's verdicts; ``events_warned``: valid events
      with at least one warning (they are sent).
    * ``events_planned_not_sent``: in a dry run, the valid events (accounted as planned); else 0.
    * ``dry_run_plan``: in a dry run, what a real run would send (events, bodies, shards, dead_lettered,
      packing_ratio, requests, minutes, rate_per_minute, from ``plan_preview.json``); else null.
    * ``events_sent``: events of the current plan's bodies that Omnisend gave a batch id for - in this
      run or an earlier run of the partition (a rerun does not send a finished body again, and it still
      counts here); each event once, however often it was submitted. 0 in a dry run.
    * ``events_sent_this_run`` / ``events_sent_earlier``: ``events_sent`` split by the run that
      submitted each body, per its receipt: this run is this DAG run's id and ``clear_number`` (a task's
      retry is still this run; clearing the run, a backfill reprocessing it or a new run of the same
      partition is a new run); receipts that name no run (written before receipts named theirs) count
      as earlier. ``bodies_sent_this_run``, ``batches_this_run`` / ``batches_earlier`` and
      ``requests_this_run`` split the same way; ``run`` is ``{run_id, clear_number, try_number}`` of
      the report's task (null outside a DAG run) and ``earlier_runs`` names the others.
    * ``events_accepted``: events Omnisend accepted, per the receipts (follow-up rounds included).
    * ``events_dead_lettered``: events given up on, with the reason in a dead-letter file: too large for
      any body (``by_stage.plan``) or refused by Omnisend (``by_stage.send``).
    * ``events_duplicates``: items Omnisend reported as already known, when it reports that (else null).
    * ``events_unaccounted``: ``events_extracted - (accepted + rejected + dead_lettered +
      planned_not_sent)``; the task fails unless it is 0 and ``problems`` is empty (``accounted``).
    * ``bodies`` / ``bodies_finished``: request bodies in the current plan / with a finished receipt.
    * ``batches``: Omnisend batches recorded for those bodies (each body's batch plus its follow-ups).
    * ``requests``: ``POST /batches`` requests recorded in the receipts, resubmissions after a lost
      response included (polls and the hook's own retries are not recorded, so not counted).
    * ``item_submissions``: events submitted in those requests (an event resubmitted counts again).
    * ``seconds``: wall-clock seconds from the first recorded submission to the last finished batch of
      the current plan (it spans reruns when bodies were finished earlier); ``seconds_by_step`` adds the
      extract and validate times.
    * ``automation_check``: ``{outcome, reason, acknowledgement, automations_matched, warnings,
      checked_at}`` from ``automation_check.json`` (null when the check did not run; then a note).
    * ``rejected_file``, ``rows_rejected_file`` (null when nothing was rejected), ``dead_letter_files``
      (those of the current plan that hold events).
    * ``notes``, ``problems``: what a person should read; any problem fails the task.

    Returns (XCom) a staging manifest ``{"root", "store_id", "day", "files": {"report"}, "counts":
    {"events_extracted", "events_accepted", "events_rejected", "events_dead_lettered",
    "events_unaccounted"}, "hashes": {}}``. Raises
    :class:`~airflow_omnisend.operators._failures.UnaccountedEventsFailure` (an
    ``OmnisendUnaccountedEventsError`` that also fails without retry) after writing the report.
    """

    template_fields: Sequence[str] = (*OmnisendPartitionBaseOperator.template_fields, "dry_run_mode")
    operator_extra_links = (OmnisendPeriodReportLink(), OmnisendStoreDashboardLink())
    ui_color = "#e8e8f8"

    def __init__(
        self,
        *,
        dry_run: bool | str = False,
        trigger_rule: str = RECOMMENDED_TRIGGER_RULE,
        keep_staged_events: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(trigger_rule=trigger_rule, **kwargs)
        # not ``self.dry_run``: BaseOperator has a dry_run() method
        self.dry_run_mode = dry_run
        self.keep_staged_events = keep_staged_events

    def execute(self, context: Context) -> dict[str, Any]:
        dry_run = parse_flag(self.dry_run_mode, "dry_run", type(self).__name__)
        partition = self.partition_staging()
        try:
            report = build_report(partition, dry_run=dry_run, this_run=SendingRun.from_context(context))
        except OmnisendError as err:
            raise UnaccountedEventsFailure(
                f"{partition.store_id} {partition.day}: cannot account for the partition's events: {err}"
            ) from err
        faultpoint("report.before_write")
        partition.write_json("report", report)
        self.log.info("%s\nreport: %s", describe(report), partition.report)
        if not report["accounted"]:
            raise UnaccountedEventsFailure(
                f"{partition.store_id} {partition.day}: {report['events_unaccounted']} of "
                f"{report['events_extracted']} extracted events are unaccounted for "
                f"({'; '.join(_first(report['problems'], 5))}). See {partition.report}"
            )
        self._announce(context, partition, report, dry_run=dry_run)
        if not dry_run and not self.keep_staged_events:
            removed = partition.discard_staged_events()
            self.log.info("deleted the staged copies of the events (%s)", ", ".join(removed) or "none")
        manifest = partition.manifest(
            files={"report": "report"},
            counts={
                name: int(report[name])
                for name in (
                    "events_extracted",
                    "events_accepted",
                    "events_rejected",
                    "events_dead_lettered",
                    "events_unaccounted",
                )
            },
        )
        return manifest.to_dict()

    def _announce(
        self, context: Context, partition: PartitionStaging, report: Mapping[str, Any], *, dry_run: bool
    ) -> None:
        """Give each asset outlet (the store's ``omnisend://<store_id>/orders``) its event's partition key
        and counts; a dry run drops the outlets, as Airflow emits an event per outlet of a successful task.

        The key is set on the event explicitly: a run triggered with ``{"partition": ...}`` in its conf
        has no Airflow partition key of its own.
        """
        assets = [outlet for outlet in self.outlets if isinstance(outlet, Asset)]
        if dry_run:
            self.outlets = []
            return
        for asset in assets:
            event = context["outlet_events"][asset]
            event.add_partitions(partition.day)
            event.extra.update(
                {"store_id": partition.store_id, "partition": partition.day}
                | {name: int(report[name]) for name in _ANNOUNCED}
            )
            self.log.info("asset event: %s partition %s", asset.uri, partition.day)


def _first(items: Iterable[str], count: int) -> list[str]:
    return list(items)[:count]
