"""Which of a brand's automations the imported order events could start or change: one verdict each.

Imported orders feed more than the triggers named after the five events (omnisend-api.md 7.1 and its
corrections): Omnisend derives ``ordered product`` from ``placed order``, contacts enter segments that
can be built on order data (``entered segment``), and a trigger's audience filter or a split block can
read order data. Each automation gets one verdict:

* ``block``: the import can *start* it: a trigger on an imported name or on a name Omnisend derives
  from one (origin ``api``, ``omnisend`` or empty), a segment-entry trigger, or a shape the check
  does not know (what it cannot read counts as a risk);
* ``warn``: the import can *change* it while it runs: an exit condition on an imported event, a
  trigger audience filter or a split block that reads order data, an imported name from another
  origin or in another letter case;
* ``pass``: nothing imported reaches it; ``disabled``: switched off (skipped).

Pure data in, verdicts out: no HTTP and no Airflow, so the rule is tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from airflow_omnisend.events.names import DERIVED_EVENT_NAMES
from airflow_omnisend.events.schema import DEFS_FILE, schema_documents

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "IMPORT_ORIGIN",
    "SEGMENT_ENTRY",
    "AutomationAssessment",
    "AutomationVerdict",
    "assess_automations",
]

#: the ``origin`` the import sends (every event the mapping writes has it)
IMPORT_ORIGIN: Final = "api"
#: trigger origins an imported event reaches: ours, or none named (built-in / any origin)
_MATCHING_ORIGINS: Final = frozenset({IMPORT_ORIGIN, ""})
#: origins of events Omnisend makes itself from imported ones (derived events, segment entries)
_OMNISEND_ORIGINS: Final = frozenset({IMPORT_ORIGIN, "", "omnisend"})
#: the trigger Omnisend fires when a contact enters a segment (a segment can be built on order data)
SEGMENT_ENTRY: Final = "entered segment"
_SEGMENT_KEYS: Final = ("segmentName", "segmentID", "segmentId", "segment")

BLOCK: Final = "block"
WARN: Final = "warn"
PASS: Final = "pass"
DISABLED: Final = "disabled"


@dataclass(frozen=True)
class AutomationVerdict:
    """The verdict on one automation, with every reason for it (shown in the log and the report)."""

    id: str
    name: str
    verdict: str
    reasons: tuple[str, ...] = ()
    event: str | None = None
    origin: str = ""
    updated_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "event": self.event,
            "origin": self.origin,
            "updatedAt": self.updated_at,
        }

    def describe(self) -> str:
        """``'Name' (id ...): reason; reason``: one automation in a message."""
        return f"{self.name!r} (id {self.id}): {'; '.join(self.reasons)}"


@dataclass(frozen=True)
class AutomationAssessment:
    """Every automation considered, in the order listed, with its verdict."""

    verdicts: tuple[AutomationVerdict, ...]

    @property
    def blocking(self) -> list[AutomationVerdict]:
        return [v for v in self.verdicts if v.verdict == BLOCK]

    @property
    def warnings(self) -> list[str]:
        return [f"automation {v.describe()}" for v in self.verdicts if v.verdict == WARN]


@dataclass
class _Judgement:
    """The reasons found for one automation, sorted by how much they weigh."""

    blocks: list[str] = field(default_factory=list)
    warns: list[str] = field(default_factory=list)

    def verdict(self) -> tuple[str, tuple[str, ...]]:
        if self.blocks:
            return BLOCK, tuple(self.blocks + self.warns)
        if self.warns:
            return WARN, tuple(self.warns)
        return PASS, ("nothing imported reaches its trigger, exits or splits",)


@cache
def _order_property_names() -> frozenset[str]:
    """The order ``properties`` the import sends (from the shipped schema): what a filter may read.

    Read once per process: the shipped schema does not change while it runs."""
    defs = schema_documents()[DEFS_FILE]["$defs"]
    return frozenset(defs["orderProperties"]["properties"])


def _strings(node: Any) -> Iterator[str]:
    """Every key and string value in a JSON structure."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _strings(value)


def _reads_order_data(node: Any, fed_names: frozenset[str]) -> str | None:
    """What order data a filter structure reads (an imported event name or an order property), or None."""
    properties = _order_property_names()
    for text in _strings(node):
        if text in fed_names or text in properties:
            return repr(text)
    return None


def _segment_name(condition: Mapping[str, Any]) -> str | None:
    for text_key in _SEGMENT_KEYS:
        for found in _values_of(condition, text_key):
            if isinstance(found, str) and found:
                return found
    return None


def _values_of(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, Mapping):
        for k, value in node.items():
            if k == key:
                yield value
            yield from _values_of(value, key)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _values_of(value, key)


class _Assessor:
    """Applies the rule of the module docstring to one automation at a time."""

    def __init__(self, event_names: Iterable[str]) -> None:
        self.imported = frozenset(event_names)
        self.derived = {
            derived: source
            for derived, sources in DERIVED_EVENT_NAMES.items()
            for source in sources
            if source in self.imported
        }
        self.fed = self.imported | frozenset(self.derived)
        self.lowered = {name.lower(): name for name in self.fed}

    def verdict(self, automation: Mapping[str, Any]) -> AutomationVerdict:
        ident = str(automation.get("id") or "(no id)")
        name = str(automation.get("name") or "(unnamed)")
        updated = automation.get("updatedAt")
        updated_at = updated if isinstance(updated, str) else None
        if automation.get("isEnabled") is False:
            return AutomationVerdict(ident, name, DISABLED, ("disabled",), updated_at=updated_at)
        judgement = _Judgement()
        event, origin = self._trigger(automation.get("trigger"), judgement)
        self._exits(automation.get("exitConditions"), judgement)
        self._splits(automation.get("blocks"), judgement)
        verdict, reasons = judgement.verdict()
        return AutomationVerdict(ident, name, verdict, reasons, event, origin, updated_at)

    # -- the trigger ---------------------------------------------------------------------------------

    def _trigger(self, trigger: Any, judgement: _Judgement) -> tuple[str | None, str]:
        if isinstance(trigger, str) and trigger.strip():  # v5's display name, e.g. "Placed order"
            self._judge_event(trigger.strip().lower(), "", judgement, {})
            return trigger.strip().lower(), ""
        condition = trigger.get("condition") if isinstance(trigger, Mapping) else None
        event = condition.get("event") if isinstance(condition, Mapping) else None
        origin = condition.get("origin") if isinstance(condition, Mapping) else None
        if not isinstance(condition, Mapping) or not isinstance(event, str) or not event:
            judgement.blocks.append(
                f"its trigger has a shape the check does not know ({_shape(trigger)}), so it cannot be "
                "judged: that counts as a risk"
            )
            return None, ""
        origin = origin if isinstance(origin, str) else ""
        self._judge_event(event, origin, judgement, condition)
        assert isinstance(trigger, Mapping)
        audience = trigger.get("audienceFilterGroup")
        read = _reads_order_data(audience, self.fed) if audience else None
        if read is not None:
            judgement.warns.append(
                f"its trigger's audience filter reads order data ({read}): imported orders can change "
                "who enters it"
            )
        return event, origin

    def _judge_event(
        self, event: str, origin: str, judgement: _Judgement, condition: Mapping[str, Any]
    ) -> None:
        where = repr(origin) if origin else "any origin"
        if event == SEGMENT_ENTRY:
            segment = _segment_name(condition)
            named = f"segment {segment!r}" if segment else "a segment (the API does not name it)"
            judgement.blocks.append(
                f"triggered when a contact enters {named}; a segment can be built on order data, so "
                "imported orders can move contacts into it"
            )
        elif event in self.imported:
            self._judge_origin(
                event, origin, _MATCHING_ORIGINS, f"triggered by imported {event!r}", judgement
            )
        elif event in self.derived:
            what = f"triggered by {event!r}, which Omnisend derives from imported {self.derived[event]!r}"
            self._judge_origin(event, origin, _OMNISEND_ORIGINS, what, judgement)
        elif event.lower() in self.lowered:
            judgement.warns.append(
                f"triggered by {event!r} from {where}, which differs from the imported "
                f"{self.lowered[event.lower()]!r} only in case; Omnisend matches names exactly, so it "
                "should not fire - check it in Omnisend"
            )

    @staticmethod
    def _judge_origin(
        event: str, origin: str, origins: frozenset[str], what: str, judgement: _Judgement
    ) -> None:
        if origin in origins:
            judgement.blocks.append(f"{what} from {repr(origin) if origin else 'any origin'}")
        else:
            judgement.warns.append(
                f"triggered by {event!r} from origin {origin!r}; the import sends origin "
                f"{IMPORT_ORIGIN!r}, so it should not fire - check it in Omnisend"
            )

    # -- what changes a running automation -----------------------------------------------------------

    def _exits(self, exits: Any, judgement: _Judgement) -> None:
        if exits is None:
            return
        if not isinstance(exits, list):
            judgement.blocks.append(
                f"its exitConditions have a shape the check does not know ({_shape(exits)})"
            )
            return
        for exit_condition in exits:
            event = exit_condition.get("event") if isinstance(exit_condition, Mapping) else None
            origin = exit_condition.get("origin") if isinstance(exit_condition, Mapping) else None
            if event in self.fed and (origin or "") in _OMNISEND_ORIGINS:
                judgement.warns.append(
                    f"it has an exit condition on {event!r}: contacts in that flow who appear in the "
                    "imported events may be removed from it"
                )

    def _splits(self, blocks: Any, judgement: _Judgement) -> None:
        if blocks is None:
            return
        if not isinstance(blocks, list):
            judgement.blocks.append(f"its blocks have a shape the check does not know ({_shape(blocks)})")
            return
        for block in blocks:
            kind = block.get("type") if isinstance(block, Mapping) else None
            if isinstance(kind, str) and "split" in kind.lower():
                read = _reads_order_data(block, self.fed)
                if read is not None:
                    judgement.warns.append(
                        f"a {kind!r} block splits on order data ({read}): imported orders can change "
                        "which path its contacts take"
                    )


def _shape(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"an object with keys {sorted(map(str, value))[:8]}"
    return f"{type(value).__name__} {str(value)[:40]!r}" if value is not None else "missing"


def assess_automations(
    automations: Iterable[Mapping[str, Any]], event_names: Iterable[str]
) -> AutomationAssessment:
    """Judge each automation against the imported event names (see the module docstring).

    An automation counts as enabled unless it says ``"isEnabled": false`` (the list was asked for
    enabled ones; one that does not say is not trusted to be off).
    """
    assessor = _Assessor(event_names)
    return AutomationAssessment(tuple(assessor.verdict(a) for a in automations))
