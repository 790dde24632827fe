"""One request budget per Omnisend brand, shared by every sender of that brand.

Omnisend counts requests per brand (API key), across every process and machine that uses the key. A
429 one send task receives must therefore stop all of them until the time it named, and their pace
must add up to at most the brand's limit. A :class:`BrandBudget` holds what they share: the start
times of the requests of the last window (a sliding window, as Omnisend counts) and ``blocked_until``,
the wall-clock time before which no request may start (set from a 429's named wait).

Backends (connection extra ``brand_budget``):

* ``file`` (default): a small state file under ``brand_budget_dir`` guarded by ``fcntl.flock``; shared
  by every process of one machine (LocalExecutor, mapped shards, parallel periods, the triggerer).
* ``redis``: one sorted set and one key in Redis (``brand_budget_redis_url``, else the Celery broker
  URL when it is ``redis://``); shared by every worker machine.
* ``process``: in memory, this process only (the behaviour before brands shared a budget).

Files and keys are named by a hash of the API key, never the key itself. Times are wall-clock
(``time.time()``) because monotonic clocks are not shared between machines.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.hooks._locked_file import LockedFile, locked_file

if TYPE_CHECKING:
    from collections.abc import Mapping

BACKENDS = ("file", "redis", "process")
DEFAULT_BACKEND = "file"
#: Omnisend's documented limit per brand: 400 requests per sliding minute.
DEFAULT_REQUESTS_PER_WINDOW = 400
DEFAULT_WINDOW_SECONDS = 60.0
#: Connection extras read by :func:`brand_budget_config` (declared in ``_profile.OWN_EXTRA_NAMES``).
EXTRA_NAMES = ("brand_budget", "brand_budget_dir", "brand_budget_redis_url", "brand_budget_per_minute")
#: Environment variables that may name the Celery broker (Airflow's config and Celery's own).
BROKER_ENV = ("AIRFLOW__CELERY__BROKER_URL", "CELERY_BROKER_URL")


#: Environment variable that moves the default directory of the ``file`` backend (tests: one per test).
DIR_ENV = "AIRFLOW_OMNISEND_BRAND_BUDGET_DIR"


def default_budget_dir() -> str:
    """``$AIRFLOW_OMNISEND_BRAND_BUDGET_DIR``, else ``$TMPDIR/airflow-omnisend-brand-budget``: shared by
    the processes of one user on one machine."""
    return os.environ.get(DIR_ENV) or os.path.join(tempfile.gettempdir(), "airflow-omnisend-brand-budget")


def brand_id(secret: str) -> str:
    """A stable, non-reversible name of the brand behind an API key (for file names and Redis keys)."""
    return hashlib.sha256(f"airflow-omnisend-brand:{secret}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class BrandBudgetConfig:
    """Which shared budget a connection's senders use, and its size.

    :param backend: ``file``, ``redis`` or ``process``.
    :param directory: where the ``file`` backend keeps its state (default :func:`default_budget_dir`).
    :param redis_url: Redis of the ``redis`` backend (default: the Celery broker URL if redis://).
    :param requests_per_window: requests all senders of the brand may start per window.
    :param window: seconds of the sliding window (60 at Omnisend; shorter only in tests).
    """

    backend: str = DEFAULT_BACKEND
    directory: str | None = None
    redis_url: str | None = None
    requests_per_window: int = DEFAULT_REQUESTS_PER_WINDOW
    window: float = DEFAULT_WINDOW_SECONDS

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise OmnisendConfigError(
                f"brand_budget must be one of {', '.join(BACKENDS)}, got {self.backend!r}. Fix: use file "
                "(one machine, the default), redis (several worker machines) or process."
            )
        count = self.requests_per_window
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise OmnisendConfigError(
                f"brand_budget_per_minute must be a whole number >= 1, got {count!r}. Fix: set it to "
                f"at most {DEFAULT_REQUESTS_PER_WINDOW} (Omnisend's limit), or remove it."
            )
        if not (isinstance(self.window, int | float) and math.isfinite(self.window) and self.window > 0):
            raise OmnisendConfigError(f"BrandBudgetConfig.window must be seconds > 0, got {self.window!r}")
        if self.backend == "redis" and not self.resolved_redis_url():
            raise OmnisendConfigError(
                "brand_budget is redis but no Redis URL is known. Fix: set the extra "
                "brand_budget_redis_url (e.g. redis://redis:6379/0), or run with a redis:// Celery broker."
            )

    def resolved_redis_url(self) -> str | None:
        """The configured URL, else the Celery broker URL when it is a Redis one."""
        if self.redis_url:
            return self.redis_url
        for name in BROKER_ENV:
            url = os.environ.get(name, "")
            if url.startswith(("redis://", "rediss://", "unix://")):
                return url
        return None


def brand_budget_config(extras: Mapping[str, Any]) -> BrandBudgetConfig:
    """Parse the ``brand_budget*`` connection extras (already stripped of the UI prefix)."""
    per_minute = extras.get("brand_budget_per_minute", DEFAULT_REQUESTS_PER_WINDOW)
    if isinstance(per_minute, str) and per_minute.strip().isdigit():
        per_minute = int(per_minute.strip())
    directory = extras.get("brand_budget_dir")
    url = extras.get("brand_budget_redis_url")
    return BrandBudgetConfig(
        backend=str(extras.get("brand_budget", DEFAULT_BACKEND)).strip().lower(),
        directory=str(directory).strip() if directory else None,
        redis_url=str(url).strip() if url else None,
        requests_per_window=per_minute,
    )


class BrandBudget(Protocol):
    """What every sender of one brand shares."""

    def try_reserve(self, now: float) -> float:
        """Reserve one request start at wall time ``now`` and return 0, or return seconds to wait."""
        ...

    def hold_until(self, until: float) -> None:
        """No request of the brand may start before wall time ``until`` (never shortens a hold)."""
        ...

    def blocked_until(self) -> float:
        """The wall time before which no request may start (``-inf`` when none)."""
        ...


def _decide(
    starts: list[float], blocked: float, now: float, limit: int, window: float
) -> tuple[list[float], float]:
    """The sliding-window rule all backends apply: the live starts and the wait (0 = reserve now)."""
    live = [t for t in starts if t > now - window]
    if now < blocked:
        return live, blocked - now
    if len(live) >= limit:
        return live, min(live) + window - now
    return live, 0.0


class ProcessBudget:
    """The budget in this process's memory (threads share it; other processes do not)."""

    def __init__(
        self, requests_per_window: int = DEFAULT_REQUESTS_PER_WINDOW, window: float = DEFAULT_WINDOW_SECONDS
    ) -> None:
        self.limit = requests_per_window
        self.window = window
        self._lock = threading.Lock()
        self._starts: list[float] = []
        self._blocked = -math.inf

    def try_reserve(self, now: float) -> float:
        with self._lock:
            self._starts, wait = _decide(self._starts, self._blocked, now, self.limit, self.window)
            if wait <= 0:
                self._starts.append(now)
            return wait

    def hold_until(self, until: float) -> None:
        with self._lock:
            self._blocked = max(self._blocked, until)

    def blocked_until(self) -> float:
        with self._lock:
            return self._blocked


class FileBudget:
    """The budget in ``<directory>/<brand id>.json``, read and written under an exclusive ``flock``.

    The lock is held only while the few hundred bytes of state are read and rewritten, never while
    waiting. A state file that cannot be parsed (a crash mid-write) counts as empty.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        brand: str,
        requests_per_window: int = DEFAULT_REQUESTS_PER_WINDOW,
        window: float = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"{brand}.json"
        self.limit = requests_per_window
        self.window = window
        self._thread_lock = threading.Lock()

    @staticmethod
    def _read(state_file: LockedFile) -> tuple[list[float], float]:
        try:
            state = json.loads(state_file.raw) if state_file.raw else {}
            starts = [float(t) for t in state.get("starts", [])]
            held = state.get("blocked_until")
            blocked = -math.inf if held is None else float(held)
        except (ValueError, TypeError, AttributeError):
            return [], -math.inf
        return starts, blocked

    @staticmethod
    def _write(state_file: LockedFile, starts: list[float], blocked: float) -> None:
        state = {"starts": starts, "blocked_until": blocked if math.isfinite(blocked) else None}
        state_file.replace(json.dumps(state, separators=(",", ":")).encode())

    def try_reserve(self, now: float) -> float:
        with locked_file(self.path, self._thread_lock) as state_file:
            starts, blocked = self._read(state_file)
            live, wait = _decide(starts, blocked, now, self.limit, self.window)
            if wait <= 0:
                live.append(now)
            self._write(state_file, live, blocked)
            return wait

    def hold_until(self, until: float) -> None:
        with locked_file(self.path, self._thread_lock) as state_file:
            starts, blocked = self._read(state_file)
            if until > blocked:
                self._write(state_file, starts, until)

    def blocked_until(self) -> float:
        with locked_file(self.path, self._thread_lock) as state_file:
            return self._read(state_file)[1]


#: KEYS: starts (sorted set), blocked (string); ARGV: now, window, limit, member. Returns the wait as text.
_RESERVE_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local blocked = tonumber(redis.call('GET', KEYS[2]) or '-1')
if now < blocked then return tostring(blocked - now) end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
return '0'
"""

#: KEYS: blocked; ARGV: until, ttl ms. Sets the hold unless a later one is already set.
_HOLD_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1
"""


class RedisBudget:
    """The budget in Redis: each decision is one Lua script, atomic across every client of the server."""

    def __init__(
        self,
        url: str,
        brand: str,
        requests_per_window: int = DEFAULT_REQUESTS_PER_WINDOW,
        window: float = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        try:
            import redis
        except ImportError:
            raise OmnisendConfigError(
                "brand_budget is redis but the redis package is not installed. Fix: pip install redis "
                "(it comes with apache-airflow-providers-celery[redis]), or use brand_budget file."
            ) from None
        self.client: Any = redis.Redis.from_url(url, socket_timeout=5.0)
        self.starts_key = f"airflow-omnisend:brand:{brand}:starts"
        self.blocked_key = f"airflow-omnisend:brand:{brand}:blocked_until"
        self.limit = requests_per_window
        self.window = window
        self._reserve = self.client.register_script(_RESERVE_LUA)
        self._hold = self.client.register_script(_HOLD_LUA)
        self._member = f"{os.getpid()}:{id(self)}:"
        self._counter = 0
        self._lock = threading.Lock()

    def try_reserve(self, now: float) -> float:
        with self._lock:
            self._counter += 1
            member = f"{self._member}{self._counter}"
        keys = [self.starts_key, self.blocked_key]
        answer = self._reserve(keys=keys, args=[repr(now), repr(self.window), self.limit, member])
        return max(0.0, float(answer))

    def hold_until(self, until: float) -> None:
        ttl_ms = max(1000, math.ceil((until - _wall()) * 1000) + 1000)
        self._hold(keys=[self.blocked_key], args=[repr(until), ttl_ms])

    def blocked_until(self) -> float:
        value = self.client.get(self.blocked_key)
        return float(value) if value is not None else -math.inf


def _wall() -> float:
    import time

    return time.time()


_OPENED: dict[tuple[Any, ...], BrandBudget] = {}
_OPENED_LOCK = threading.Lock()


def open_brand_budget(config: BrandBudgetConfig, secret: str) -> BrandBudget:
    """The budget of the brand behind ``secret``; one object per (backend, place, brand) per process,
    so every hook of the process shares it too."""
    brand = brand_id(secret)
    where = (
        (config.directory or default_budget_dir())
        if config.backend == "file"
        else config.resolved_redis_url()
    )
    key = (config.backend, where, brand, config.requests_per_window, config.window)
    with _OPENED_LOCK:
        budget = _OPENED.get(key)
        if budget is None:
            budget = _create(config, brand, where)
            _OPENED[key] = budget
        return budget


def _create(config: BrandBudgetConfig, brand: str, where: str | None) -> BrandBudget:
    size = (config.requests_per_window, config.window)
    if config.backend == "file":
        return FileBudget(where or default_budget_dir(), brand, *size)
    if config.backend == "redis":
        assert where is not None
        return RedisBudget(where, brand, *size)
    return ProcessBudget(*size)
