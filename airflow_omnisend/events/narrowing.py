"""Make ``jsonschema`` explain a rejected event quickly without changing a word of what it says.

``jsonschema`` spends most of an explanation descending into the parts of the event that are fine. Two
cuts keep it where the errors are: line items that are valid on their own are blanked
(:func:`without_valid_line_items`), and the schema is narrowed to the instance locations where the
compiled screen finds errors (:func:`narrowed_reference_validator`). Both leave the errors, their
messages and their order as plain ``jsonschema`` reports them on the untouched event; docs/validation.md
says why, and the tests hold the explanations to plain ``jsonschema`` on the shipped schema.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from airflow_omnisend.events.schema import inlined_event_schema
from airflow_omnisend.events.screen import error_locations, passes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from jsonschema import Draft202012Validator

__all__ = ["narrowed_reference_validator", "narrowed_schema", "without_valid_line_items"]

#: Keywords whose outcome depends on other subschemas' results or on references: a schema using any of
#: them anywhere is explained with the full schema.
_NOT_NARROWABLE = frozenset(
    ("$ref", "$dynamicRef", "$recursiveRef", "unevaluatedProperties", "unevaluatedItems")
)


def without_valid_line_items(
    event: dict[str, Any], array_keys: tuple[str, ...], item_ok: Callable[[Any], bool]
) -> dict[str, Any]:
    """A shallow copy of ``event`` whose line items that are valid on their own are replaced by ``{}``.

    The replacement cannot change the errors: a line-item array is ``{type: array, items: lineItem}``
    (each item judged alone), ``{}`` is a valid line item, indexes (so paths) stay, and no message
    quotes a whole ``properties`` object or array that is still valid. ``event`` itself is untouched.
    """
    props = event.get("properties")
    if type(props) is not dict:
        return event
    pruned_props: dict[str, Any] | None = None
    for key in array_keys:
        items = props.get(key)
        if type(items) is not list:
            continue
        pruned = [{} if passes(item_ok, item) else item for item in items]
        if pruned_props is None:
            pruned_props = dict(props)
        pruned_props[key] = pruned
    if pruned_props is None:
        return event
    return {**event, "properties": pruned_props}


def narrowed_reference_validator(name: str, event: dict[str, Any]) -> Draft202012Validator | None:
    """``jsonschema`` for ``event`` on its schema narrowed to where the compiled screen finds errors.

    Every ``properties`` subschema reached through ``properties`` / ``allOf`` / ``items`` whose value
    carries no error is replaced by ``true`` (:func:`narrowed_schema`): a subschema that yields no error
    for its value yields the same nothing as ``true``, and every other keyword is kept. ``None`` when the
    screen finds no error or cannot take the event (the caller then uses the full schema, as it also
    does when the narrowed one finds nothing).
    """
    paths = error_locations(name, event)
    if paths is None:
        return None
    return _narrowed_validator(name, paths)


@functools.lru_cache(maxsize=256)
def _narrowed_validator(
    name: str, error_paths: frozenset[tuple[str | None, ...]]
) -> Draft202012Validator | None:
    """The reference validator on :func:`narrowed_schema` (cached: rejected events repeat a few
    shapes of error paths); ``None`` when the schema uses a keyword that narrowing cannot see through."""
    from jsonschema import Draft202012Validator

    if not _narrowable(name):
        return None
    return Draft202012Validator(narrowed_schema(inlined_event_schema(name), error_paths))


@functools.cache
def _narrowable(name: str) -> bool:
    return not _uses_keywords(inlined_event_schema(name), _NOT_NARROWABLE)


def _uses_keywords(schema: Any, keywords: frozenset[str]) -> bool:
    if isinstance(schema, list):
        return any(_uses_keywords(item, keywords) for item in schema)
    if not isinstance(schema, dict):
        return False
    return any(key in keywords or _uses_keywords(value, keywords) for key, value in schema.items())


def narrowed_schema(schema: Any, error_paths: Iterable[tuple[str | None, ...]]) -> Any:
    """``schema`` with each ``properties`` entry whose key carries no error path replaced by ``true``.

    ``error_paths`` are instance paths relative to the node ``schema`` applies to, with every prefix
    present and array indexes as ``None``. Only ``properties``, ``allOf`` and an ``items`` schema are
    walked (they apply their subschemas to the same node or to its children, each judged alone); every
    other keyword is copied as it is. A ``true`` entry is left out where no ``additionalProperties``
    of the same object reads the keys of ``properties`` (it constrains nothing either way).
    """
    if not isinstance(schema, dict):
        return schema
    paths = list(error_paths)
    out: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword == "properties" and isinstance(value, dict):
            out[keyword] = _narrowed_properties(value, paths, keep_true="additionalProperties" in schema)
        elif keyword == "allOf" and isinstance(value, list):
            out[keyword] = [narrowed_schema(subschema, paths) for subschema in value]
        elif keyword == "items" and isinstance(value, dict):
            below = [path[1:] for path in paths if path and path[0] is None]
            out[keyword] = narrowed_schema(value, below) if below else True
        else:
            out[keyword] = value
    return out


def _narrowed_properties(
    properties: dict[str, Any], paths: list[tuple[str | None, ...]], *, keep_true: bool
) -> dict[str, Any]:
    narrowed: dict[str, Any] = {}
    for key, subschema in properties.items():
        below = [path[1:] for path in paths if path and path[0] == key]
        if below:
            narrowed[key] = narrowed_schema(subschema, below)
        elif keep_true:
            narrowed[key] = True
    return narrowed
