"""The body format: the exact envelope, its size equation, and decoding as the inverse of encoding."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_omnisend.events.body_format import (
    BODY_PREFIX,
    BODY_SUFFIX,
    ENVELOPE_BYTES,
    decode_body,
    encode_body,
)
from airflow_omnisend.exceptions import OmnisendInputError

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)  # orjson's range
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_OBJECTS = st.dictionaries(st.text(max_size=8), _VALUES, max_size=6)


@st.composite
def item_lines(draw: st.DrawFn) -> bytes:
    """An event-like JSON object as a line: compact (orjson) or with spaces and escapes (json)."""
    event = draw(_OBJECTS)
    if draw(st.booleans()):
        return orjson.dumps(event)
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]))
    text = json.dumps(event, separators=separators, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8")


def test_the_envelope() -> None:
    assert BODY_PREFIX == b'{"method":"POST","endpoint":"events","items":['
    assert BODY_SUFFIX == b"]}"
    assert len(BODY_PREFIX) + len(BODY_SUFFIX) == ENVELOPE_BYTES
    assert (
        encode_body([b'{"a":1}', b'{"b":2}'])
        == b'{"method":"POST","endpoint":"events","items":[{"a":1},{"b":2}]}'
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(item_lines(), max_size=6))
def test_decode_is_the_inverse_of_encode(lines: list[bytes]) -> None:
    body = encode_body(lines)
    assert decode_body(body) == lines
    assert encode_body(decode_body(body)) == body
    parsed = orjson.loads(body)
    assert (parsed["method"], parsed["endpoint"]) == ("POST", "events")
    assert parsed["items"] == [orjson.loads(line) for line in lines]
    if lines:  # the size equation planning relies on: envelope, then each item's length plus a comma
        assert len(body) == ENVELOPE_BYTES - 1 + sum(len(line) + 1 for line in lines)


@pytest.mark.parametrize("body", [b'{"items":[]}', b"", b'{"method":"POST","endpoint":"events","items":[{}'])
def test_decode_refuses_a_body_not_in_the_format(body: bytes) -> None:
    with pytest.raises(OmnisendInputError, match="not in the planner's format; re-run the plan step"):
        decode_body(body)
