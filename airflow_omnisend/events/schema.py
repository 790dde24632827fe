"""The JSON Schemas of the five Omnisend order events, loaded from the package, for both validators.

The schema files in ``events/schemas/`` are the single source of truth for what a valid order event
is: the mapping produces that shape, the validator enforces it. Each event schema references shared
pieces in ``defs.json`` by relative ``$ref``; a registry holding all six documents under their ``$id``
makes those references resolve the same way in ``jsonschema`` (the reference validator, which explains
rejections) and in ``jsonschema_rs`` (the compiled screen), without any network retrieval.

Nothing here imports ``jsonschema`` at module import time: it is the slowest import of the validate
command, and a run where every event passes never needs it.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from airflow_omnisend.events.names import (
    CANCELED,
    EVENT_NAMES,
    FULFILLED,
    PAID,
    PLACED,
    REFUNDED,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import referencing
    from jsonschema import Draft202012Validator

__all__ = [
    "DEFS_FILE",
    "EVENT_NAMES",  # defined in events/names.py; re-exported: the schemas exist per event name
    "LINE_ITEM_ARRAYS",
    "SCHEMA_BASE_URI",
    "SCHEMA_FILES",
    "event_schema",
    "inlined_event_schema",
    "line_item_screen",
    "reference_registry",
    "reference_validator",
    "registry_reference_validator",
    "schema_documents",
    "screen_registry",
    "screen_validator",
]
#: eventName -> schema file in ``airflow_omnisend/events/schemas/``.
SCHEMA_FILES: Mapping[str, str] = MappingProxyType(
    {
        PLACED: "placed-order.json",
        PAID: "paid-for-order.json",
        FULFILLED: "order-fulfilled.json",
        CANCELED: "order-canceled.json",
        REFUNDED: "order-refunded.json",
    }
)
DEFS_FILE = "defs.json"

#: Base of every schema ``$id``. The ``.invalid`` host can never resolve: a reference that the registry
#: does not hold fails loudly instead of being fetched from somewhere.
SCHEMA_BASE_URI = "https://airflow-omnisend.invalid/schemas/"


@functools.cache
def schema_documents() -> Mapping[str, Mapping[str, Any]]:
    """All shipped schema documents by file name (``defs.json`` and one per event).

    Cached and shared: callers must not mutate the documents.
    """
    package = resources.files("airflow_omnisend.events") / "schemas"
    docs: dict[str, Mapping[str, Any]] = {}
    for file_name in (DEFS_FILE, *SCHEMA_FILES.values()):
        doc = json.loads((package / file_name).read_text(encoding="utf-8"))
        expected_id = SCHEMA_BASE_URI + file_name
        if doc.get("$id") != expected_id:  # a renamed or copied file would silently shadow another one
            raise RuntimeError(f"schema {file_name} has $id {doc.get('$id')!r}, expected {expected_id!r}")
        docs[file_name] = doc
    return MappingProxyType(docs)


def event_schema(event_name: str) -> Mapping[str, Any]:
    """The schema document of one event; ``KeyError`` for a name that is not an order event."""
    return schema_documents()[SCHEMA_FILES[event_name]]


@functools.cache
def reference_registry() -> referencing.Registry[Any]:
    """``referencing`` registry with every shipped document, for ``jsonschema``."""
    import referencing
    from referencing.jsonschema import DRAFT202012

    return referencing.Registry().with_resources(
        (doc["$id"], DRAFT202012.create_resource(dict(doc))) for doc in schema_documents().values()
    )


@functools.cache
def screen_registry() -> jsonschema_rs.Registry:
    """``jsonschema_rs`` registry with every shipped document, for the compiled screen."""
    return jsonschema_rs.Registry([(doc["$id"], dict(doc)) for doc in schema_documents().values()])


@functools.cache
def reference_validator(event_name: str) -> Draft202012Validator:
    """The ``jsonschema`` validator of one event (built once per name): slow, explains every error.

    It validates against :func:`inlined_event_schema`, the same schema with every ``$ref`` inlined:
    ``jsonschema`` resolves a ``$ref`` through the registry on every visit, so the referenced form
    makes explaining a rejected event several times slower (docs/validation.md). The tests hold both
    forms to the same errors.
    """
    from jsonschema import Draft202012Validator

    return Draft202012Validator(inlined_event_schema(event_name))


@functools.cache
def registry_reference_validator(event_name: str) -> Draft202012Validator:
    """``jsonschema`` on the schema as shipped, ``$ref`` resolved through :func:`reference_registry`."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(dict(event_schema(event_name)), registry=reference_registry())


def inlined_event_schema(event_name: str) -> dict[str, Any]:
    """One event's schema with each ``$ref`` replaced by its target (a fresh, self-contained document).

    A ``$ref`` with sibling keywords becomes ``allOf: [target]`` next to those siblings, which is what
    it means in 2020-12. (``jsonschema_rs.dereference`` merges the target into the referring object
    instead, and so drops keywords both define, e.g. an event's own ``properties``: not usable here.)
    """
    file_name = SCHEMA_FILES[event_name]
    inlined = _inline(schema_documents()[file_name], file_name, ())
    if not isinstance(inlined, dict):  # pragma: no cover - the documents are objects
        raise TypeError(f"{file_name} is not a JSON object")
    return inlined


def _inline(node: Any, file_name: str, seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, file_name, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return {key: _inline(value, file_name, seen) for key, value in node.items()}
    target_file, _, pointer = ref.partition("#")
    target_file = target_file or file_name
    where = f"{target_file}#{pointer}"
    if where in seen:
        raise ValueError(f"recursive $ref {ref!r} in {file_name}: the order-event schemas must not recurse")
    target: Any = schema_documents()[target_file]
    for part in filter(None, pointer.split("/")):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    resolved = _inline(target, target_file, (*seen, where))
    if len(node) == 1:
        return resolved
    # keep the keyword order (jsonschema reports errors in it): allOf takes the place of $ref
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            out["allOf"] = [resolved, *(_inline(v, file_name, seen) for v in node.get("allOf", []))]
        elif key != "allOf":
            out[key] = _inline(value, file_name, seen)
    return out


@functools.cache
def screen_validator(event_name: str) -> jsonschema_rs.Validator:
    """The compiled ``jsonschema_rs`` validator of one event (built once per name): fast yes/no.

    The standard (linear-time) regex engine is chosen explicitly: the schema's patterns are written for
    the subset where Rust ``regex`` and Python ``re`` agree, and formats are not asserted by either side.
    """
    return jsonschema_rs.validator_for(
        dict(event_schema(event_name)),
        registry=screen_registry(),
        pattern_options=jsonschema_rs.RegexOptions(),
        validate_formats=False,
    )


#: eventName -> the ``properties`` keys that hold arrays of line items (``defs.json#/$defs/lineItems``).
LINE_ITEM_ARRAYS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: ("lineItems", "refundedLineItems") if name == REFUNDED else ("lineItems",) for name in EVENT_NAMES}
)


@functools.cache
def line_item_screen() -> jsonschema_rs.Validator:
    """Compiled validator of one line item (``defs.json#/$defs/lineItem``), same options as the screen."""
    return jsonschema_rs.validator_for(
        {"$ref": SCHEMA_BASE_URI + DEFS_FILE + "#/$defs/lineItem"},
        registry=screen_registry(),
        pattern_options=jsonschema_rs.RegexOptions(),
        validate_formats=False,
    )
