"""Typed, validated settings of the emulator: what it is (:class:`EmulatorConfig`), who may call it
(:class:`ApiKeyGrant`) and how it misbehaves on purpose (:class:`FaultConfig`).

Every config is a frozen dataclass checked in ``__post_init__``: a test that asks for an impossible
emulator (a 5xx rate of 2, a negative delay) fails at construction with a message naming the field,
not later with a confusing HTTP exchange. Lists given where tuples are expected are normalised, so
``EmulatorConfig(extra_keys=[...])`` works too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, cast

from airflow_omnisend.testing.emulator.items import parse_event_time

DEFAULT_API_KEY = "emulator-api-key"
V5 = "v5"
V2026 = "2026-03-15"
#: ``Omnisend-Version`` values the emulator answers to on ``/api/...``.
SUPPORTED_2026_VERSIONS = frozenset({V2026, "2026-preview"})
#: The permission that grants everything (the main API key has it).
ALL_PERMISSIONS = "*"
#: The three ways a rate limit can be signalled; ``rate_limit_signals`` picks which are sent.
#: ``body``: ``retryAfter`` in a 429 body; ``header``: ``Retry-After`` on a 429;
#: ``reset``: ``X-Rate-Limit-Limit/Remaining/Reset`` on every API response.
RATE_LIMIT_SIGNALS = frozenset({"body", "header", "reset"})
#: API operations faults can target (``FaultConfig.targets``); ``*`` means all of them.
FAULT_TARGETS = frozenset({"create_batch", "get_batch", "get_batch_items", "list_batches", "automations"})


def _fail(owner: str, name: str, value: object, rule: str) -> ValueError:
    return ValueError(f"{owner}.{name}={value!r} is invalid: {rule}")


def _check_rate(owner: str, name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise _fail(owner, name, value, "give a probability between 0.0 and 1.0")


def _check_non_negative(owner: str, name: str, value: float) -> None:
    if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
        raise _fail(owner, name, value, "give a finite number >= 0")


def _check_positive_int(owner: str, name: str, value: int, minimum: int = 1) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise _fail(owner, name, value, f"give an integer >= {minimum}")


@dataclass(frozen=True)
class ApiKeyGrant:
    """An API key (also usable as a bearer token) and the permissions it carries.

    Permissions are Omnisend's scope names (``events.write``, ``events.read``, ``automations.read``...);
    ``"*"`` grants all. A key without ``automations.read`` is how a test provokes the 403 that the
    automation safety check must treat as a block.
    """

    key: str = field(repr=False)
    permissions: frozenset[str] = frozenset({ALL_PERMISSIONS})

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key or any(c.isspace() for c in self.key):
            raise ValueError("ApiKeyGrant.key must be a non-empty string without whitespace")
        perms = self.permissions
        if isinstance(perms, str) or not isinstance(perms, Iterable):
            raise _fail("ApiKeyGrant", "permissions", perms, "give a set of names such as {'events.write'}")
        object.__setattr__(self, "permissions", frozenset(perms))

    def allows(self, permission: str) -> bool:
        return ALL_PERMISSIONS in self.permissions or permission in self.permissions

    @classmethod
    def parse(cls, spec: str) -> ApiKeyGrant:
        """``KEY`` (all permissions) or ``KEY:perm1,perm2`` (``KEY:`` = no permission at all)."""
        key, sep, perms = spec.partition(":")
        if not sep:
            return cls(key)
        return cls(key, frozenset(p.strip() for p in perms.split(",") if p.strip()))


@dataclass(frozen=True)
class FaultConfig:
    """Seeded, deterministic misbehaviour. Each fault kind draws from its own ``random.Random`` seeded from
    ``seed`` and the kind's name, so turning one fault on does not change which requests another hits.

    Faults hit only the operations in ``targets`` (default: ``POST /batches``). Counts like
    ``drop_next_responses`` and ``stop_next_batches`` restart whenever the faults are set.

    :param error_5xx_rate: share of targeted requests answered with a 5xx problem before anything is accepted.
    :param burst_429_every: every Nth targeted request starts a burst of ``burst_429_length`` 429s
        (0 = off); requests inside a burst are not counted towards N.
    :param burst_429_retry_after: seconds named in a burst 429 (body ``retryAfter``; also the ``Retry-After``
        header unless ``burst_429_retry_after_header`` names a different value, to test precedence).
    :param slow_rate: share of targeted requests whose response is held back ``slow_seconds``.
    :param drop_response_rate: share of *accepted* batch creations whose connection is then closed without
        a response (the batch exists and is processed; the client sees a dropped connection).
    :param drop_next_responses: the next N accepted batch creations are dropped that way.
    :param stop_batch_rate: share of accepted batches that stop after ``stop_after_items`` items
        (None: half of the batch, rounded down).
    :param stop_next_batches: the next N accepted batches stop that way.
    :param omit_counters_next_batches: the next N accepted batches answer without ``totalCount``,
        ``finishedCount`` and ``errorsCount`` (in ``GET /batches`` and ``GET /batches/{id}``), as a
        client must expect from an answer it cannot trust.
    :param item_400_rate: share of processed items that fail with a 400 item response (not retryable).
    :param item_5xx_rate: share of processed items that fail with a 503 item response (retryable per item).
    :param refuse_event_windows: ``[from, to)`` eventTime windows: a batch holding an item whose eventTime
        falls inside one is refused with 503, every time, until the faults change.
    """

    seed: int = 0
    targets: frozenset[str] = frozenset({"create_batch"})
    error_5xx_rate: float = 0.0
    error_5xx_statuses: tuple[int, ...] = (503, 500)
    burst_429_every: int = 0
    burst_429_length: int = 1
    burst_429_retry_after: float = 1.0
    burst_429_retry_after_header: float | None = None
    slow_rate: float = 0.0
    slow_seconds: float = 0.5
    drop_response_rate: float = 0.0
    drop_next_responses: int = 0
    stop_batch_rate: float = 0.0
    stop_next_batches: int = 0
    stop_after_items: int | None = None
    item_5xx_rate: float = 0.0
    omit_counters_next_batches: int = 0
    item_400_rate: float = 0.0
    #: given as datetimes with a timezone or RFC 3339 strings; held as datetimes (see ``event_windows``)
    refuse_event_windows: tuple[tuple[datetime | str, datetime | str], ...] = ()

    def __post_init__(self) -> None:
        owner = "FaultConfig"
        if not isinstance(self.seed, int):
            raise _fail(owner, "seed", self.seed, "give an integer")
        targets = frozenset([self.targets] if isinstance(self.targets, str) else self.targets)
        if "*" in targets:
            targets = FAULT_TARGETS
        if unknown := targets - FAULT_TARGETS:
            raise _fail(owner, "targets", sorted(unknown), f"choose from {sorted(FAULT_TARGETS)} or '*'")
        object.__setattr__(self, "targets", targets)
        for name in (
            "error_5xx_rate",
            "slow_rate",
            "drop_response_rate",
            "stop_batch_rate",
            "item_5xx_rate",
            "item_400_rate",
        ):
            _check_rate(owner, name, getattr(self, name))
        statuses = tuple(self.error_5xx_statuses)
        if not statuses or any(not isinstance(s, int) or not 500 <= s <= 599 for s in statuses):
            raise _fail(owner, "error_5xx_statuses", statuses, "give one or more status codes 500-599")
        object.__setattr__(self, "error_5xx_statuses", statuses)
        _check_positive_int(owner, "burst_429_every", self.burst_429_every, minimum=0)
        _check_positive_int(owner, "burst_429_length", self.burst_429_length)
        _check_positive_int(owner, "drop_next_responses", self.drop_next_responses, minimum=0)
        _check_positive_int(owner, "stop_next_batches", self.stop_next_batches, minimum=0)
        _check_positive_int(owner, "omit_counters_next_batches", self.omit_counters_next_batches, minimum=0)
        if self.stop_after_items is not None:
            _check_positive_int(owner, "stop_after_items", self.stop_after_items, minimum=0)
        _check_non_negative(owner, "burst_429_retry_after", self.burst_429_retry_after)
        if self.burst_429_retry_after_header is not None:
            _check_non_negative(owner, "burst_429_retry_after_header", self.burst_429_retry_after_header)
        _check_non_negative(owner, "slow_seconds", self.slow_seconds)
        object.__setattr__(self, "refuse_event_windows", _windows(self.refuse_event_windows))

    @property
    def event_windows(self) -> tuple[tuple[datetime, datetime], ...]:
        """``refuse_event_windows`` as the datetimes ``__post_init__`` turned them into."""
        return cast("tuple[tuple[datetime, datetime], ...]", self.refuse_event_windows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what ``GET /__emulator__/faults`` answers)."""
        data = asdict(self)
        data["targets"] = sorted(self.targets)
        data["error_5xx_statuses"] = list(self.error_5xx_statuses)
        data["refuse_event_windows"] = [[a.isoformat(), b.isoformat()] for a, b in self.event_windows]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultConfig:
        """Build from JSON (the body of ``POST /__emulator__/faults``); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        if unknown := set(data) - known:
            raise ValueError(f"unknown fault setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(data))


def _windows(value: Any) -> tuple[tuple[datetime, datetime], ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise _fail("FaultConfig", "refuse_event_windows", value, "give a list of [from, to) pairs")
    windows: list[tuple[datetime, datetime]] = []
    for pair in value:
        if isinstance(pair, Mapping):
            pair = (pair.get("from"), pair.get("to"))
        bounds = [_instant(b) for b in pair]
        if len(bounds) != 2 or not bounds[0] < bounds[1]:
            raise _fail(
                "FaultConfig", "refuse_event_windows", pair, "each window is [from, to) with from < to"
            )
        windows.append((bounds[0], bounds[1]))
    return tuple(windows)


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _fail("FaultConfig", "refuse_event_windows", value, "datetimes need a timezone")
        return value
    parsed = parse_event_time(value) if isinstance(value, str) else None
    if parsed is None:
        raise _fail("FaultConfig", "refuse_event_windows", value, "give RFC 3339 times with an offset")
    return parsed


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything an :class:`~airflow_omnisend.testing.emulator.OmnisendEmulator` is.

    :param port: 0 picks a free port (read it back from ``emulator.base_url``).
    :param api_key: the key with every permission; ``extra_keys`` adds keys with limited permissions.
    :param db_path: SQLite file of the record (CLI ``--record``/``--db``): kept when given, and an emulator
        started on it again serves its batches, events and key changes and finishes the batches left
        unfinished; a temp file that is deleted on ``stop()`` otherwise.
    :param automations: automations served by ``GET /api/automations`` (2026 ``Automation`` objects);
        ``automations_file`` loads them from JSON (a list, or ``{"automations": [...]}``) instead.
    :param rate_limit: requests per ``rate_limit_window`` seconds and per key (sliding window).
    :param rate_limit_signals: which of ``body``/``header``/``reset`` are sent (see ``RATE_LIMIT_SIGNALS``).
    :param fractional_seconds: send ``retryAfter``/``Retry-After``/``X-Rate-Limit-Reset`` with millisecond
        fractions instead of whole seconds rounded up (not Omnisend's format; makes rate-limit tests fast).
    :param processing_delay: seconds from creation until a batch ends: pending for the first half,
        inProgress for the second.
    :param stop_window: with ``stop_error_ratio``: a batch stops once more than
        ``stop_error_ratio * stop_window`` of its first ``stop_window`` processed items failed.
    :param future_tolerance: seconds an item's eventTime may lie ahead of the emulator's clock.
    :param record_requests: keep the request log (``store.request_log()``).
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = field(default=DEFAULT_API_KEY, repr=False)
    extra_keys: tuple[ApiKeyGrant, ...] = ()
    db_path: str | None = None
    automations: tuple[Mapping[str, Any], ...] = ()
    automations_file: str | None = None
    rate_limit: int = 400
    rate_limit_window: float = 60.0
    rate_limit_signals: frozenset[str] = RATE_LIMIT_SIGNALS
    fractional_seconds: bool = False
    processing_delay: float = 0.05
    max_payload_bytes: int = 1_000_000
    max_items_v5: int = 1000
    max_items_2026: int = 100
    stop_window: int = 20
    stop_error_ratio: float = 0.5
    future_tolerance: float = 0.0
    record_requests: bool = True
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        owner = "EmulatorConfig"
        if not isinstance(self.host, str) or not self.host:
            raise _fail(owner, "host", self.host, "give a host name or address such as '127.0.0.1'")
        _check_positive_int(owner, "port", self.port, minimum=0)
        if self.port > 65535:
            raise _fail(owner, "port", self.port, "give 0 (any free port) or 1-65535")
        ApiKeyGrant(self.api_key)  # same rules as every key
        grants = tuple(g if isinstance(g, ApiKeyGrant) else ApiKeyGrant.parse(g) for g in self.extra_keys)
        if len({g.key for g in grants} | {self.api_key}) != len(grants) + 1:
            raise _fail(owner, "extra_keys", [g.key[:4] + "..." for g in grants], "keys must be distinct")
        object.__setattr__(self, "extra_keys", grants)
        if isinstance(self.automations, Mapping) or not all(isinstance(a, Mapping) for a in self.automations):
            raise _fail(owner, "automations", type(self.automations).__name__, "give a list of JSON objects")
        object.__setattr__(self, "automations", tuple(self.automations))
        _check_positive_int(owner, "rate_limit", self.rate_limit)
        if not (isinstance(self.rate_limit_window, int | float) and self.rate_limit_window > 0):
            raise _fail(owner, "rate_limit_window", self.rate_limit_window, "give seconds > 0")
        signals = frozenset([self.rate_limit_signals] if isinstance(self.rate_limit_signals, str) else
                            self.rate_limit_signals)  # fmt: skip
        if unknown := signals - RATE_LIMIT_SIGNALS:
            raise _fail(
                owner, "rate_limit_signals", sorted(unknown), f"choose from {sorted(RATE_LIMIT_SIGNALS)}"
            )
        object.__setattr__(self, "rate_limit_signals", signals)
        _check_non_negative(owner, "processing_delay", self.processing_delay)
        _check_non_negative(owner, "future_tolerance", self.future_tolerance)
        _check_positive_int(owner, "max_payload_bytes", self.max_payload_bytes)
        _check_positive_int(owner, "max_items_v5", self.max_items_v5)
        _check_positive_int(owner, "max_items_2026", self.max_items_2026)
        _check_positive_int(owner, "stop_window", self.stop_window)
        if not (isinstance(self.stop_error_ratio, int | float) and 0 < self.stop_error_ratio <= 1):
            raise _fail(owner, "stop_error_ratio", self.stop_error_ratio, "give a share in (0, 1]")
        if not isinstance(self.faults, FaultConfig):
            raise _fail(owner, "faults", type(self.faults).__name__, "give a FaultConfig")

    def max_items(self, api_version: str) -> int:
        return self.max_items_v5 if api_version == V5 else self.max_items_2026

    def grants(self) -> dict[str, ApiKeyGrant]:
        """Every accepted key (or bearer token) -> its grant."""
        return {self.api_key: ApiKeyGrant(self.api_key), **{g.key: g for g in self.extra_keys}}
