"""The automation-risk rule on its own: which automations the imported names can start or change."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_omnisend.events.automation_risk import assess_automations
from airflow_omnisend.events.names import EVENT_NAMES, PLACED, REFUNDED


def _auto(ident: str, trigger: Any, **more: Any) -> dict[str, Any]:
    return {"id": ident, "name": f"flow {ident}", "isEnabled": True, "trigger": trigger, **more}


def _on(event: str, origin: str = "api", **trigger: Any) -> dict[str, Any]:
    return {"condition": {"event": event, "origin": origin}, **trigger}


def _verdicts(automations: list[dict[str, Any]], names: tuple[str, ...] = EVENT_NAMES) -> dict[str, str]:
    return {v.id: v.verdict for v in assess_automations(automations, names).verdicts}


def test_a_derived_event_blocks_only_when_its_source_is_imported() -> None:
    flows = [_auto("a", _on("ordered product"))]
    assert _verdicts(flows, (PLACED,)) == {"a": "block"}
    assert _verdicts(flows, (REFUNDED,)) == {"a": "pass"}


def test_v5_display_names_are_judged_by_their_lower_case_name() -> None:
    flows = [_auto("a", "Placed order"), _auto("b", "Started checkout")]
    assert _verdicts(flows) == {"a": "block", "b": "pass"}


def test_disabled_ones_are_listed_but_skipped() -> None:
    (verdict,) = assess_automations([{**_auto("a", _on(PLACED)), "isEnabled": False}], EVENT_NAMES).verdicts
    assert (verdict.verdict, verdict.reasons) == ("disabled", ("disabled",))


@pytest.mark.parametrize(
    ("flow", "verdict"),
    [
        (_auto("a", _on(PLACED, origin="shopify")), "warn"),
        (_auto("a", _on("Placed Order")), "warn"),
        (
            _auto("a", _on("viewed product"), exitConditions=[{"event": "ordered product", "origin": "api"}]),
            "warn",
        ),
        (_auto("a", _on("viewed product"), exitConditions=[{"event": PLACED, "origin": "shopify"}]), "pass"),
        (
            _auto("a", _on("viewed product", audienceFilterGroup={"filters": [{"property": "totalPrice"}]})),
            "warn",
        ),
        (
            _auto("a", _on("viewed product"), blocks=[{"type": "split", "rule": {"property": "lineItems"}}]),
            "warn",
        ),
        (_auto("a", _on("viewed product"), blocks=[{"type": "email", "subject": "totalPrice"}]), "pass"),
        (_auto("a", _on("entered segment", origin="")), "block"),
        (_auto("a", {"condition": {"origin": "api"}}), "block"),
        (_auto("a", _on("viewed product"), blocks="split"), "block"),
        (_auto("a", _on("birthday", origin="")), "pass"),
    ],
)
def test_each_shape_gets_its_verdict(flow: dict[str, Any], verdict: str) -> None:
    assert _verdicts([flow]) == {"a": verdict}


def test_a_block_keeps_the_warnings_of_the_same_automation_among_its_reasons() -> None:
    flow = _auto("a", _on(PLACED), exitConditions=[{"event": PLACED, "origin": "api"}])
    (verdict,) = assess_automations([flow], EVENT_NAMES).verdicts
    assert verdict.verdict == "block"
    assert verdict.reasons == (
        "triggered by imported 'placed order' from 'api'",
        "it has an exit condition on 'placed order': contacts in that flow who appear in the imported "
        "events may be removed from it",
    )
    assert verdict.to_dict()["updatedAt"] is None


def test_the_order_properties_are_read_from_the_schema_once_per_process() -> None:
    from airflow_omnisend.events import automation_risk

    automation_risk._order_property_names()
    before = automation_risk._order_property_names.cache_info()
    split = {"type": "split", "filter": {"property": "totalPrice"}}
    assess_automations([_auto("a", _on("viewed product"), blocks=[split] * 5)], EVENT_NAMES)
    after = automation_risk._order_property_names.cache_info()
    assert (after.misses, after.hits - before.hits) == (before.misses, 5)
