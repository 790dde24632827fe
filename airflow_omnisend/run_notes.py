"""The note on a store DAG's run: what makes this run unlike any other green one.

Airflow shows a DagRun's note in the grid and the runs list. A store run gets one when its period was
named by the run conf's ``partition`` (a CLI run, which has no partition key to show), when enabled
automations were acknowledged (conf ``acknowledge_automations``) or when a person approved the period
(``approval: ui``, now or by a kept approval): who and why.

Airflow 3.3's Task SDK cannot write a note on the task's own run (the execution API only notes runs a
task triggers) and the REST API needs a user's token, so the note is written by a DagRun listener in
the scheduler, from what the run holds: its conf, its partition key and the XComs of the automation
check and the approval task. A note a person wrote (one that does not start with :data:`NOTE_MARK`)
is never replaced. :class:`OmnisendRunNotesPlugin` registers the listener.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["NOTE_MARK", "OmnisendRunNotesPlugin", "RunNotesListener", "compose_note"]

log = logging.getLogger(__name__)

#: how every note this module writes starts (a note without it is a person's, and stays)
NOTE_MARK: Final = "Omnisend:"
#: the store DAGs' id prefix (``StoreConfig.dag_id``)
STORE_DAG_PREFIX: Final = "omnisend_orders__"
SAFETY_TASK: Final = "automation_safety_check"
APPROVAL_TASK: Final = "automation_approval"
#: Airflow's limit on a note (``DAGRunPatchBody.note``)
NOTE_MAX: Final = 1000


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _approval_line(approval: Mapping[str, Any] | None) -> str | None:
    """The approval task's answer (its XCom): a fresh "Send anyway", or the kept approval it found."""
    if not approval:
        return None
    if approval.get("approval") == "approved":
        return f"APPROVED in the UI by {approval.get('approved_by')}: {approval.get('reason')}"
    kept = approval.get("kept")
    if isinstance(kept, dict):
        return (
            f"APPROVED by a kept approval ({kept.get('approved_by')}, {kept.get('approved_at')}): "
            f"{kept.get('reason')}"
        )
    return None


def compose_note(
    *,
    conf: Mapping[str, Any] | None,
    partition_key: str | None,
    triggered_by: str | None = None,
    safety_outcome: str | None = None,
    approval: Mapping[str, Any] | None = None,
) -> str | None:
    """The note of a store run, or ``None`` when nothing sets it apart.

    :param conf: the run's conf; ``partition`` names the period when the run has no ``partition_key``.
    :param triggered_by: the run's triggering user (who acknowledged, when the conf did).
    :param safety_outcome: the automation check's ``outcome`` (its XCom), once it ran.
    :param approval: what the approval task returned, once it ran.
    """
    conf = conf or {}
    lines: list[str] = []
    named = _text(conf.get("partition"))
    if named and not partition_key:
        lines.append(
            f"period {named}, named by the run conf 'partition' (the run has no partition key; from the "
            "UI or REST, give it as the Partition Key)"
        )
    reason = _text(conf.get("acknowledge_automations"))
    if reason and safety_outcome == "acknowledged":
        who = f" by {triggered_by}" if triggered_by else ""
        lines.append(f"automations ACKNOWLEDGED{who} (conf acknowledge_automations): {reason}")
    approved = _approval_line(approval) if safety_outcome in (None, "approved", "awaiting_approval") else None
    if approved:
        lines.append(approved)
    if not lines:
        return None
    note = f"{NOTE_MARK} " + "; ".join(lines)
    return note if len(note) <= NOTE_MAX else note[: NOTE_MAX - 3] + "..."


def _returned(dag_run: Any, session: Any, task_id: str) -> Any:
    """The XCom ``return_value`` of ``task_id`` in this run (unmapped), or ``None``."""
    from airflow.models.xcom import XComModel

    query = XComModel.get_many(
        run_id=dag_run.run_id, key="return_value", task_ids=task_id, dag_ids=dag_run.dag_id, map_indexes=-1
    )
    row = session.scalars(query.limit(1)).first()
    return None if row is None else XComModel.deserialize_value(row)


def write_note(dag_run: Any) -> str | None:
    """Compose the note of a store run from the metadata DB and set it on ``dag_run`` (the scheduler
    commits it), unless a person's note is there; returns the note written."""
    from sqlalchemy.orm import object_session

    if not str(dag_run.dag_id).startswith(STORE_DAG_PREFIX):
        return None
    session = object_session(dag_run)
    if session is None:
        return None
    safety = _returned(dag_run, session, SAFETY_TASK)
    approval = _returned(dag_run, session, APPROVAL_TASK)
    note = compose_note(
        conf=dag_run.conf,
        partition_key=dag_run.partition_key,
        triggered_by=dag_run.triggering_user_name,
        safety_outcome=safety.get("outcome") if isinstance(safety, dict) else None,
        approval=approval if isinstance(approval, dict) else None,
    )
    current = dag_run.note
    if note is None or note == current or (current and not str(current).startswith(NOTE_MARK)):
        return None
    dag_run.note = note
    log.info("%s %s: note: %s", dag_run.dag_id, dag_run.run_id, note)
    return note


class RunNotesListener:
    """DagRun listener (in the scheduler): notes a store run when it starts and when it ends."""

    def _note(self, dag_run: Any) -> None:
        try:
            write_note(dag_run)
        except Exception:  # a note must never stop the scheduler's loop
            log.exception("could not write the note of %s %s", dag_run.dag_id, dag_run.run_id)

    @hookimpl
    def on_dag_run_running(self, dag_run: Any, msg: str) -> None:
        self._note(dag_run)

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        self._note(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        self._note(dag_run)


class OmnisendRunNotesPlugin(AirflowPlugin):
    """Registers :class:`RunNotesListener` (entry point ``airflow.plugins``)."""

    name = "omnisend_run_notes"
    listeners = [RunNotesListener()]
