"""A person's approval to send although automations could fire: kept once per store, not per period.

When a store says ``approval: ui`` and the automation check blocks, a person answers in Airflow's UI.
"Send anyway" with a reason is kept in ``<staging>/<store_id>/approvals/automations.json`` for the set
of automations it was given for (each automation's ``id`` and ``updatedAt``): a later period of the
same backfill whose check blocks on the same set finds it and goes on without asking. A new or
changed automation (another id or ``updatedAt``), or the approval's age beyond ``approval_valid_days``,
asks again. Deleting the file revokes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_omnisend.exceptions import OmnisendInputError
from airflow_omnisend.staging import utc_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow.sdk import ObjectStoragePath

    from airflow_omnisend.staging import PartitionStaging

__all__ = ["APPROVAL_FILE", "AutomationApproval", "approval_path", "automation_set", "load_approval"]

APPROVAL_FILE = "approvals/automations.json"


def automation_set(matched: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """The ``[id, updatedAt]`` pairs of the matched automations (``automation_check.json``'s
    ``automations_matched``), sorted: the same set is the same list."""
    pairs = {(str(m.get("id")), str(m.get("updatedAt") or "")) for m in matched}
    return [list(pair) for pair in sorted(pairs)]


def approval_path(partition: PartitionStaging) -> ObjectStoragePath:
    """Where the store's approval is kept: beside its partitions, so every period finds it."""
    path = partition.dir.parent
    for part in APPROVAL_FILE.split("/"):
        path = path / part
    return path


@dataclass(frozen=True)
class AutomationApproval:
    """ "Send anyway" for one set of automations: who said it, when, why, and until when it holds."""

    automations: list[list[str]]
    reason: str
    approved_by: str
    approved_at: str
    expires_at: str
    dag_id: str
    run_id: str
    partition: str

    @classmethod
    def given(
        cls,
        automations: list[list[str]],
        *,
        reason: str,
        approved_by: str,
        valid_for: timedelta,
        dag_id: str,
        run_id: str,
        partition: str,
        now: datetime | None = None,
    ) -> AutomationApproval:
        moment = now or datetime.now(UTC)
        return cls(
            automations=automations,
            reason=reason,
            approved_by=approved_by,
            approved_at=utc_timestamp(moment),
            expires_at=utc_timestamp(moment + valid_for),
            dag_id=dag_id,
            run_id=run_id,
            partition=partition,
        )

    def holds_for(self, automations: list[list[str]], now: datetime | None = None) -> bool:
        """True for the same set of automations, before it expires."""
        moment = now or datetime.now(UTC)
        return self.automations == automations and moment < datetime.fromisoformat(self.expires_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "automations": self.automations,
            "reason": self.reason,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at,
            "expires_at": self.expires_at,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "partition": self.partition,
        }

    def save(self, partition: PartitionStaging) -> ObjectStoragePath:
        return partition.write_json(approval_path(partition), self.to_dict())


def load_approval(partition: PartitionStaging) -> AutomationApproval | None:
    """The store's kept approval, or None when there is none (or it cannot be read: then ask again)."""
    path = approval_path(partition)
    if not path.exists():
        return None
    try:
        data = partition.read_json(path)
        return AutomationApproval(**{k: data[k] for k in AutomationApproval.__dataclass_fields__})
    except (OmnisendInputError, KeyError, TypeError):
        return None
