"""What the emulator answers, as a function of one parsed request: routing, auth, rate limit, faults,
and the batch/automation operations. No sockets here (``server.py`` owns them), so the order of the
checks reads top to bottom in :meth:`EmulatorApi.handle`:

1. ``/__emulator__/...`` goes to the control API (no auth, no rate limit, not logged);
2. the rate limit of the presented credential (429 does not spend budget);
3. ``Omnisend-Version`` on ``/api/...`` (400 when missing or unknown);
4. the credential (401), the route (404/405);
5. injected faults on targeted operations (429 burst, 5xx, later a slow or dropped response);
6. the operation itself (403 permission, 413, 400 validation, 404 unknown batch...).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from airflow_omnisend.testing.emulator.automations import AutomationQueryError
from airflow_omnisend.testing.emulator.batches import BATCH_STATUSES, batch_json, utc_text
from airflow_omnisend.testing.emulator.config import (
    SUPPORTED_2026_VERSIONS,
    V5,
    V2026,
    ApiKeyGrant,
    FaultConfig,
)
from airflow_omnisend.testing.emulator.items import FieldError
from airflow_omnisend.testing.emulator.problems import (
    PROBLEM_CONTENT_TYPE,
    dumps,
    problem,
    validation_problem,
)
from airflow_omnisend.testing.emulator.store import RequestRecord

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_omnisend.testing.emulator.server import OmnisendEmulator

log = logging.getLogger(__name__)

BATCH_ENDPOINTS = ("products", "contacts", "events", "categories")
LIST_ENDPOINTS = ("products", "contacts", "events")
BATCH_METHODS = ("POST", "PUT")
BATCH_BODY_KEYS = frozenset({"method", "endpoint", "items", "origin"})
_API_PATH = re.compile(r"/(v5|api)(/.*)?")
_BATCH_PATH = re.compile(r"/batches/([^/]+)(/items)?")
_AUTOMATION_PATH = re.compile(r"/automations/([^/]+)")


#: an operation handler: (request, api version, the caller's grant, path argument) -> response
_Operation = Callable[["Request", str, ApiKeyGrant, str], "Response"]


def fingerprint(secret: str | None) -> str:
    """What the request log keeps instead of a key: a short SHA-256 prefix (or ``anonymous``)."""
    if not secret:
        return "anonymous"
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    #: lower-cased names
    headers: Mapping[str, str]
    body: bytes
    body_size: int
    arrived: float = field(default_factory=time.monotonic)
    arrived_wall: str = field(default_factory=utc_text)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    #: seconds to hold the response back (slow fault)
    delay: float = 0.0
    #: close the connection instead of answering (dropped-response fault)
    drop: bool = False
    #: what the request log records about it (None: not logged)
    record: dict[str, Any] | None = None

    def log_record(self, req: Request, responded: float) -> RequestRecord | None:
        if self.record is None:
            return None
        rec = self.record
        return RequestRecord(
            req.arrived, responded, req.arrived_wall, req.method, req.path, rec.get("api_version"),
            rec.get("key_fingerprint", "anonymous"), self.status, rec.get("retry_after"), rec.get("fault"),
            rec.get("batch_id"), self.drop,
        )  # fmt: skip


def _json(status: int, body: Any) -> Response:
    return Response(status, dumps(body))


def _problem(status: int, detail: str, **extra: Any) -> Response:
    return Response(status, dumps(problem(status, detail, **extra)), PROBLEM_CONTENT_TYPE)


def _invalid(detail: str, errors: list[FieldError]) -> Response:
    return Response(400, dumps(validation_problem(detail, errors)), PROBLEM_CONTENT_TYPE)


class EmulatorApi:
    def __init__(self, emulator: OmnisendEmulator) -> None:
        self._emu = emulator

    # ---- seconds as sent -------------------------------------------------------------------------
    def _seconds(self, value: float) -> float:
        if self._emu.config.fractional_seconds:
            return round(value, 3)
        return float(math.ceil(value))

    def _seconds_text(self, value: float) -> str:
        seconds = self._seconds(value)
        return f"{seconds:.3f}" if self._emu.config.fractional_seconds else str(int(seconds))

    # ---- entry point ------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if req.path == "/__emulator__" or req.path.startswith("/__emulator__/"):
            return self._control(req)
        match = _API_PATH.fullmatch(req.path)
        if match is None:
            resp = _problem(404, f"no such resource: {req.path}")
            resp.record = {}
            return resp
        api_version = V5 if match[1] == "v5" else V2026
        secret, hint = self._credential(req, api_version)
        key_fp = fingerprint(secret)
        resp = self._limited(req, api_version, match[2] or "", secret, hint, key_fp)
        if resp.record is None:
            resp.record = {}
        resp.record.setdefault("api_version", api_version)
        resp.record.setdefault("key_fingerprint", key_fp)
        return resp

    def _limited(
        self, req: Request, api_version: str, rest: str, secret: str | None, hint: str, key_fp: str
    ) -> Response:
        cfg = self._emu.config
        limiter = self._emu.limiter
        decision = limiter.acquire(key_fp, req.arrived)
        if not decision.allowed:
            resp = self._rate_limited(decision.reset, decision.reset, "rate-limit")
        else:
            resp = self._authorised(req, api_version, rest, secret, hint)
            if resp.status == 429:  # a fault burst: give the slot back, a refusal costs no budget
                limiter.refund(key_fp, req.arrived)
            decision = limiter.peek(key_fp, time.monotonic())
        if "reset" in cfg.rate_limit_signals:
            resp.headers["X-Rate-Limit-Limit"] = str(decision.limit)
            resp.headers["X-Rate-Limit-Remaining"] = str(max(decision.remaining, 0))
            resp.headers["X-Rate-Limit-Reset"] = self._seconds_text(decision.reset)
        return resp

    def _rate_limited(self, body_after: float, header_after: float, fault: str) -> Response:
        signals = self._emu.config.rate_limit_signals
        retry_after = self._seconds(body_after)
        extra: dict[str, Any] = {}
        if "body" in signals:
            extra["retryAfter"] = retry_after if self._emu.config.fractional_seconds else int(retry_after)
        resp = _problem(429, "too many requests: the rate limit of this API key is used up", **extra)
        if "header" in signals:
            resp.headers["Retry-After"] = self._seconds_text(header_after)
        named = [retry_after] if "body" in signals else []
        if "header" in signals:
            named.append(self._seconds(header_after))
        resp.record = {"retry_after": max(named) if named else None, "fault": fault}
        return resp

    def _credential(self, req: Request, api_version: str) -> tuple[str | None, str]:
        auth = req.headers.get("authorization", "").strip()
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), ""
        if api_version == V5:
            key = req.headers.get("x-api-key", "").strip()
            if key:
                return key, ""
            return None, "v5 expects 'X-API-KEY: <key>' or 'Authorization: Bearer <token>'"
        if scheme.lower() == "omnisend-api-key" and value.strip():
            return value.strip(), ""
        return (
            None,
            "2026-03-15 expects 'Authorization: Omnisend-API-Key <key>' or 'Authorization: Bearer <token>'",
        )

    def _authorised(
        self, req: Request, api_version: str, rest: str, secret: str | None, hint: str
    ) -> Response:
        """The answer once the rate limit let the request through: version, credential, route, operation."""
        refused = self._version_refusal(req, api_version)
        if refused is not None:
            return refused
        if secret is None:
            return _problem(401, f"missing API credentials: {hint}")
        grant = self._emu.grants.get(secret)
        if grant is None:
            return _problem(401, "the API key or token is not valid")
        route = self._route(req.method, rest, api_version)
        if isinstance(route, Response):
            return route
        return self._operate(req, api_version, grant, route)

    def _version_refusal(self, req: Request, api_version: str) -> Response | None:
        """The 400 for a missing or unknown ``Omnisend-Version`` on ``/api/...``; None when there is none."""
        if api_version != V2026:
            return None
        version = req.headers.get("omnisend-version")
        if version is None:
            return _invalid(
                "the Omnisend-Version header is required",
                [FieldError("Omnisend-Version", "required", "send Omnisend-Version: 2026-03-15")],
            )
        if version not in SUPPORTED_2026_VERSIONS:
            return _invalid(
                f"unsupported Omnisend-Version {version[:40]!r}",
                [FieldError("Omnisend-Version", "invalid_value", "send Omnisend-Version: 2026-03-15")],
            )
        return None

    def _operate(
        self, req: Request, api_version: str, grant: ApiKeyGrant, route: tuple[str, _Operation, str]
    ) -> Response:
        """Run the routed operation under the faults that target it: a 429 burst or a 5xx instead of it,
        or its answer held back (slow)."""
        operation, handler, arg = route
        fault = self._emu.faults.on_request(operation)
        if fault.status_429:
            return self._rate_limited(fault.retry_after, fault.retry_after_header, "429-burst")
        if fault.status_5xx is not None:
            resp = _problem(fault.status_5xx, "the service is temporarily unavailable; retry later")
            resp.record = {"fault": "5xx"}
            return resp
        resp = handler(req, api_version, grant, arg)
        if fault.slow_seconds:
            resp.delay = fault.slow_seconds
            if resp.record is None or "fault" not in resp.record:
                resp.record = {**(resp.record or {}), "fault": "slow"}
        return resp

    def _route(self, method: str, rest: str, api_version: str) -> Response | tuple[str, _Operation, str]:
        rest = rest.rstrip("/")
        table: dict[str, tuple[str, _Operation, str]] = {}
        if rest == "/batches":
            table = {
                "GET": ("list_batches", self._list_batches, ""),
                "POST": ("create_batch", self._create, ""),
            }
        elif m := _BATCH_PATH.fullmatch(rest):
            op = "get_batch_items" if m[2] else "get_batch"
            table = {"GET": (op, self._get_batch, m[1])}
        elif rest == "/automations" and api_version == V2026:
            table = {"GET": ("automations", self._automations, "")}
        elif (m := _AUTOMATION_PATH.fullmatch(rest)) and api_version == V2026:
            table = {"GET": ("automations", self._automation, m[1])}
        else:
            return _problem(404, f"no such resource: {rest or '/'}")
        if method not in table:
            resp = _problem(405, f"{method} is not allowed here; use {', '.join(table)}")
            resp.headers["Allow"] = ", ".join(table)
            return resp
        return table[method]

    # ---- batches ----------------------------------------------------------------------------------
    def _create(self, req: Request, api_version: str, grant: ApiKeyGrant, _: str) -> Response:
        cfg = self._emu.config
        if req.body_size > cfg.max_payload_bytes:
            return _problem(
                413, f"the request body is {req.body_size} bytes; the limit is {cfg.max_payload_bytes} bytes"
            )
        try:
            data = orjson.loads(req.body)
        except orjson.JSONDecodeError as exc:
            return _invalid("the body is not valid JSON", [FieldError("body", "invalid_json", str(exc))])
        if not isinstance(data, dict):
            return _invalid(
                "the body must be a JSON object", [FieldError("body", "invalid_type", "not an object")]
            )
        errors = _batch_body_errors(data, cfg.max_items(api_version), api_version)
        if errors:
            return _invalid(f"the batch has {len(errors)} error(s)", errors)
        endpoint, items = data["endpoint"], data["items"]
        if not grant.allows(f"{endpoint}.write"):
            return _problem(403, f"the API key lacks the permission '{endpoint}.write'")
        if endpoint == "events":
            window = self._emu.faults.refused_window(i.get("eventTime") for i in items if isinstance(i, dict))
            if window is not None:
                resp = _problem(503, f"batches with events in {window} are refused (injected fault)")
                resp.record = {"fault": "refused-window"}
                return resp
        record = self._emu.batches.create(
            api_version=api_version,
            method=data["method"],
            endpoint=endpoint,
            origin=data.get("origin", ""),
            items=items,
            key_fingerprint=fingerprint(grant.key),
        )
        resp = _json(201, {"batchID": record.batch_id, "totalCount": record.total_count})
        resp.drop = self._emu.faults.drop_response()
        resp.record = {"batch_id": record.batch_id, **({"fault": "drop"} if resp.drop else {})}
        return resp

    def _get_batch(self, req: Request, api_version: str, grant: ApiKeyGrant, batch_id: str) -> Response:
        record = self._emu.batches.get(batch_id)
        if record is None:
            return _problem(404, f"batch {batch_id[:40]!r} was not found")
        if not grant.allows(f"{record.endpoint}.read"):
            return _problem(403, f"the API key lacks the permission '{record.endpoint}.read'")
        return _json(200, batch_json(record, self._emu.store))

    def _list_batches(self, req: Request, api_version: str, grant: ApiKeyGrant, _: str) -> Response:
        query, errors = req.query, []
        endpoint = query.get("endpoint")
        if endpoint is None:
            errors.append(
                FieldError("endpoint", "required", f"endpoint is required: one of {LIST_ENDPOINTS}")
            )
        elif endpoint not in LIST_ENDPOINTS:
            errors.append(
                FieldError("endpoint", "invalid_value", f"endpoint must be one of {LIST_ENDPOINTS}")
            )
        status = query.get("status")
        if status is not None and status not in BATCH_STATUSES:
            errors.append(FieldError("status", "invalid_value", f"status must be one of {BATCH_STATUSES}"))
        days: dict[str, date | None] = {}
        for name in ("dateFrom", "dateTo"):
            days[name] = None
            if name in query:
                try:
                    days[name] = date.fromisoformat(query[name])
                except ValueError:
                    errors.append(FieldError(name, "invalid_format", f"{name} must be yyyy-mm-dd"))
        offset = _int_param(query, "offset", 0, 0, None, errors)
        limit = _int_param(query, "limit", 100, 1, 250, errors)
        if errors:
            return _invalid("invalid query parameters", errors)
        assert endpoint is not None
        if not grant.allows(f"{endpoint}.read"):
            return _problem(403, f"the API key lacks the permission '{endpoint}.read'")
        found = self._emu.batches.select(endpoint, status, days["dateFrom"], days["dateTo"])
        page = found[offset : offset + limit]

        def link(at: int) -> str:
            params = {k: v for k, v in query.items() if k not in ("offset", "limit")}
            return f"{self._emu.base_url}{req.path}?{urlencode({**params, 'limit': limit, 'offset': at})}"

        paging = {
            "limit": limit,
            "offset": offset,
            "next": link(offset + limit) if offset + limit < len(found) else None,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
        }
        return _json(200, {"batches": [batch_json(r, None) for r in page], "paging": paging})

    # ---- automations ------------------------------------------------------------------------------
    def _automations(self, req: Request, api_version: str, grant: ApiKeyGrant, _: str) -> Response:
        if not grant.allows("automations.read"):
            return _problem(403, "the API key lacks the permission 'automations.read'")
        try:
            return _json(200, self._emu.automations.page(req.query))
        except AutomationQueryError as exc:
            return _invalid("invalid query parameters", exc.errors)

    def _automation(self, req: Request, api_version: str, grant: ApiKeyGrant, automation_id: str) -> Response:
        if not grant.allows("automations.read"):
            return _problem(403, "the API key lacks the permission 'automations.read'")
        found = self._emu.automations.get(automation_id)
        if found is None:
            return _problem(404, f"automation {automation_id[:40]!r} was not found")
        return _json(200, found)

    # ---- control API --------------------------------------------------------------------------------
    def _control(self, req: Request) -> Response:
        name = req.path.removeprefix("/__emulator__").strip("/")
        handler = {
            ("GET", "stats"): lambda: _json(200, self._emu.stats()),
            ("GET", "faults"): lambda: _json(200, self._emu.faults.config.to_dict()),
            ("POST", "faults"): lambda: self._set_faults(req),
            ("GET", "keys"): lambda: _json(200, {"keys": self._emu.grants.fingerprints()}),
            ("POST", "keys"): lambda: self._set_keys(req),
            ("POST", "automations"): lambda: _json(
                200, {"count": self._emu.set_automations(orjson.loads(req.body or b"[]"))}
            ),
            ("GET", "events"): lambda: self._events(req),
            ("POST", "wait-idle"): lambda: self._wait_idle(req),
        }.get((req.method, name))
        if handler is None:
            return _problem(404, f"no control endpoint {req.method} {req.path}")
        try:
            return handler()
        except (ValueError, TypeError) as exc:
            return _problem(400, str(exc))
        except TimeoutError as exc:
            return _problem(504, str(exc))

    def _set_faults(self, req: Request) -> Response:
        data = orjson.loads(req.body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("send a JSON object of FaultConfig fields ({} clears every fault)")
        self._emu.set_faults(FaultConfig.from_dict(data))
        return _json(200, self._emu.faults.config.to_dict())

    def _set_keys(self, req: Request) -> Response:
        data = orjson.loads(req.body or b"{}")
        if not isinstance(data, dict) or set(data) - {"revoke", "grant"}:
            raise ValueError('send {"revoke": ["KEY", ...], "grant": ["KEY" or "KEY:perm1,perm2", ...]}')
        return _json(200, self._emu.set_keys(revoke=data.get("revoke") or (), grant=data.get("grant") or ()))

    def _events(self, req: Request) -> Response:
        offset, limit = int(req.query.get("offset", 0)), int(req.query.get("limit", 1000))
        store = self._emu.store
        events = store.accepted_events()
        page = [_event_dict(e) for e in events[offset : offset + limit]]
        return _json(200, {"events": page, "total": len(events), "duplicates": store.duplicate_count()})

    def _wait_idle(self, req: Request) -> Response:
        self._emu.wait_until_idle(timeout=float(req.query.get("timeout", 60)))
        return _json(200, self._emu.stats())


def _event_dict(event: Any) -> dict[str, Any]:
    return {
        "eventID": event.event_id,
        "eventTime": event.event_time,
        "eventName": event.event_name,
        "orderID": event.order_id,
        "batchID": event.batch_id,
        "acceptedAt": event.accepted_at,
    }


def _int_param(
    query: Mapping[str, str], name: str, default: int, low: int, high: int | None, errors: list[FieldError]
) -> int:
    if name not in query:
        return default
    try:
        value = int(query[name])
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        rule = f"{low}-{high}" if high is not None else f">= {low}"
        errors.append(FieldError(name, "out_of_range", f"{name} must be an integer {rule}"))
        return default
    return value


def _batch_body_errors(data: dict[str, Any], max_items: int, api_version: str) -> list[FieldError]:
    errors = [
        FieldError(
            key, "unknown_field", f"{key} is not a field of a batch request (v5/2026 batches take none)"
        )
        for key in sorted(set(data) - BATCH_BODY_KEYS)
    ]
    method = data.get("method")
    if method is None:
        errors.append(FieldError("method", "required", "method is required: POST or PUT"))
    elif method not in BATCH_METHODS:
        errors.append(FieldError("method", "invalid_value", "method must be POST or PUT"))
    endpoint = data.get("endpoint")
    if endpoint is None:
        errors.append(FieldError("endpoint", "required", f"endpoint is required: one of {BATCH_ENDPOINTS}"))
    elif endpoint not in BATCH_ENDPOINTS:
        errors.append(FieldError("endpoint", "invalid_value", f"endpoint must be one of {BATCH_ENDPOINTS}"))
    items = data.get("items")
    if items is None:
        errors.append(FieldError("items", "required", "items is required (a list of 1 or more items)"))
    elif not isinstance(items, list):
        errors.append(FieldError("items", "invalid_type", "items must be a list"))
    elif not items:
        errors.append(FieldError("items", "min_items", "items must hold at least 1 item"))
    elif len(items) > max_items:
        errors.append(
            FieldError(
                "items",
                "max_items",
                f"at most {max_items} items per batch in API {api_version}; got {len(items)}",
            )
        )
    origin = data.get("origin")
    if origin is not None and not isinstance(origin, str):
        errors.append(FieldError("origin", "invalid_type", "origin must be a string"))
    return errors
