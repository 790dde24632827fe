"""Turning Omnisend's answers into typed errors and normalized batch items.

Shared by the sync and the async hook so both raise the same exception for the same status. Nothing
here imports Airflow or an HTTP library.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any

from airflow_omnisend.exceptions import (
    OmnisendAPIError,
    OmnisendAuthError,
    OmnisendNotFoundError,
    OmnisendPayloadTooLargeError,
    OmnisendRateLimitError,
    OmnisendServerError,
    OmnisendValidationError,
)
from airflow_omnisend.hooks._pacing import PacingDeadlineError, RateLimitPacer, RetryBudget, server_named_wait

#: Longest piece of a response body that may reach a log line or an exception.
MAX_BODY_CHARS = 500

_NOT_JSON: Any = object()

_ERROR_TYPES: dict[int, type[OmnisendAPIError]] = {
    400: OmnisendValidationError,
    422: OmnisendValidationError,
    401: OmnisendAuthError,
    403: OmnisendAuthError,
    404: OmnisendNotFoundError,
    413: OmnisendPayloadTooLargeError,
    429: OmnisendRateLimitError,
}

_HINTS: dict[int, str] = {
    400: "Omnisend refused the request as invalid",
    422: "Omnisend refused the request as invalid",
    401: "Omnisend rejected the API key (401): check the connection's password, its auth extra "
    "(api_key or bearer) and api_version",
    403: "Omnisend refused access (403): the key or token lacks a permission (scope) for this endpoint",
    404: "Omnisend found nothing there (404): the batch does not exist (batches are kept about 7 days) "
    "or this API version lacks the endpoint",
    410: "Omnisend retired this API version (410): set the connection's api_version to a supported one",
    413: "Omnisend refused the body as too large (413): lower the connection's max_payload_bytes",
}


def is_retryable_status(status: int) -> bool:
    """429, 408 and 5xx are worth another attempt; other statuses answer the same way again."""
    return status in (408, 429) or status >= 500


def truncate(text: str, limit: int = MAX_BODY_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... [{len(text) - limit} more chars]"


def scrub(text: str, secret: str | None) -> str:
    """Remove the secret from a text that came from outside (a server could echo a header back)."""
    return text.replace(secret, "***") if secret else text


def parse_json(content: bytes) -> Any:
    """The JSON value of a body, or :data:`_NOT_JSON`."""
    if not content:
        return _NOT_JSON
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


def is_json(value: Any) -> bool:
    return value is not _NOT_JSON


def body_text(content: bytes, secret: str | None) -> str:
    """A body as log-safe text: decoded leniently, secret removed, truncated."""
    return truncate(scrub(content.decode("utf-8", errors="replace"), secret))


def problem_from(content: bytes, secret: str | None) -> dict[str, Any]:
    """Omnisend's problem detail (RFC 9457, or the v5 ``{"error", "fields"}``), or
    ``{"detail": <truncated text>}`` when the body is not a JSON object. The secret is scrubbed first."""
    if not content:
        return {}
    text = scrub(content.decode("utf-8", errors="replace"), secret)
    try:
        value = json.loads(text)
    except ValueError:
        value = _NOT_JSON
    if isinstance(value, dict):
        return value
    return {"detail": truncate(text)}


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def credential_hint(status: int, conn_id: str, request: str) -> str:
    """What a 401/403 on ``request`` means for connection ``conn_id`` and how to fix it (no retry does)."""
    if status == 401:
        return (
            f"Omnisend rejected the API key of connection {conn_id!r} (401) on {request}: the key is "
            "wrong or was revoked. Fix: put a valid key (a new one if it was revoked) in the password of "
            f"connection {conn_id!r} (UI, or airflow connections delete/add), then rerun the failed runs "
            "(airflow backfill create ... --reprocess-behavior failed); not retried, the same key is "
            "refused again"
        )
    return (
        f"Omnisend refused access (403) on {request} with the key of connection {conn_id!r}: it lacks a "
        "permission (scope) for this endpoint. Fix: give the key that permission, or put a key that has "
        f"it in connection {conn_id!r}; not retried"
    )


def api_error(
    status: int,
    problem: dict[str, Any],
    *,
    request: str,
    retry_after: float | None = None,
    attempts: int = 1,
    conn_id: str | None = None,
) -> OmnisendAPIError:
    """The typed error for an error status. ``attempts`` > 1 says the retry budget ran out; ``conn_id``
    names the connection in a 401/403 (whose fix is in the connection)."""
    if status >= 500:
        cls: type[OmnisendAPIError] = OmnisendServerError
    else:
        cls = _ERROR_TYPES.get(status, OmnisendAPIError)
    hint = _HINTS.get(status) or f"Omnisend answered {status} {reason_phrase(status)}".rstrip()
    message = f"{hint} to {request}"
    if conn_id and status in (401, 403):
        message = credential_hint(status, conn_id, request)
    if attempts > 1:
        message += f", still after {attempts} attempts (retry budget spent)"
    return cls(message, status=status, problem=problem, retry_after=retry_after, request=request)


# -- batch items -----------------------------------------------------------------------------------

#: Where Omnisend lists an item, most telling first: ``responses`` are the successful operations.
ITEM_LISTS = ("responses", "errors", "items")


def _code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def normalize_item(raw: Mapping[str, Any], listed_under: str) -> dict[str, Any]:
    """One batch item with the keys every consumer may rely on: ``itemID``, ``status``,
    ``responseCode`` (int or None), ``request``, ``response`` and ``listedUnder`` (which array of the
    Batch body held it). Other keys the server sent are kept."""
    item = dict(raw)
    item_id = raw.get("itemID", raw.get("itemId", raw.get("id")))
    item.update(
        itemID=None if item_id is None else str(item_id),
        status=raw.get("status"),
        responseCode=_code(raw.get("responseCode")),
        request=raw.get("request"),
        response=raw.get("response"),
        listedUnder=listed_under,
    )
    return item


def _listed_items(body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Each item object of the body's item lists, normalised, in list order."""
    for list_name in ITEM_LISTS:
        entries = body.get(list_name)
        if not isinstance(entries, list):
            continue
        for raw in entries:
            if isinstance(raw, Mapping):
                yield normalize_item(raw, list_name)


def merge_batch_items(body: Any) -> list[dict[str, Any]]:
    """Every item of a Batch body, succeeded and failed, once each.

    The body may list items under ``responses`` (succeeded), ``errors`` (failed) and/or ``items``;
    an item listed twice (same ``itemID``) is merged, keeping the most telling list name.
    A bare JSON list is taken as the items.
    """
    if isinstance(body, list):
        body = {"items": body}
    if not isinstance(body, Mapping):
        return []
    merged: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for item in _listed_items(body):
        item_id = item["itemID"]
        seen = None if item_id is None else by_id.get(item_id)
        if seen is None:
            if item_id is not None:
                by_id[item_id] = item
            merged.append(item)
            continue
        for key, value in item.items():
            if seen.get(key) is None and value is not None:
                seen[key] = value
    return merged


def item_succeeded(item: Mapping[str, Any]) -> bool:
    """An item succeeded when its responseCode is 2xx or Omnisend listed it under ``responses``."""
    code = _code(item.get("responseCode"))
    return (code is not None and 200 <= code < 300) or item.get("listedUnder") == "responses"


# -- what to do after an error status (shared by the sync and the async request loop) ---------------


def wait_before_retry(
    status: int,
    content: bytes,
    headers: Mapping[str, str],
    *,
    request: str,
    secret: str | None,
    budget: RetryBudget,
    pacer: RateLimitPacer,
    conn_id: str | None = None,
) -> tuple[float, bool, str]:
    """After an error status, return ``(wait, held, note)``: seconds before the next attempt, whether
    the wait is a hold on every request of the hook (a 429; the pacer already enforces it, the caller
    only has to acquire again), and a log-safe note. Raises the typed error when the status is final
    (400/401/403/404/413/...: at once, naming ``conn_id`` for a 401/403) or the retry budget is spent.
    """
    problem = problem_from(content, secret)
    named: float | None = None
    source = "backoff"
    if status == 429:
        named, source = server_named_wait(parse_json(content), headers)
        if named is not None:
            # First of all: no request of this hook may start before the time the server named.
            pacer.hold_for(named)
    if not is_retryable_status(status):
        raise api_error(status, problem, request=request, conn_id=conn_id)
    wait = budget.next_wait(named=named, now=pacer.clock(), rand=pacer.rand())
    if wait is None:
        raise api_error(status, problem, request=request, retry_after=named, attempts=budget.attempts)
    if status == 429:
        pacer.hold_for(wait)
        said = "no wait named" if named is None else f"wait {named:g}s named by the {source}"
        return wait, True, f"429 ({said})"
    return wait, False, f"{status}; body: {body_text(content, secret)}"


def pacing_deadline_error(err: PacingDeadlineError, request: str) -> OmnisendRateLimitError:
    """The rate-limit hold outlasts the call's budget: fail now instead of sleeping and failing later."""
    return OmnisendRateLimitError(
        f"Omnisend's rate limit holds requests for {err.wait:.1f}s more, longer than the retry budget "
        f"allows; {request} was not sent",
        status=429,
        problem={"detail": str(err)},
        retry_after=err.wait,
        request=request,
    )


#: the counters of a Batch that tell, without reading its items, how its items ended
COUNTER_FIELDS = ("totalCount", "finishedCount", "errorsCount")


def _count(batch: Mapping[str, Any], name: str) -> int | None:
    value = batch.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def counters_say_clean(batch: Mapping[str, Any], expected_items: int) -> bool:
    """True when a batch's counters alone prove that each of ``expected_items`` items finished
    without error: status ``finished``, ``totalCount == finishedCount == expected_items`` and
    ``errorsCount == 0``. Anything else (errors, a stop, a counter missing or inconsistent) needs the
    items read."""
    total, finished, errors = (_count(batch, name) for name in COUNTER_FIELDS)
    return batch.get("status") == "finished" and total == expected_items and finished == total and errors == 0


class BatchListing:
    """Pages of ``GET /batches`` searched for a set of batch ids (shared by the sync and async hooks).

    ``add_page`` records the wanted batches of one page and says whether to read the next one: not
    once every wanted id was seen, nor when the page was the last (``paging.next`` empty, or, without
    ``paging``, a short page)."""

    def __init__(self, batch_ids: Iterator[str] | list[str] | tuple[str, ...], page_size: int) -> None:
        self.wanted = set(batch_ids)
        self.page_size = page_size
        self.found: dict[str, dict[str, Any]] = {}
        self.offset = 0
        self.pages = 0

    def add_page(self, data: Any) -> bool:
        self.pages += 1
        body = data if isinstance(data, dict) else {}
        page = [b for b in body.get("batches") or [] if isinstance(b, dict)]
        for batch in page:
            batch_id = batch.get("batchID")
            if isinstance(batch_id, str) and batch_id in self.wanted:
                self.found[batch_id] = batch
        self.offset += len(page)
        paging = body.get("paging")
        more = bool(paging.get("next")) if isinstance(paging, dict) else len(page) >= self.page_size
        return bool(page) and more and len(self.found) < len(self.wanted)

    @property
    def missing(self) -> list[str]:
        """Wanted ids no page held (read one by one: older than ``dateFrom``, or listed late)."""
        return sorted(self.wanted - set(self.found))
