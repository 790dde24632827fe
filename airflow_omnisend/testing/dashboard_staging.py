"""Synthetic staging for the dashboard's tests and benchmark: the files a store's runs leave behind
(``report.json``, ``validation.json``, ``automation_check.json``, rejected and dead-letter files, the
kept approval), with the fields the dashboard reads and made-up counts. Imports no Airflow.

The rejected and dead-letter lines carry a customer email on purpose: the dashboard must never show it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CUSTOMER_EMAIL", "SyntheticPeriod", "write_approval", "write_period", "write_store"]

#: the email in every synthetic rejected event and dead letter
CUSTOMER_EMAIL = "ann.customer@example.com"


@dataclass(frozen=True)
class SyntheticPeriod:
    """One period's counts and check outcome (``None``: the file is not written)."""

    period: str
    accepted: int = 100
    rejected: int = 2
    dead_lettered: int = 0
    requests: int = 1
    outcome: str | None = "passed"
    reasons: dict[str, int] = field(default_factory=lambda: {"format": 2})
    report: bool = True


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _report(store_id: str, p: SyntheticPeriod, folder: Path) -> dict[str, Any]:
    dead = [str(folder / "dead_letters" / "send-0.ndjson")] if p.dead_lettered else []
    return {
        "store_id": store_id,
        "partition": p.period,
        "accounted": True,
        "events_extracted": p.accepted + p.rejected + p.dead_lettered,
        "events_valid": p.accepted + p.dead_lettered,
        "events_rejected": p.rejected,
        "events_accepted": p.accepted,
        "events_dead_lettered": p.dead_lettered,
        "requests": p.requests,
        "bodies": p.requests,
        "rejected_file": str(folder / "rejected.ndjson") if p.rejected else None,
        "dead_letter_files": dead,
        "notes": [f"sample note mentioning {CUSTOMER_EMAIL}"],
        "problems": [],
    }


def _check(store_id: str, p: SyntheticPeriod) -> dict[str, Any]:
    matched = (
        []
        if p.outcome == "passed"
        else [{"id": "64b0c0ffee", "name": "Order confirmation", "updatedAt": "x"}]
    )
    return {
        "store_id": store_id,
        "partition": p.period,
        "outcome": p.outcome,
        "reason": f"{len(matched)} automation(s) could fire" if matched else None,
        "acknowledgement": "imported history; the flow is paused" if p.outcome == "acknowledged" else None,
        "automations_matched": matched,
        "warnings": [],
        "checked_at": "2026-12-01T10:00:00Z",
    }


def write_period(store_dir: Path, store_id: str, p: SyntheticPeriod) -> Path:
    """Write one period's files under ``store_dir``; returns its folder."""
    folder = store_dir / p.period
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "validation.json", {"events": p.accepted + p.rejected, "rejected": p.rejected,
                                        "rejects_by_reason": p.reasons})  # fmt: skip
    if p.outcome is not None:
        _write(folder / "automation_check.json", _check(store_id, p))
    if p.report:
        _write(folder / "report.json", _report(store_id, p, folder))
    if p.rejected:
        event = {"eventID": "e1", "contact": {"email": CUSTOMER_EMAIL}}
        error = {"path": "/contact/email", "message": f"{CUSTOMER_EMAIL!r} is not an email", "code": "format"}
        lines = [json.dumps({"line": i + 1, "event": event, "errors": [error]}) for i in range(p.rejected)]
        (folder / "rejected.ndjson").write_text("\n".join(lines) + "\n")
    if p.dead_lettered:
        line = {
            "event": {"eventID": "e9", "contact": {"email": CUSTOMER_EMAIL}},
            "reason": f"contact {CUSTOMER_EMAIL} is blocked",
            "response_code": 400,
            "stage": "send",
        }
        _write(folder / "dead_letters" / "send-0.ndjson", line)
    return folder


def write_approval(store_dir: Path, reason: str = "history only; flows paused for the import") -> None:
    """The store's kept approval (``approvals.APPROVAL_FILE``)."""
    _write(store_dir / "approvals" / "automations.json", {
        "automations": [["64b0c0ffee", "x"]], "reason": reason, "approved_by": "admin",
        "approved_at": "2026-12-01T10:00:00Z", "expires_at": "2026-12-31T10:00:00Z",
        "dag_id": "omnisend_orders__demo", "run_id": "r1", "partition": "2024-03-07",
    })  # fmt: skip


def write_store(root: Path, store_id: str, periods: int, start: date = date(2022, 1, 1)) -> list[str]:
    """``periods`` consecutive days of a store under ``root/<store_id>`` (every 50th with a dead
    letter); returns the period keys."""
    keys = []
    for offset in range(periods):
        key = (start + timedelta(days=offset)).isoformat()
        period = SyntheticPeriod(key, accepted=100 + offset % 7, dead_lettered=1 if offset % 50 == 0 else 0)
        write_period(root / store_id, store_id, period)
        keys.append(key)
    return keys
