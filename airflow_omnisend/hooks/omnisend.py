"""OmnisendHook: the only sync code that speaks HTTP to Omnisend.

Built on providers-http's :class:`HttpHook` so HttpOperator, ``airflow connections test`` and the
connection form work with an ``omnisend`` connection, but the request path is our own:

* the connection is read once, lazily, and validated (:class:`OmnisendConnectionSettings`);
* one ``requests.Session`` per hook and thread, its adapter with ``max_retries=0``, so the only
  retries are ours: 429/408/5xx/timeouts/dropped connections, paced and within a time budget;
* an explicit timeout on every request and no ``check_response`` (it logs whole bodies and hides the
  429 details we need);
* a POST whose body may have reached Omnisend is never sent again by the hook
  (:class:`OmnisendResponseLostError`);
* the API key never reaches a log line, an exception text or ``repr``.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.adapters import HTTPAdapter
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from airflow_omnisend.exceptions import (
    OmnisendAPIError,
    OmnisendConfigError,
    OmnisendError,
    OmnisendResponseLostError,
    OmnisendTransportError,
)
from airflow_omnisend.hooks._pacing import (
    PacingDeadlineError,
    RateLimitPacer,
    RetryBudget,
    RetryConfig,
)
from airflow_omnisend.hooks._profile import (
    ApiProfile,
    OmnisendConnectionSettings,
    strip_own_extras,
    validate_secret,
)
from airflow_omnisend.hooks._responses import (
    BatchListing,
    body_text,
    is_json,
    item_succeeded,
    merge_batch_items,
    pacing_deadline_error,
    parse_json,
    scrub,
    wait_before_retry,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_omnisend.events.chunk_plan import BatchLimits

__all__ = ["OmnisendHook", "RateLimitPacer", "RetryConfig", "item_succeeded"]

#: Connections a hook keeps per host; several threads share one hook during a backfill.
POOL_MAXSIZE = 32
#: ``list_batches`` page size ceiling (Omnisend: 1-250).
MAX_PAGE = 250
#: ``GET /batches`` page size: 100 is the contract's default and what every version answers
LIST_BATCHES_PAGE = 100
#: ``test_connection`` must answer quickly, even while Omnisend rate-limits us.
TEST_CONNECTION_RETRY = RetryConfig(max_attempts=2, base_delay=0.5, max_delay=2.0, total_budget=15.0)

BATCH_ENDPOINTS = ("products", "contacts", "events")
BATCH_STATUSES = ("pending", "inProgress", "finished", "stopped")


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Explicit "no auth": stops requests from adding ~/.netrc credentials over our headers."""
    return request


@dataclass(frozen=True)
class _Reply:
    status: int
    data: Any  # parsed JSON, or the not-JSON marker (check with is_json)
    content: bytes


#: Transport failures worth another attempt (a GET always; a POST only when provably unsent).
_RETRYABLE_TRANSPORT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (requests -> urllib3 -> socket/ssl), outermost first."""
    chain: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(chain) < 10:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or current in chain:
            continue
        chain.append(current)
        if isinstance(current, MaxRetryError):
            todo.append(current.reason)
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
        todo.append(current.__cause__)
    return chain


def _is_unsent(exc: requests.RequestException) -> bool:
    """True only when the request provably never left: connection refused, connect timeout, or a TLS
    certificate refused during the handshake. Anything else may have delivered the body."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    chain = _causes(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return any(isinstance(c, ssl.SSLCertVerificationError) for c in chain)
    if isinstance(exc, requests.exceptions.ProxyError):
        return False
    if isinstance(exc, requests.ConnectionError):
        return any(isinstance(c, NewConnectionError | ConnectTimeoutError) for c in chain)
    return False


def _describe(exc: BaseException) -> str:
    """A short description of a transport failure (type names only: texts may carry header values)."""
    names = [type(c).__name__ for c in _causes(exc) if not isinstance(c, MaxRetryError)]
    return " <- ".join(dict.fromkeys(names))


class OmnisendHook(HttpHook):
    """Sends batches to Omnisend and reads them back.

    :param omnisend_conn_id: an ``omnisend`` connection: host = API root (default
        ``https://api.omnisend.com``), password = API key or bearer token, extras ``api_version``,
        ``auth``, ``max_items_per_batch``, ``max_payload_bytes``, ``timeout``, ``retry_budget``.
    :param retry: retry timing of every call (default: :class:`RetryConfig` with the connection's
        ``retry_budget``).
    :param pacer: rate pacer; share one between hooks that use the same brand to pace them together.
    :param method: HTTP method of the inherited :meth:`run` (HttpOperator); our own methods choose theirs.
    :param http_hook_kwargs: what HttpOperator passes (``auth_type``, ``tcp_keep_alive*``, ``adapter``).
        ``auth_type`` is ignored: Omnisend authenticates with headers, never with basic auth.
    """

    conn_name_attr = "omnisend_conn_id"
    default_conn_name = "omnisend_default"
    conn_type = "omnisend"
    hook_name = "Omnisend"

    def __init__(
        self,
        omnisend_conn_id: str = default_conn_name,
        *,
        retry: RetryConfig | None = None,
        pacer: RateLimitPacer | None = None,
        method: str = "POST",
        tcp_keep_alive: bool = True,
        tcp_keep_alive_idle: int = 120,
        tcp_keep_alive_count: int = 20,
        tcp_keep_alive_interval: int = 30,
        **http_hook_kwargs: Any,
    ) -> None:
        alias = http_hook_kwargs.pop("http_conn_id", None)
        if alias and alias != omnisend_conn_id and omnisend_conn_id != self.default_conn_name:
            raise OmnisendConfigError(
                f"OmnisendHook got two connection ids ({omnisend_conn_id!r} and http_conn_id={alias!r}); "
                "pass only omnisend_conn_id."
            )
        conn_id = alias or omnisend_conn_id
        super().__init__(
            method=method,
            http_conn_id=conn_id,
            tcp_keep_alive=tcp_keep_alive,
            tcp_keep_alive_idle=tcp_keep_alive_idle,
            tcp_keep_alive_count=tcp_keep_alive_count,
            tcp_keep_alive_interval=tcp_keep_alive_interval,
            **http_hook_kwargs,
        )
        self.omnisend_conn_id = conn_id
        #: None: :meth:`OmnisendConnectionSettings.retry_config` (the connection's ``retry_budget``)
        self.retry = retry
        self.pacer = pacer or RateLimitPacer()
        if self.adapter is None:
            # Same transport HttpHook would mount, but explicitly without urllib3 retries.
            if tcp_keep_alive:
                self.keep_alive_adapter = TCPKeepAliveAdapter(
                    idle=tcp_keep_alive_idle,
                    count=tcp_keep_alive_count,
                    interval=tcp_keep_alive_interval,
                    max_retries=0,
                    pool_maxsize=POOL_MAXSIZE,
                )
            else:
                self.adapter = HTTPAdapter(max_retries=0, pool_maxsize=POOL_MAXSIZE)
        self._load_lock = threading.Lock()
        self._settings: OmnisendConnectionSettings | None = None
        self._secret_value: str | None = None
        self._conn_extra: dict[str, Any] = {}
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def __repr__(self) -> str:
        settings = self._settings
        where = f", base_url={settings.base_url!r}, api_version={settings.api_version!r}" if settings else ""
        return f"{type(self).__name__}(omnisend_conn_id={self.omnisend_conn_id!r}{where})"

    # -- connection ----------------------------------------------------------------------------------

    def _load(self) -> OmnisendConnectionSettings:
        """Read and validate the connection once (first use, never in ``__init__``)."""
        with self._load_lock:
            if self._settings is None:
                conn = self.get_connection(self.omnisend_conn_id)
                extra = dict(conn.extra_dejson)
                settings = OmnisendConnectionSettings.from_connection_fields(
                    host=conn.host,
                    extra=extra,
                    port=conn.port,
                    schema=conn.schema,
                    conn_id=self.omnisend_conn_id,
                )
                try:
                    secret = validate_secret(conn.password)
                except OmnisendConfigError as err:
                    raise OmnisendConfigError(
                        f"Omnisend connection {self.omnisend_conn_id!r}: {err}"
                    ) from None
                _mask(secret)
                self._conn_extra = extra
                self._secret_value = secret
                self._settings = settings
                self.base_url = settings.base_url
                self._base_url_initialized = True
            return self._settings

    @property
    def settings(self) -> OmnisendConnectionSettings:
        """The connection's validated settings (reads the connection on first use)."""
        return self._settings or self._load()

    @property
    def _secret(self) -> str:
        if self._secret_value is None:
            self._load()
        assert self._secret_value is not None
        return self._secret_value

    @property
    def batch_limits(self) -> BatchLimits:
        """Item and byte limits of one batch body for this connection (what ``plan_batches`` needs)."""
        from airflow_omnisend.events.chunk_plan import BatchLimits

        return BatchLimits(
            max_items=self.settings.max_items_per_batch,
            max_payload_bytes=self.settings.max_payload_bytes,
        )

    # -- HttpHook integration (HttpOperator's run() path) --------------------------------------------

    def _set_base_url(self, connection: Any) -> None:
        self._srv_lookup_enabled = False
        self.base_url = self.settings.base_url
        self._base_url_initialized = True

    def _configure_session_from_auth(self, session: requests.Session, connection: Any) -> requests.Session:
        # Omnisend authenticates with headers (see get_conn); never basic auth from login/auth_type.
        session.auth = None
        return session

    def _configure_session_from_extra(
        self, session: requests.Session, connection: Any, extra_options: dict[str, Any]
    ) -> requests.Session:
        """HttpHook turns every unknown extra into a header: hand it the extras without ours."""
        view = SimpleNamespace(extra_dejson=strip_own_extras(self._conn_extra), host=connection.host)
        session = super()._configure_session_from_extra(session, view, extra_options)
        self.merged_extra.setdefault("timeout", self.settings.timeout)
        return session

    def _build_session(
        self, *, with_auth: bool, headers: Mapping[str, Any] | None = None
    ) -> requests.Session:
        settings = self.settings
        session = requests.Session()
        session.auth = None
        session = self._configure_session_from_extra(session, SimpleNamespace(host=settings.base_url), {})
        session = self._configure_session_from_mount_adapters(session)
        session.headers["Accept"] = "application/json"
        if self.default_headers:
            session.headers.update(self.default_headers)
        if with_auth:
            session.headers.update(settings.profile.auth_headers(settings.auth, self._secret))
        if headers:
            session.headers.update(headers)
        return session

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """A new session for HttpHook's :meth:`run` (HttpOperator): authenticated for the configured API
        version, our extras stripped, timeout set. The hook's own methods use per-thread sessions."""
        session = self._build_session(with_auth=True, headers=headers)
        if extra_options:
            session = self._configure_session_from_extra(
                session, SimpleNamespace(host=self.settings.base_url), extra_options
            )
        return session

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._build_session(with_auth=False)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close the hook's sessions (they are rebuilt on next use)."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    # -- the request loop ----------------------------------------------------------------------------

    def _prepare(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: Mapping[str, Any] | None,
        body: bytes | None,
    ) -> requests.PreparedRequest:
        request = requests.Request(method, url, params=params, data=body, headers=headers, auth=_no_auth)
        try:
            return self._session().prepare_request(request)
        except requests.RequestException as exc:
            # Raised before anything is sent (bad header from the extras, bad URL): texts may hold values.
            raise OmnisendConfigError(
                f"Omnisend connection {self.omnisend_conn_id!r}: cannot build {method} {url} "
                f"({type(exc).__name__}); check the host and any header-like extras"
            ) from None

    def _send(self, prepared: requests.PreparedRequest) -> requests.Response:
        """Send like HttpHook.run_and_check with ``check_response: False`` (it would log the whole body
        and raise without the 429 details), but with our timeout always set, no redirects, and
        without its "Tenacity will retry" log line: our loop decides about retries."""
        session = self._session()
        settings = session.merge_environment_settings(
            prepared.url, proxies=session.proxies, stream=False, verify=session.verify, cert=session.cert
        )
        return session.send(prepared, timeout=self.settings.timeout, allow_redirects=False, **settings)

    def _call(
        self,
        method: str,
        profile: ApiProfile,
        segments: Sequence[str],
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        retry: RetryConfig | None = None,
    ) -> _Reply:
        """One logical request with pacing and retries; returns a 2xx reply or raises a typed error."""
        settings, secret, pacer = self.settings, self._secret, self.pacer
        pacer.use_brand_budget(settings.brand_budget, secret)
        path = profile.path(*segments)
        label = f"{method} {path}"
        url = f"{settings.base_url}{path}"
        headers = profile.auth_headers(settings.auth, secret)
        if body is not None:
            headers["Content-Type"] = "application/json"
        idempotent = method in ("GET", "HEAD")
        budget = RetryBudget(retry or self.retry or settings.retry_config(), pacer.clock())
        while True:
            attempt = budget.start_attempt()
            try:
                pacer.acquire(budget.deadline)
            except PacingDeadlineError as err:
                raise pacing_deadline_error(err, label) from None
            prepared = self._prepare(method, url, headers, params, body)
            started = pacer.clock()
            try:
                response = self._send(prepared)
            except requests.RequestException as exc:
                what = _describe(exc)
                unsent = _is_unsent(exc)
                if not unsent and not idempotent:
                    raise OmnisendResponseLostError(
                        f"{label}: the connection failed after the body may have been sent ({what}); "
                        "Omnisend may have accepted it. The hook does not resend it: check the batch "
                        "list, or resubmit (historic events are de-duplicated on eventID + eventTime)"
                    ) from None
                retryable = isinstance(exc, _RETRYABLE_TRANSPORT) and not isinstance(
                    exc, requests.exceptions.SSLError
                )
                wait = (
                    budget.next_wait(named=None, now=pacer.clock(), rand=pacer.rand()) if retryable else None
                )
                if wait is None:
                    tail = f" after {attempt} attempts" if attempt > 1 else ""
                    raise OmnisendTransportError(
                        f"{label}: no usable answer from {settings.base_url}{tail} ({what})"
                    ) from None
                self.log.warning("%s failed (%s); retry %d in %.2fs", label, what, attempt, wait)
                pacer.sleep(wait)
                continue

            pacer.observe(response.headers)
            status = response.status_code
            content = response.content
            self._note("%s -> %s in %.3fs (attempt %d)", label, status, pacer.clock() - started, attempt)
            if 200 <= status < 300:
                return _Reply(status=status, data=parse_json(content), content=content)
            if 300 <= status < 400:
                raise OmnisendAPIError(
                    f"Omnisend redirected {label} ({status}); set the connection host to the API root "
                    "(https://api.omnisend.com), the hook does not follow redirects",
                    status=status,
                    problem={"detail": scrub(response.headers.get("Location", ""), secret)},
                    request=label,
                )
            wait, held, note = wait_before_retry(
                status,
                content,
                response.headers,
                request=label,
                secret=secret,
                budget=budget,
                pacer=pacer,
                conn_id=self.omnisend_conn_id,
            )
            self.log.warning("%s -> %s; retry %d in %.2fs", label, note, attempt, wait)
            if not held:
                pacer.sleep(wait)

    def _note(self, message: str, *args: Any, info: bool = False) -> None:
        """Log between a 2xx and the return of what it carries: a task whose supervisor (its log channel)
        is gone gets ``BrokenPipeError`` from Airflow's task logger, and a log line must never cost the
        batchID of a POST that Omnisend accepted (the caller records it in staging, which needs no
        supervisor)."""
        with contextlib.suppress(OSError):
            (self.log.info if info else self.log.debug)(message, *args)

    # -- batches -------------------------------------------------------------------------------------

    def create_batch(
        self, items: Sequence[Mapping[str, Any]], endpoint: str = "events", method: str = "POST"
    ) -> str:
        """Create a batch of ``items`` for ``endpoint`` and return its batchID.

        :raises OmnisendConfigError: no items, more than ``max_items_per_batch``, or a body over
            ``max_payload_bytes`` (nothing is sent then).
        :raises OmnisendResponseLostError: the body may have been accepted but the answer was lost.
        """
        if not endpoint or "/" in endpoint:
            raise OmnisendConfigError(
                f"create_batch: endpoint must be a name like 'events', got {endpoint!r}"
            )
        if method not in ("POST", "PUT"):
            raise OmnisendConfigError(f"create_batch: method must be POST or PUT, got {method!r}")
        items = list(items)
        if not items:
            raise OmnisendConfigError("create_batch: items is empty; a batch needs at least one item")
        limit = self.settings.max_items_per_batch
        if len(items) > limit:
            raise OmnisendConfigError(
                f"create_batch: {len(items)} items is over max_items_per_batch={limit} "
                f"(api_version {self.settings.api_version}); split them (plan_batches does)"
            )
        body = json.dumps(
            {"method": method, "endpoint": endpoint, "items": items},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        return self.submit_batch_body(body)

    def submit_batch_body(self, body: bytes) -> str:
        """POST exactly ``body`` (a planned batch body) to ``/batches``; return the batchID.

        Any 2xx whose JSON carries a batchID is success (201 in 2026, 200 in v3; v5 unverified).
        """
        if not isinstance(body, bytes | bytearray | memoryview):
            raise OmnisendConfigError(f"submit_batch_body: body must be bytes, got {type(body).__name__}")
        body = bytes(body)
        if len(body) > self.settings.max_payload_bytes:
            raise OmnisendConfigError(
                f"submit_batch_body: body is {len(body)} bytes, over max_payload_bytes="
                f"{self.settings.max_payload_bytes}; plan smaller batches"
            )
        profile = self.settings.profile
        reply = self._call("POST", profile, ("batches",), body=body)
        data = reply.data
        batch_id = data.get("batchID") if isinstance(data, dict) else None
        if not isinstance(batch_id, str) or not batch_id:
            raise OmnisendResponseLostError(
                f"POST {profile.path('batches')}: Omnisend answered {reply.status} without a batchID "
                f"(body: {body_text(reply.content, self._secret)}); the batch may exist. The hook does "
                "not resend it"
            )
        self._note("Omnisend accepted batch %s (%s items)", batch_id, data.get("totalCount", "?"), info=True)
        return batch_id

    def _batch_segments(self, batch_id: str, *rest: str) -> tuple[str, ...]:
        if not isinstance(batch_id, str) or not batch_id.strip():
            raise OmnisendConfigError(f"batch_id must be a non-empty string, got {batch_id!r}")
        return ("batches", quote(batch_id.strip(), safe=""), *rest)

    def _json_object(self, reply: _Reply, label: str) -> dict[str, Any]:
        if isinstance(reply.data, dict):
            return reply.data
        raise OmnisendAPIError(
            f"Omnisend answered {label} with {reply.status} but not with a JSON object",
            status=reply.status,
            problem={"detail": body_text(reply.content, self._secret)},
            request=label,
        )

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        """The Batch object (status, counts, and on some versions its ``responses``/``errors``)."""
        profile = self.settings.profile
        segments = self._batch_segments(batch_id)
        reply = self._call("GET", profile, segments)
        return self._json_object(reply, f"GET {profile.path(*segments)}")

    def get_batch_items(self, batch_id: str) -> list[dict[str, Any]]:
        """Every item of a batch, succeeded and failed, normalized (see :func:`item_succeeded`).

        Reads ``/batches/{id}/items``; if that endpoint is missing (404) but the batch exists, falls
        back to the item arrays of ``/batches/{id}``.
        """
        profile = self.settings.profile
        segments = self._batch_segments(batch_id, "items")
        label = f"GET {profile.path(*segments)}"
        try:
            reply = self._call("GET", profile, segments)
        except OmnisendAPIError as err:
            if err.status != 404:
                raise
            self.log.info("%s -> 404; reading the items from the batch itself", label)
            return merge_batch_items(self.get_batch(batch_id))
        if not is_json(reply.data) or not isinstance(reply.data, dict | list):
            self._json_object(reply, label)
        return merge_batch_items(reply.data)

    def list_batches(
        self,
        endpoint: str = "events",
        status: str | None = None,
        date_from: date | str | None = None,
        date_to: date | str | None = None,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        """Batches of ``endpoint`` (newest first as Omnisend returns them), up to ``limit`` (None = all),
        following offset paging. Omnisend keeps batches about 7 days."""
        if endpoint not in BATCH_ENDPOINTS:
            raise OmnisendConfigError(
                f"list_batches: endpoint is required and must be one of {', '.join(BATCH_ENDPOINTS)}, "
                f"got {endpoint!r}"
            )
        if status is not None and status not in BATCH_STATUSES:
            raise OmnisendConfigError(
                f"list_batches: status must be one of {', '.join(BATCH_STATUSES)}, got {status!r}"
            )
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise OmnisendConfigError(f"list_batches: limit must be a positive int or None, got {limit!r}")
        params: dict[str, Any] = {"endpoint": endpoint}
        if status:
            params["status"] = status
        if date_from is not None:
            params["dateFrom"] = _day(date_from, "date_from")
        if date_to is not None:
            params["dateTo"] = _day(date_to, "date_to")
        profile = self.settings.profile
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page_size = LIST_BATCHES_PAGE if limit is None else min(LIST_BATCHES_PAGE, limit - len(found))
            page_params = {**params, "offset": offset, "limit": page_size}
            reply = self._call("GET", profile, ("batches",), params=page_params)
            data = self._json_object(reply, f"GET {profile.path('batches')}")
            page = [b for b in data.get("batches") or [] if isinstance(b, dict)]
            found.extend(page)
            offset += len(page)
            # Follow paging.next; a body without paging continues only while pages come back full.
            has_next = _obj(data.get("paging")).get("next") if "paging" in data else len(page) >= page_size
            if not page or not has_next:
                break
            if limit is not None and len(found) >= limit:
                break
        return found if limit is None else found[:limit]

    def find_batches(
        self, batch_ids: Sequence[str], date_from: date | str | None
    ) -> tuple[dict[str, dict[str, Any]], int]:
        """The Batch objects (status and counters, no items) of ``batch_ids``, read in bulk: pages of
        ``GET /batches?endpoint=events&dateFrom=...`` until every id was seen, then ``GET
        /batches/{id}`` for any the listing did not hold. Returns ``(batches by id, requests made)``."""
        listing = BatchListing(list(batch_ids), LIST_BATCHES_PAGE)
        if not listing.wanted:
            return {}, 0
        params: dict[str, Any] = {"endpoint": "events", "limit": LIST_BATCHES_PAGE}
        if date_from is not None:
            params["dateFrom"] = _day(date_from, "date_from")
        profile = self.settings.profile
        label = f"GET {profile.path('batches')}"
        while True:
            reply = self._call("GET", profile, ("batches",), params={**params, "offset": listing.offset})
            if not listing.add_page(self._json_object(reply, label)):
                break
        found, requests = listing.found, listing.pages
        for batch_id in listing.missing:
            found[batch_id] = self.get_batch(batch_id)
            requests += 1
        return found, requests

    # -- automations ---------------------------------------------------------------------------------

    def list_automations(self, enabled: bool | None = True) -> list[dict[str, Any]]:
        """Automations from the 2026 API (``GET /api/automations``, whatever ``api_version`` is),
        following cursor paging. ``enabled``: True = enabled only, False = disabled only, None = all."""
        profile = self.settings.automations_profile
        params: dict[str, Any] = {"limit": MAX_PAGE}
        if enabled is not None:
            params["isEnabled"] = "true" if enabled else "false"
        found: list[dict[str, Any]] = []
        seen_cursors: set[str] = set()
        label = f"GET {profile.path('automations')}"
        while True:
            reply = self._call("GET", profile, ("automations",), params=params)
            data = self._json_object(reply, label)
            found.extend(a for a in data.get("automations") or [] if isinstance(a, dict))
            paging = _obj(data.get("paging"))
            cursors = _obj(paging.get("cursors"))
            after = cursors.get("after")
            if not paging.get("hasMore"):
                break
            if not isinstance(after, str) or not after or after in seen_cursors:
                self.log.warning("%s: hasMore without a new cursor; stopping after %d", label, len(found))
                break
            seen_cursors.add(after)
            params = {**params, "after": after}
        return found

    # -- connection test -----------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """A cheap GET (list one batch); never a POST. Returns ``(ok, message)``, never raises."""
        try:
            settings = self.settings
            profile = settings.profile
            reply = self._call(
                "GET",
                profile,
                ("batches",),
                params={"endpoint": "events", "limit": 1, "offset": 0},
                retry=TEST_CONNECTION_RETRY,
            )
            self._json_object(reply, f"GET {profile.path('batches')}")
        except OmnisendAPIError as err:
            return False, self._explain_failure(err)
        except OmnisendError as err:
            return False, scrub(str(err), self._secret_value)
        except Exception as err:
            return False, scrub(f"{type(err).__name__}: {err}", self._secret_value)
        return True, (
            f"Connected to Omnisend at {settings.base_url} (API {settings.api_version}, "
            f"auth {settings.auth}); the credentials were accepted."
        )

    def _explain_failure(self, err: OmnisendAPIError) -> str:
        said = f" Omnisend said: {err.detail}." if err.detail else ""
        if err.status == 401:
            what = "API key" if self.settings.auth == "api_key" else "bearer token"
            return (
                f"Omnisend rejected the {what} (401) on {err.request}.{said} Check the connection's "
                "password, and that auth and api_version match the credential."
            )
        if err.status == 403:
            return (
                f"Omnisend refused access (403) on {err.request}.{said} The key or token lacks the "
                "batches/events read permission."
            )
        if err.status == 404:
            return f"Omnisend answered 404 on {err.request}.{said} Check the host (API root) and api_version."
        return str(err)


def _mask(secret: str) -> None:
    """Register the secret with Airflow's masker (task logs redact it even if something prints it)."""
    try:
        from airflow.providers.common.compat.sdk import mask_secret

        mask_secret(secret)
    except Exception:  # the masker is best-effort outside a task (e.g. a CLI without Airflow set up)
        pass


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _day(value: date | str, name: str) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise OmnisendConfigError(f"list_batches: {name} must be a date or 'YYYY-MM-DD', got {value!r}")
