"""API-version profiles and the validated settings of an Omnisend connection.

Omnisend's versions differ in path prefix, auth header and batch size. Keeping those differences in one
small table (:data:`PROFILES`) means the hook never branches on the version string: it asks the profile.

The settings are read from an Airflow connection but this module imports nothing from Airflow, so the
sync hook, the async hook and the tests share one parser, and a bad connection fails the same way
everywhere: an :class:`~airflow_omnisend.exceptions.OmnisendConfigError` naming the field and the fix.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_omnisend.checks import short_repr
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.flags import parse_flag
from airflow_omnisend.hooks._brand_budget import EXTRA_NAMES as BRAND_BUDGET_EXTRAS
from airflow_omnisend.hooks._brand_budget import BrandBudgetConfig, brand_budget_config

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_omnisend.hooks._pacing import RetryConfig

DEFAULT_BASE_URL = "https://api.omnisend.com"
DEFAULT_API_VERSION = "v5"
DEFAULT_AUTH = "api_key"
DEFAULT_MAX_PAYLOAD_BYTES = 1_000_000
DEFAULT_TIMEOUT = 30.0
MIN_PAYLOAD_BYTES = 1024
#: upper bounds of the numeric extras: far above any sensible value, low enough that no typo overflows
MAX_PAYLOAD_BYTES_LIMIT = 10_000_000
MAX_TIMEOUT_SECONDS = 3600.0
MAX_RETRY_BUDGET_SECONDS = 86_400.0

AUTH_MODES = ("api_key", "bearer")

#: Connection extras that are settings of this provider, never HTTP headers.
OWN_EXTRA_NAMES = (
    "api_version",
    "auth",
    "max_items_per_batch",
    "max_payload_bytes",
    "timeout",
    "retry_budget",
    "allow_http",
    "strict_reconciliation",
    *BRAND_BUDGET_EXTRAS,
)
#: Prefix of the keys Airflow's connection form may store (``extra__<conn_type>__<field>``).
UI_EXTRA_PREFIX = "extra__omnisend__"


@dataclass(frozen=True)
class ApiProfile:
    """What differs between Omnisend API versions: where endpoints live, how to authenticate, how big a
    batch may be."""

    api_version: str
    path_prefix: str
    max_items_per_batch: int
    api_key_header: str
    api_key_prefix: str
    version_header: str | None

    def path(self, *segments: str) -> str:
        """``path("batches", "abc")`` -> ``/v5/batches/abc``. Segments must already be URL-safe."""
        return "/".join((self.path_prefix, *segments))

    def auth_headers(self, auth: str, secret: str) -> dict[str, str]:
        """Headers that authenticate a request. The result holds the secret: never log it."""
        if auth == "bearer":
            headers = {"Authorization": f"Bearer {secret}"}
        elif auth == "api_key":
            headers = {self.api_key_header: f"{self.api_key_prefix}{secret}"}
        else:
            raise OmnisendConfigError(f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        if self.version_header:
            headers["Omnisend-Version"] = self.version_header
        return headers


PROFILES: dict[str, ApiProfile] = {
    "v5": ApiProfile(
        api_version="v5",
        path_prefix="/v5",
        max_items_per_batch=1000,
        api_key_header="X-API-KEY",
        api_key_prefix="",
        version_header=None,
    ),
    "2026-03-15": ApiProfile(
        api_version="2026-03-15",
        path_prefix="/api",
        max_items_per_batch=100,
        api_key_header="Authorization",
        api_key_prefix="Omnisend-API-Key ",
        version_header="2026-03-15",
    ),
}

#: The automations check always uses the 2026 API (v5 has no documented automations list).
AUTOMATIONS_PROFILE = PROFILES["2026-03-15"]


def is_loopback_host(hostname: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: the only hosts plain http is allowed to (the emulator, tests)."""
    name = hostname.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def safe_host(host: str | None) -> str:
    """``host`` as it may appear in a message: quoted, with anything before its last ``@`` (userinfo:
    a user name and an API key pasted into the URL) replaced by ``***``, and cut to 200 characters.

    Every message that shows the connection's host uses this; a key must never reach a log, an
    exception or ``automation_check.json`` through a malformed host."""
    text = (host or "").strip()
    if "@" in text:
        scheme, sep, rest = text.partition("://")
        prefix, rest = (scheme + sep, rest) if sep else ("", text)
        text = f"{prefix}***@{rest.rsplit('@', 1)[1]}"
    if len(text) > 200:
        text = text[:197] + "..."
    return repr(text)


def normalize_base_url(host: str | None, *, port: int | None = None, schema: str | None = None) -> str:
    """Build the API root from the connection's host (which may carry a scheme and a port).

    Without a scheme in ``host``, ``schema`` is used when it is http/https, else https: unlike
    HttpHook's default, a missing scheme must never silently mean plain http.
    """
    raw = (host or "").strip()
    if not raw:
        return DEFAULT_BASE_URL
    if "://" not in raw:
        scheme = schema.strip().lower() if schema and schema.strip().lower() in ("http", "https") else "https"
        raw = f"{scheme}://{raw}"
    try:
        parts = urlsplit(raw)
        parsed_port = parts.port
    except ValueError:  # its text may quote the key; say what is wrong without it
        raise OmnisendConfigError(
            f"host {safe_host(host)} is not a URL with a valid port (a number from 1 to 65535). Fix: use a "
            "URL like https://api.omnisend.com or http://127.0.0.1:8899."
        ) from None
    if port is not None and not 0 <= port <= 65535:
        raise OmnisendConfigError(f"port must be from 1 to 65535, got {port}. Fix: clear it or use e.g. 443.")
    if port and parsed_port is None and parts.hostname:
        netloc = f"{parts.netloc}:{int(port)}"
        parts = parts._replace(netloc=netloc)
    return parts.geturl().rstrip("/")


def validate_secret(secret: str | None) -> str:
    """Check the API key / token without ever echoing it (requests would put it into an error text)."""
    value = (secret or "").strip()
    if not value:
        raise OmnisendConfigError(
            "password is empty: it must hold the Omnisend API key (or the OAuth token when auth=bearer). "
            "Fix: paste the key from https://app.omnisend.com/integrations/api-keys into the password field."
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise OmnisendConfigError(
            "password contains whitespace or control characters, which cannot go into an HTTP header. "
            "Fix: paste the API key again without line breaks or spaces."
        )
    return value


@dataclass(frozen=True)
class OmnisendConnectionSettings:
    """Validated settings of one Omnisend connection (everything except the secret, so printing the
    settings is always safe).

    ``max_items_per_batch`` = 0 (the default) means the API version's limit; after construction it is
    always the effective limit, which may only be lower than the profile's.
    """

    base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_API_VERSION
    auth: str = DEFAULT_AUTH
    max_items_per_batch: int = 0
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    timeout: float = DEFAULT_TIMEOUT
    #: Seconds one API call may spend on retries (429, 5xx, timeouts), waits included; None: the hook's
    #: :class:`~airflow_omnisend.hooks._pacing.RetryConfig` (300 s). Lower it to fail a refused day sooner,
    #: so the task's own retries (minutes apart) take over.
    retry_budget: float | None = None
    #: Let the key travel over plain http to a non-loopback host: only for an emulator on a private
    #: network (docker compose), never for Omnisend itself.
    allow_http: bool = False
    #: Read every ended batch's items (``GET /batches/{id}/items``) instead of trusting counters that
    #: say all items finished without error: one more GET per body, for users who want every verdict.
    strict_reconciliation: bool = False
    #: The budget every sender of this brand shares (extras ``brand_budget*``; see hooks/_brand_budget.py).
    brand_budget: BrandBudgetConfig = field(default_factory=BrandBudgetConfig)

    def __post_init__(self) -> None:
        self._check_base_url()
        if self.api_version not in PROFILES:
            raise OmnisendConfigError(
                f"api_version must be one of {', '.join(PROFILES)}, got {self.api_version!r}. "
                "Fix: set the connection extra api_version to v5 (default) or 2026-03-15."
            )
        if self.auth not in AUTH_MODES:
            raise OmnisendConfigError(
                f"auth must be one of {', '.join(AUTH_MODES)}, got {self.auth!r}. Fix: set the connection "
                "extra auth to api_key (password = API key) or bearer (password = OAuth access token)."
            )
        limit = PROFILES[self.api_version].max_items_per_batch
        items = self.max_items_per_batch
        if isinstance(items, bool) or not isinstance(items, int) or not 0 <= items <= limit:
            raise OmnisendConfigError(
                f"max_items_per_batch must be an integer from 1 to {limit} (the limit of api_version "
                f"{self.api_version}), got {items!r}. Fix: lower it, or remove it to use {limit}."
            )
        if items == 0:
            object.__setattr__(self, "max_items_per_batch", limit)
        size = self.max_payload_bytes
        if (
            isinstance(size, bool)
            or not isinstance(size, int)
            or not MIN_PAYLOAD_BYTES <= size <= MAX_PAYLOAD_BYTES_LIMIT
        ):
            raise OmnisendConfigError(
                f"max_payload_bytes must be an integer from {MIN_PAYLOAD_BYTES} to "
                f"{MAX_PAYLOAD_BYTES_LIMIT}, got {short_repr(size)}. Fix: set it "
                f"to at most {DEFAULT_MAX_PAYLOAD_BYTES} (Omnisend's guide: 1 MB), or remove it."
            )
        timeout = self.timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or not 0 < timeout <= MAX_TIMEOUT_SECONDS
        ):
            raise OmnisendConfigError(
                f"timeout must be a number of seconds > 0 and <= {MAX_TIMEOUT_SECONDS:g}, got "
                f"{short_repr(timeout)}. Fix: set it to e.g. "
                f"{DEFAULT_TIMEOUT:g}, or remove it for the default."
            )
        object.__setattr__(self, "timeout", float(timeout))
        budget = self.retry_budget
        if budget is not None:
            if (
                isinstance(budget, bool)
                or not isinstance(budget, int | float)
                or not math.isfinite(budget)
                or not timeout <= budget <= MAX_RETRY_BUDGET_SECONDS
            ):
                raise OmnisendConfigError(
                    f"retry_budget must be a number of seconds >= timeout ({timeout:g}) and <= "
                    f"{MAX_RETRY_BUDGET_SECONDS:g}, got {short_repr(budget)}. "
                    "Fix: set it to e.g. 60, or remove it for the default (300)."
                )
            object.__setattr__(self, "retry_budget", float(budget))

    def _check_base_url(self) -> None:
        """The API root: http(s), no credentials, query or fragment (checked first, so no later message
        can show them), no version path; plain http only to loopback or with ``allow_http``."""
        parts = urlsplit(self.base_url)
        if "@" in self.base_url or parts.query or parts.fragment:
            raise OmnisendConfigError(
                f"host must be a plain API root URL without credentials, query or fragment, got "
                f"{safe_host(self.base_url.split('?')[0].split('#')[0])}. The API key belongs in the "
                f"password field. Fix: set host to {DEFAULT_BASE_URL}."
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OmnisendConfigError(
                f"host must be the API root URL, got {safe_host(self.base_url)}. Fix: set host to "
                f"{DEFAULT_BASE_URL} (or http://127.0.0.1:<port> for the emulator)."
            )
        path = parts.path.rstrip("/")
        if any(path == p.path_prefix or path.endswith(p.path_prefix) for p in PROFILES.values()):
            raise OmnisendConfigError(
                f"host must be the API root without the version path, got {safe_host(self.base_url)}. "
                f"Fix: remove {path!r} from the host and choose the version with the api_version extra."
            )
        if parts.scheme != "https" and not is_loopback_host(parts.hostname):
            if self.allow_http and parts.hostname != urlsplit(DEFAULT_BASE_URL).hostname:
                return
            raise OmnisendConfigError(
                f"host {safe_host(self.base_url)} uses {parts.scheme}; the API key may only travel over "
                "https "
                "(plain http is allowed for loopback hosts only: 127.0.0.0/8, ::1, localhost, or for an "
                "emulator on a private network with the extra allow_http: true). "
                f"Fix: use https://{parts.netloc}."
            )

    def retry_config(self) -> RetryConfig:
        """Retry timing of this connection's calls: the defaults, with ``retry_budget`` when set."""
        from airflow_omnisend.hooks._pacing import RetryConfig

        if self.retry_budget is None:
            return RetryConfig()
        return RetryConfig(total_budget=self.retry_budget)

    @property
    def profile(self) -> ApiProfile:
        """The profile of the configured API version (batches, events...)."""
        return PROFILES[self.api_version]

    @property
    def automations_profile(self) -> ApiProfile:
        """Always the 2026 profile, whatever ``api_version`` is."""
        return AUTOMATIONS_PROFILE

    @classmethod
    def from_connection_fields(
        cls,
        *,
        host: str | None,
        extra: Mapping[str, Any] | None,
        port: int | None = None,
        schema: str | None = None,
        conn_id: str | None = None,
    ) -> OmnisendConnectionSettings:
        """Parse an Airflow connection's fields. Extras may be strings (the UI stores them so), bare
        names or ``extra__omnisend__<name>`` keys; errors are prefixed with the connection id."""
        label = f"Omnisend connection {conn_id!r}: " if conn_id else "Omnisend connection: "
        extras = own_extras(extra or {})
        try:
            return cls(
                base_url=normalize_base_url(host, port=port, schema=schema),
                api_version=_as_text(extras, "api_version", DEFAULT_API_VERSION),
                auth=_as_text(extras, "auth", DEFAULT_AUTH).lower(),
                max_items_per_batch=_as_int(extras, "max_items_per_batch", 0),
                max_payload_bytes=_as_int(extras, "max_payload_bytes", DEFAULT_MAX_PAYLOAD_BYTES),
                timeout=_as_float(extras, "timeout", DEFAULT_TIMEOUT),
                retry_budget=(_as_float(extras, "retry_budget", 0.0) if "retry_budget" in extras else None),
                allow_http=parse_flag(extras.get("allow_http", False), "allow_http", "extra"),
                strict_reconciliation=parse_flag(
                    extras.get("strict_reconciliation", False), "strict_reconciliation", "extra"
                ),
                brand_budget=brand_budget_config(extras),
            )
        except OmnisendConfigError as err:
            raise OmnisendConfigError(f"{label}{err}") from None


def own_extras(extra: Mapping[str, Any]) -> dict[str, Any]:
    """This provider's settings from the connection extra; a bare name wins over its UI-prefixed form.
    Empty values (``None``, ``""``) count as not set."""
    found: dict[str, Any] = {}
    for name in OWN_EXTRA_NAMES:
        for key in (name, f"{UI_EXTRA_PREFIX}{name}"):
            value = extra.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            found[name] = value
            break
    return found


def strip_own_extras(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The connection extra without this provider's settings, so HttpHook does not send them as headers."""
    own = set(OWN_EXTRA_NAMES)
    return {k: v for k, v in extra.items() if k not in own and not k.startswith(UI_EXTRA_PREFIX)}


def _as_text(extras: Mapping[str, Any], name: str, default: str) -> str:
    value = extras.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise OmnisendConfigError(f"extra {name!r} must be a string, got {value!r}.")
    return value.strip()


def _as_int(extras: Mapping[str, Any], name: str, default: int) -> int:
    value = extras.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        return value
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if number.is_integer():
                return int(number)
    raise OmnisendConfigError(
        f"extra {name!r} must be a whole number, got {short_repr(value)}. Fix: write it as digits, e.g. 100."
    )


def _as_float(extras: Mapping[str, Any], name: str, default: float) -> float:
    value = extras.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
    raise OmnisendConfigError(
        f"extra {name!r} must be a number of seconds, got {short_repr(value)}. Fix: write it as e.g. 30."
    )
