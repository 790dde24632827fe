"""OmnisendAsyncHook: reading batches back from the triggerer's event loop.

A trigger polls ``GET /batches/{id}`` while hundreds of other triggers share the loop, so nothing here
may block: the connection comes from ``get_async_connection`` (never the sync ``get_connection``),
waits are ``asyncio.sleep``, and the same pacing and error typing as :class:`OmnisendHook` apply
(the settings, profiles, retry budget and 429 rules are the same code).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
from airflow.providers.common.compat.sdk import BaseHook

from airflow_omnisend.exceptions import OmnisendAPIError, OmnisendConfigError, OmnisendTransportError
from airflow_omnisend.hooks._pacing import PacingDeadlineError, RateLimitPacer, RetryBudget, RetryConfig
from airflow_omnisend.hooks._profile import (
    OmnisendConnectionSettings,
    strip_own_extras,
    validate_secret,
)
from airflow_omnisend.hooks._responses import (
    BatchListing,
    body_text,
    item_succeeded,
    merge_batch_items,
    pacing_deadline_error,
    parse_json,
    wait_before_retry,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: ``GET /batches`` page size (as the sync hook's)
LIST_BATCHES_PAGE = 100

__all__ = ["OmnisendAsyncHook", "item_succeeded"]

#: HttpHook's request options that may sit in the extra; they are never headers.
_RESERVED_EXTRAS = frozenset(
    {
        "stream",
        "cert",
        "proxies",
        "proxy",
        "timeout",
        "verify",
        "verify_ssl",
        "allow_redirects",
        "max_redirects",
        "trust_env",
        "check_response",
        "srv_lookup",
    }
)
#: Failures after which a GET is simply tried again.
_RETRYABLE = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)
_FINAL = (aiohttp.ClientSSLError, aiohttp.InvalidURL)


class OmnisendAsyncHook(BaseHook):
    """Async reads of Omnisend batches, for triggers.

    :param omnisend_conn_id: the ``omnisend`` connection (same fields as :class:`OmnisendHook`).
    :param retry: retry timing of every call (default: :class:`RetryConfig` with the connection's
        ``retry_budget``).
    :param pacer: rate pacer (one per hook by default).
    """

    conn_name_attr = "omnisend_conn_id"
    default_conn_name = "omnisend_default"
    conn_type = "omnisend"
    hook_name = "Omnisend (async)"

    def __init__(
        self,
        omnisend_conn_id: str = default_conn_name,
        *,
        retry: RetryConfig | None = None,
        pacer: RateLimitPacer | None = None,
    ) -> None:
        super().__init__()
        self.omnisend_conn_id = omnisend_conn_id
        #: None: :meth:`OmnisendConnectionSettings.retry_config` (the connection's ``retry_budget``)
        self.retry = retry
        self.pacer = pacer or RateLimitPacer()
        self._settings: OmnisendConnectionSettings | None = None
        self._secret: str | None = None
        self._headers: dict[str, str] = {}
        self._ssl: ssl.SSLContext | bool = True
        self._load_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        settings = self._settings
        where = f", base_url={settings.base_url!r}, api_version={settings.api_version!r}" if settings else ""
        return f"{type(self).__name__}(omnisend_conn_id={self.omnisend_conn_id!r}{where})"

    async def get_settings(self) -> OmnisendConnectionSettings:
        """The connection's validated settings, read without blocking the loop (cached)."""
        if self._settings is not None:
            return self._settings
        if self._load_lock is None:
            self._load_lock = asyncio.Lock()
        async with self._load_lock:
            if self._settings is None:
                await self._load()
        assert self._settings is not None
        return self._settings

    async def _load(self) -> None:
        conn = await get_async_connection(self.omnisend_conn_id, hook=self)
        extra = dict(await get_async_extra_dejson(conn))
        settings = OmnisendConnectionSettings.from_connection_fields(
            host=conn.host, extra=extra, port=conn.port, schema=conn.schema, conn_id=self.omnisend_conn_id
        )
        try:
            secret = validate_secret(conn.password)
        except OmnisendConfigError as err:
            raise OmnisendConfigError(f"Omnisend connection {self.omnisend_conn_id!r}: {err}") from None
        await _amask(secret)
        headers = {
            str(k): v
            for k, v in strip_own_extras(extra).items()
            if k not in _RESERVED_EXTRAS and isinstance(v, str)
        }
        verify = extra.get("verify", extra.get("verify_ssl", True))
        if verify is False or (isinstance(verify, str) and verify.strip().lower() == "false"):
            self._ssl = False
        elif isinstance(verify, str) and verify.strip().lower() != "true":
            self._ssl = ssl.create_default_context(cafile=verify)
        self._headers = headers
        self._secret = secret
        self._settings = settings

    # -- request loop --------------------------------------------------------------------------------

    async def _get(self, segments: Sequence[str], params: Mapping[str, str] | None = None) -> Any:
        """GET with pacing and retries; return the JSON of a 2xx or raise a typed error."""
        settings = await self.get_settings()
        secret, pacer = self._secret, self.pacer
        assert secret is not None
        pacer.use_brand_budget(settings.brand_budget, secret)
        profile = settings.profile
        path = profile.path(*segments)
        label = f"GET {path}"
        headers = {
            **self._headers,
            "Accept": "application/json",
            **profile.auth_headers(settings.auth, secret),
        }
        budget = RetryBudget(self.retry or settings.retry_config(), pacer.clock())
        timeout = aiohttp.ClientTimeout(total=settings.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                attempt = budget.start_attempt()
                try:
                    await pacer.acquire_async(budget.deadline)
                except PacingDeadlineError as err:
                    raise pacing_deadline_error(err, label) from None
                try:
                    async with session.get(
                        f"{settings.base_url}{path}",
                        params=params,
                        headers=headers,
                        allow_redirects=False,
                        ssl=self._ssl,
                    ) as response:
                        status = response.status
                        content = await response.read()
                        response_headers = response.headers
                except _FINAL as exc:
                    raise OmnisendTransportError(
                        f"{label}: cannot reach {settings.base_url} ({type(exc).__name__})"
                    ) from None
                except _RETRYABLE as exc:
                    what = type(exc).__name__
                    wait = budget.next_wait(named=None, now=pacer.clock(), rand=pacer.rand())
                    if wait is None:
                        raise OmnisendTransportError(
                            f"{label}: no usable answer from {settings.base_url} after {attempt} "
                            f"attempts ({what})"
                        ) from None
                    self.log.warning("%s failed (%s); retry %d in %.2fs", label, what, attempt, wait)
                    await pacer.async_sleep(wait)
                    continue

                pacer.observe(response_headers)
                if 200 <= status < 300:
                    data = parse_json(content)
                    if isinstance(data, dict | list):
                        return data
                    raise OmnisendAPIError(
                        f"Omnisend answered {label} with {status} but not with JSON",
                        status=status,
                        problem={"detail": body_text(content, secret)},
                        request=label,
                    )
                if 300 <= status < 400:
                    raise OmnisendAPIError(
                        f"Omnisend redirected {label} ({status}); set the connection host to the API root",
                        status=status,
                        request=label,
                    )
                wait, held, note = wait_before_retry(
                    status,
                    content,
                    response_headers,
                    request=label,
                    secret=secret,
                    budget=budget,
                    pacer=pacer,
                    conn_id=self.omnisend_conn_id,
                )
                self.log.warning("%s -> %s; retry %d in %.2fs", label, note, attempt, wait)
                if not held:
                    await pacer.async_sleep(wait)

    # -- public API ----------------------------------------------------------------------------------

    @staticmethod
    def _batch_segments(batch_id: str, *rest: str) -> tuple[str, ...]:
        if not isinstance(batch_id, str) or not batch_id.strip():
            raise OmnisendConfigError(f"batch_id must be a non-empty string, got {batch_id!r}")
        return ("batches", quote(batch_id.strip(), safe=""), *rest)

    async def get_batch(self, batch_id: str) -> dict[str, Any]:
        """The Batch object (``status``, ``totalCount``, ``finishedCount``, ``errorsCount``...)."""
        data = await self._get(self._batch_segments(batch_id))
        if not isinstance(data, dict):
            raise OmnisendAPIError(
                f"Omnisend answered GET batch {batch_id!r} with a JSON {type(data).__name__}, not an object",
                status=200,
                request=f"GET batches/{batch_id}",
            )
        return data

    async def find_batches(
        self, batch_ids: Sequence[str], date_from: str | None
    ) -> tuple[dict[str, dict[str, Any]], int]:
        """:meth:`OmnisendHook.find_batches` in the triggerer: the ids' Batch objects from pages of
        ``GET /batches`` (then one by one for any the listing lacks); ``(batches by id, requests)``."""
        listing = BatchListing(list(batch_ids), LIST_BATCHES_PAGE)
        if not listing.wanted:
            return {}, 0
        params = {"endpoint": "events", "limit": str(LIST_BATCHES_PAGE)}
        if date_from is not None:
            params["dateFrom"] = str(date_from)
        while listing.add_page(await self._get(("batches",), {**params, "offset": str(listing.offset)})):
            pass
        found, requests = listing.found, listing.pages
        for batch_id in listing.missing:
            found[batch_id] = await self.get_batch(batch_id)
            requests += 1
        return found, requests

    async def get_batch_items(self, batch_id: str) -> list[dict[str, Any]]:
        """Every item of a batch, succeeded and failed, normalized like
        :meth:`OmnisendHook.get_batch_items` (falls back to the batch body on a 404 of ``/items``)."""
        try:
            data = await self._get(self._batch_segments(batch_id, "items"))
        except OmnisendAPIError as err:
            if err.status != 404:
                raise
            self.log.info("%s -> 404; reading the items from the batch itself", err.request)
            return merge_batch_items(await self.get_batch(batch_id))
        return merge_batch_items(data)


async def _amask(secret: str) -> None:
    """Register the secret with Airflow's masker without blocking the loop (best effort)."""
    try:
        from airflow.sdk.log import amask_secret

        await amask_secret(secret)
    except Exception:  # outside a task there may be no masker/supervisor: nothing to tell
        pass
