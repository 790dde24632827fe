"""RFC 9457 problem bodies, shaped like the 2026-03-15 contract's Problem, ValidationProblem and
RateLimitProblem (the emulator answers both API versions with them; v5's own error shape is undocumented).
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_omnisend.testing.emulator.items import FieldError

PROBLEM_CONTENT_TYPE = "application/problem+json"
_TYPES = {
    400: "https://problems.omnisend.com/validation-error",
    401: "https://problems.omnisend.com/unauthorized",
    403: "https://problems.omnisend.com/forbidden",
    404: "https://problems.omnisend.com/not-found",
    405: "https://problems.omnisend.com/method-not-allowed",
    411: "https://problems.omnisend.com/length-required",
    413: "https://problems.omnisend.com/payload-too-large",
    429: "https://problems.omnisend.com/rate-limit-exceeded",
}


def problem(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """A Problem body; ``extra`` adds ``errors`` (400) or ``retryAfter`` (429)."""
    body: dict[str, Any] = {
        "type": _TYPES.get(status, "https://problems.omnisend.com/problem"),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": f"urn:omnisend:request:{uuid.uuid4()}",
    }
    body.update(extra)
    return body


def validation_problem(detail: str, errors: Iterable[FieldError]) -> dict[str, Any]:
    return problem(400, detail, errors=[e.to_dict() for e in errors])


def dumps(body: Any) -> bytes:
    return orjson.dumps(body)
