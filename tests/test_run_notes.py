"""The note of a store run: set apart acknowledged, approved and conf-named runs; leave others bare."""

from __future__ import annotations

from airflow_omnisend.run_notes import (
    NOTE_MARK,
    NOTE_MAX,
    OmnisendRunNotesPlugin,
    RunNotesListener,
    compose_note,
)

REASON = "Order confirmation flow paused by Ana until 10:00"


def test_a_plain_keyed_run_has_no_note() -> None:
    assert compose_note(conf={"dry_run": False}, partition_key="2024-03-10", safety_outcome="passed") is None
    assert compose_note(conf=None, partition_key=None) is None


def test_a_conf_named_period_without_a_key_is_noted() -> None:
    note = compose_note(conf={"partition": "2024-03-10"}, partition_key=None)
    assert note is not None
    assert note.startswith(f"{NOTE_MARK} period 2024-03-10, named by the run conf 'partition'")
    assert "Partition Key" in note
    # the conf key is a mere alias when the run has its own partition key
    assert compose_note(conf={"partition": "2024-03-10"}, partition_key="2024-03-10") is None


def test_an_acknowledged_run_names_who_and_why() -> None:
    conf = {"acknowledge_automations": f"  {REASON} "}
    note = compose_note(
        conf=conf, partition_key="2024-03-10", triggered_by="ana", safety_outcome="acknowledged"
    )
    assert note == f"{NOTE_MARK} automations ACKNOWLEDGED by ana (conf acknowledge_automations): {REASON}"
    # an acknowledgement the check did not need (it passed) sets nothing apart
    assert compose_note(conf=conf, partition_key="2024-03-10", safety_outcome="passed") is None


def test_an_approved_run_names_who_and_why() -> None:
    fresh = {"approval": "approved", "approved_by": "ana", "reason": REASON}
    note = compose_note(
        conf={}, partition_key="2024-03-10", safety_outcome="awaiting_approval", approval=fresh
    )
    assert note == f"{NOTE_MARK} APPROVED in the UI by ana: {REASON}"
    kept = {
        "approval": "not needed",
        "outcome": "approved",
        "kept": {"approved_by": "ben", "approved_at": "2026-12-01T09:00:00+00:00", "reason": REASON},
    }
    note = compose_note(conf={}, partition_key="2024-03-11", safety_outcome="approved", approval=kept)
    assert note == f"{NOTE_MARK} APPROVED by a kept approval (ben, 2026-12-01T09:00:00+00:00): {REASON}"
    not_needed = {"approval": "not needed", "outcome": "passed", "kept": None}
    assert (
        compose_note(conf={}, partition_key="2024-03-12", safety_outcome="passed", approval=not_needed)
        is None
    )


def test_a_long_note_fits_airflow_s_limit() -> None:
    conf = {"partition": "2024-03-10", "acknowledge_automations": "x" * 2000}
    note = compose_note(conf=conf, partition_key=None, safety_outcome="acknowledged")
    assert note is not None
    assert len(note) == NOTE_MAX
    assert note.endswith("...")


def test_the_plugin_registers_the_listener() -> None:
    (listener,) = OmnisendRunNotesPlugin.listeners
    assert isinstance(listener, RunNotesListener)
    assert OmnisendRunNotesPlugin.name == "omnisend_run_notes"
