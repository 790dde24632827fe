"""The shipped schema files: present, valid for both engines, written in the portable regex subset."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import jsonschema
import jsonschema_rs
import pytest

from airflow_omnisend.events import names, schema

SCHEMA_DIR = resources.files("airflow_omnisend.events") / "schemas"
EXPECTED_FILES = {
    "defs.json",
    "placed-order.json",
    "paid-for-order.json",
    "order-fulfilled.json",
    "order-canceled.json",
    "order-refunded.json",
}


def _walk(node: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            if not key.startswith("x-"):  # our annotations (codes, message templates) are not subschemas
                found.extend(_walk(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_walk(value, f"{path}/{i}"))
    return found


def _all_subschemas() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for file_name, doc in schema.schema_documents().items():
        out.extend((f"{file_name}{p}", node) for p, node in _walk(doc))
    return out


def test_one_schema_per_event_name() -> None:
    assert set(schema.SCHEMA_FILES) == set(names.EVENT_NAMES)
    assert schema.EVENT_NAMES is names.EVENT_NAMES


def test_schema_files_are_package_data() -> None:
    shipped = {entry.name for entry in SCHEMA_DIR.iterdir() if entry.name.endswith(".json")}
    assert shipped == EXPECTED_FILES
    assert set(schema.schema_documents()) == EXPECTED_FILES


@pytest.mark.parametrize("file_name", sorted(EXPECTED_FILES))
def test_schema_is_valid_2020_12_with_its_own_id(file_name: str) -> None:
    doc = json.loads((SCHEMA_DIR / file_name).read_text(encoding="utf-8"))
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == schema.SCHEMA_BASE_URI + file_name
    jsonschema.Draft202012Validator.check_schema(doc)
    assert jsonschema_rs.meta.is_valid(doc)


@pytest.mark.parametrize("event_name", schema.EVENT_NAMES)
def test_both_validators_resolve_refs_into_defs(event_name: str) -> None:
    event_schema = schema.event_schema(event_name)
    assert event_schema["properties"]["eventName"]["const"] == event_name
    assert event_schema["$ref"].startswith("defs.json#/$defs/")
    # building them resolves every $ref (the compiled one eagerly); a dangling ref would raise here
    assert schema.screen_validator(event_name) is schema.screen_validator(event_name)
    assert schema.reference_validator(event_name) is schema.reference_validator(event_name)
    resolver = schema.reference_registry().resolver(base_uri=event_schema["$id"])
    assert resolver.lookup("defs.json#/$defs/money").contents["minimum"] == 0


@pytest.mark.parametrize("event_name", schema.EVENT_NAMES)
def test_inlined_schema_has_no_refs_and_keeps_every_keyword(event_name: str) -> None:
    inlined = schema.inlined_event_schema(event_name)
    text = json.dumps(inlined)
    assert '"$ref"' not in text
    jsonschema.Draft202012Validator.check_schema(inlined)
    # the event's own keywords survive next to the inlined envelope
    assert inlined["properties"]["eventName"]["const"] == event_name
    assert inlined["allOf"][0]["additionalProperties"] is False
    order = inlined["properties"]["properties"]
    order = order["allOf"][0] if "allOf" in order else order  # allOf when the event adds properties
    assert order["required"] == ["orderID", "currency"]
    assert order["properties"]["lineItems"]["items"]["properties"]["productQuantity"]["minimum"] == 1
    assert schema.inlined_event_schema(event_name) is not schema.inlined_event_schema(event_name)


def test_every_ref_points_at_an_existing_definition() -> None:
    defs = schema.schema_documents()["defs.json"]["$defs"]
    refs = [node["$ref"] for _, node in _all_subschemas() if "$ref" in node]
    assert refs
    for ref in refs:
        target = ref.removeprefix("defs.json").removeprefix("#/$defs/")
        assert target in defs, ref


PATTERNS = [
    (where, node["pattern"]) for where, node in _all_subschemas() if isinstance(node.get("pattern"), str)
]


@pytest.mark.parametrize(("where", "pattern"), PATTERNS, ids=[w for w, _ in PATTERNS])
def test_patterns_stay_in_the_subset_python_and_rust_agree_on(where: str, pattern: str) -> None:
    re.compile(pattern)
    assert jsonschema_rs.validator_for({"pattern": pattern}, pattern_options=jsonschema_rs.RegexOptions())
    for forbidden in (r"\d", r"\w", r"\s", r"\b", "(?=", "(?!", "(?<", r"\Z", r"\z", r"\A"):
        assert forbidden not in pattern, f"{where}: {forbidden} means different things in Python and Rust"
    assert pattern.isascii(), f"{where}: keep patterns ASCII"


def test_anchored_patterns_refuse_a_trailing_newline_in_both_engines() -> None:
    # Python's '$' also matches before a final newline; Rust's does not. Each anchored pattern sits next
    # to a 'not: {type: string, pattern: \n}' so both engines refuse "value\n".
    for where, node in _all_subschemas():
        if isinstance(node.get("pattern"), str) and node["pattern"].endswith("$"):
            assert node.get("not") == {"type": "string", "pattern": "\\n"}, where


def test_currency_list_is_iso_4217_upper_case() -> None:
    codes = schema.schema_documents()["defs.json"]["$defs"]["currency"]["enum"]
    assert len(codes) == len(set(codes)) > 170
    assert all(re.fullmatch("[A-Z]{3}", c) for c in codes)
    for code in ("EUR", "USD", "GBP", "JPY", "CHF", "PLN", "SEK", "XCG", "ZWG", "SLE", "VED"):
        assert code in codes
    assert "XXX" not in codes  # "no currency": its amounts are no money (README, questionable inputs)
    assert "XTS" not in codes  # reserved for testing


def test_recommended_properties_are_known_to_the_schema() -> None:
    from airflow_omnisend.events.validation import RECOMMENDED_PROPERTIES

    assert set(RECOMMENDED_PROPERTIES) == set(schema.EVENT_NAMES)
    order = schema.schema_documents()["defs.json"]["$defs"]["orderProperties"]["properties"]
    for name, props in RECOMMENDED_PROPERTIES.items():
        extra = schema.event_schema(name)["properties"]["properties"].get("properties", {})
        for prop, code in props:
            assert prop in order or prop in extra, (name, prop)
            assert re.fullmatch("[a-z_]+", code)
