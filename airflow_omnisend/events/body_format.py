"""The exact bytes of a ``POST /batches`` request body: the planner writes them, the sender reads them.

A body is ``{"method":"POST","endpoint":"events","items":[<line>,<line>,...]}`` with no whitespace,
each ``<line>`` an event's bytes verbatim. Encoder and decoder live together so the format has one
definition; the size equation planning relies on is in docs/planning.md.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from airflow_omnisend.exceptions import OmnisendInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

BODY_PREFIX = b'{"method":"POST","endpoint":"events","items":['
BODY_SUFFIX = b"]}"
#: bytes a body has besides its items and the commas between them
ENVELOPE_BYTES = len(BODY_PREFIX) + len(BODY_SUFFIX)

_JSON = json.JSONDecoder()


def encode_body(lines: Sequence[bytes]) -> bytes:
    """The body for these item lines (compact JSON objects), exactly as the planner writes it."""
    return BODY_PREFIX + b",".join(lines) + BODY_SUFFIX


def decode_body(body: bytes) -> list[bytes]:
    """The exact bytes of each item of a planned body (:func:`encode_body` in reverse)."""
    if not (body.startswith(BODY_PREFIX) and body.endswith(BODY_SUFFIX)):
        raise OmnisendInputError("a staged body is not in the planner's format; re-run the plan step")
    text = body[len(BODY_PREFIX) : len(body) - len(BODY_SUFFIX)].decode("utf-8")
    lines: list[bytes] = []
    pos, end = 0, len(text)
    while pos < end:
        _, stop = _JSON.raw_decode(text, pos)
        lines.append(text[pos:stop].encode("utf-8"))
        pos = stop
        if pos < end and text[pos] == ",":
            pos += 1
    return lines
