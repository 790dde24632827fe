"""OmnisendAutomationApprovalOperator: a person decides, in Airflow's UI, whether a blocked period is sent.

Used when the store says ``approval: ui``. After the automation check, this task reads
``automation_check.json``: when the check passed, was acknowledged or found a kept approval of the same
automations (:mod:`airflow_omnisend.approvals`), it returns at once and never waits. When the check
says ``awaiting_approval``, it asks through Airflow 3.3's human-in-the-loop form (the standard
provider's :class:`HITLOperator`): the matched automations with their verdicts, "Send anyway" (needs a
reason of at least 10 characters) or "Stop" (the default, and the answer when nobody answers in time).

"Send anyway" keeps the approval for the store (later periods with the same automations do not ask),
and writes the reason, who answered and when into ``automation_check.json`` (and so the report). "Stop"
fails the task - not skipped - so ``airflow backfill create --reprocess-behavior failed`` reruns the
period later. Under ``airflow dags test`` nobody can answer, so the task fails at once with the ways
forward instead of waiting forever.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from airflow_omnisend.approvals import AutomationApproval, approval_path, automation_set
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators._failures import AutomationRiskFailure
from airflow_omnisend.operators.base import OmnisendPartitionBaseOperator
from airflow_omnisend.operators.safety import check_acknowledgement, held_message

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context

    from airflow_omnisend.staging import PartitionStaging

__all__ = ["SEND_ANYWAY", "STOP", "OmnisendAutomationApprovalOperator"]

SEND_ANYWAY = "Send anyway"
STOP = "Stop"
#: who ``airflow dags test`` says triggered its run (nobody is there to answer a form)
_DAGS_TEST_USER = "dag_test"


def _body(record: Mapping[str, Any]) -> str:
    """The form's text: each matched automation with its reasons, then what each answer does."""
    lines = [f"The automation check of **{record['store_id']} {record['partition']}** blocked:", ""]
    for match in record.get("automations_matched") or []:
        lines.append(f"- **{match['name']}** (id `{match['id']}`): {'; '.join(match.get('reasons') or [])}")
    lines += [
        "",
        f"**{SEND_ANYWAY}** sends the period (write why in *reason*, at least 10 characters); the approval "
        "then holds for these automations in later periods of this store until one changes.",
        f"**{STOP}** fails the run; rerun it later with `airflow backfill create ... "
        "--reprocess-behavior failed`.",
    ]
    return "\n".join(lines)


def _refusal(partition: PartitionStaging, headline: str, *detail: str) -> AutomationRiskFailure:
    """The failure of a period nobody approved, worded as the check's own blocks (:func:`held_message`)."""
    return AutomationRiskFailure(held_message(partition, headline, *detail))


class OmnisendAutomationApprovalOperator(OmnisendPartitionBaseOperator, HITLOperator):
    """Ask a person when the automation check waits for approval (see the module docstring).

    ``store_id``, ``partition``, ``staging``: see :class:`OmnisendPartitionBaseOperator`.

    :param checked: the safety check's manifest (``automation_safety_check.output``). Templated.
    :param approval_timeout: how long the form waits; then the answer is "Stop".
    :param approval_valid_for: how long a "Send anyway" holds for the same automations.
    """

    template_fields: Sequence[str] = (*OmnisendPartitionBaseOperator.template_fields, "checked")
    ui_color = "#fff2cc"

    def __init__(
        self,
        *,
        checked: Mapping[str, Any] | None = None,
        approval_timeout: timedelta = timedelta(hours=24),
        approval_valid_for: timedelta = timedelta(days=30),
        **kwargs: Any,
    ) -> None:
        if not isinstance(approval_timeout, timedelta) or approval_timeout <= timedelta(0):
            raise OmnisendConfigError(
                f"approval_timeout must be a positive timedelta, got {approval_timeout!r}"
            )
        kwargs.pop("params", None)  # the DAG's params: the form asks only for the reason
        super().__init__(
            subject="Send this period although automations could fire?",
            options=[SEND_ANYWAY, STOP],
            defaults=[STOP],
            params={"reason": Param(None, type=["null", "string"], description="why sending is safe")},
            response_timeout=approval_timeout,
            **kwargs,
        )
        self.checked = checked
        self.approval_valid_for = approval_valid_for

    def execute(self, context: Context) -> Any:
        partition = self.partition_staging(self.checked)
        record = partition.read_json("automation_check")
        if record.get("outcome") != "awaiting_approval":
            self.log.info("No approval needed: the automation check says %s", record.get("outcome"))
            kept = {"kept": record.get("approval")} if record.get("outcome") == "approved" else {}
            return {"approval": "not needed", "outcome": record.get("outcome"), **kept}
        if getattr(context.get("dag_run"), "triggering_user_name", None) == _DAGS_TEST_USER:
            raise _refusal(
                partition,
                "needs a person's approval, which `airflow dags test` cannot wait for",
                "Trigger the run through the scheduler and answer in the UI, pass "
                "acknowledge_automations='<why>' in the run conf, or disable the automations.",
                record["reason"],
            )
        self.subject = f"{partition.store_id} {partition.day}: send although automations could fire?"
        self.body = _body(record)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        partition = self.partition_staging(self.checked)
        record = partition.read_json("automation_check")
        if "error" in event:  # no answer in time: the default
            self._stopped(
                partition, record, "nobody (timeout)", None, "no answer in time; Stop is the default"
            )
        result = super().execute_complete(context, event)
        user = result["responded_by_user"]
        who = str(user.get("name") or user.get("id")) if isinstance(user, dict) else str(user or "")
        who = who or "nobody (no answer in time)"
        when = result["responded_at"].isoformat()
        if result["chosen_options"] != [SEND_ANYWAY]:
            self._stopped(partition, record, who, when, f"{who} answered {STOP}")
        reason = self._reason(partition, record, result["params_input"], who, when)
        ti = context["ti"]
        approval = AutomationApproval.given(
            automation_set(record["automations_matched"]),
            reason=reason,
            approved_by=who,
            valid_for=self.approval_valid_for,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            partition=partition.day,
        )
        approval.save(partition)
        record.update(outcome="approved", approval={**approval.to_dict(), "kept": False})
        record["reason"] = f"{record['reason']}. Approved by {who} at {when}: {reason}"
        partition.write_json("automation_check", record)
        self.log.warning("%s %s: sending: approved by %s: %s (kept in %s)", partition.store_id,
                         partition.day, who, reason, approval_path(partition))  # fmt: skip
        return {"approval": "approved", "approved_by": who, "reason": reason}

    def _reason(
        self, partition: PartitionStaging, record: dict[str, Any], params: Any, who: str, when: str
    ) -> str:
        given = (params or {}).get("reason") if isinstance(params, dict) else None
        try:
            reason = check_acknowledgement(given, type(self).__name__)
        except OmnisendConfigError as err:
            self._stopped(partition, record, who, when, f"{SEND_ANYWAY} without a usable reason", str(err))
        if reason is None:
            self._stopped(partition, record, who, when, f"{SEND_ANYWAY} without a reason")
        return reason

    def _stopped(
        self,
        partition: PartitionStaging,
        record: dict[str, Any],
        who: str,
        when: str | None,
        why: str,
        detail: str | None = None,
    ) -> NoReturn:
        """Record the period as stopped and fail: ``why`` goes in the short first line, ``detail``
        after it."""
        record.update(outcome="blocked", approval={"answer": STOP, "answered_by": who, "answered_at": when})
        refusal = _refusal(
            partition,
            f"stopped at the approval: {why}",
            "Rerun it with `airflow backfill create ... --reprocess-behavior failed` once the automations "
            f"are off, or answer {SEND_ANYWAY} with a reason.",
            *((detail,) if detail else ()),
        )
        record["reason"] = f"{record['reason']}. Stopped: {why}" + (f" ({detail})" if detail else "")
        record["summary"] = refusal.headline
        partition.write_json("automation_check", record)
        raise refusal
