"""The stores file: one entry per shop, validated on load into frozen :class:`StoreConfig` objects.

``dags/stores.yaml`` (or the file named by ``AIRFLOW_OMNISEND_STORES``)::

    stores:
      - store_id: demo                 # [a-z0-9_]+, unique; names the DAG, the pool, staging and eventIDs
        omnisend_conn_id: omnisend_demo
        source_conn_id: shop_demo      # an Airflow SQL connection (or source_path: a file)
        timezone: Europe/Vilnius       # IANA name: partitions are this timezone's calendar days
        start_date: "2024-03-04"       # first day of the backfill range
        period: day                    # day (default), week (ISO, Mon-Sun) or month: one run's partition
        keep_staged_events: false      # default: delete events/valid/bodies once a period is sent
        approval: none                 # ui: a blocked check waits for a person in Airflow's UI

The DAG file parses this file on every DAG-processor loop, so loading is cheap (one small YAML file, no
Airflow import, no connection look-up) and errors are collected per entry: one bad entry yields a
:class:`StoreEntry` with ``errors`` and leaves the good entries usable, so a typo in one shop's timezone
breaks that shop's DAG only. Every message names the file, the entry, the field and the fix, because the
person reading it sees it in the Airflow UI's import-error banner, far from the YAML.

Dates may be quoted (``"2024-03-04"``) or not; both are read as text and mean the store-local calendar
day. The file is read with a safe loader that refuses anchors/aliases, keys given twice and files over
:data:`MAX_STORES_FILE_BYTES`; integer settings have the ranges of :data:`INT_BOUNDS`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from airflow_omnisend.checks import check_int, short_repr
from airflow_omnisend.events.ids import check_store_id
from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.partition import (
    PartitionPeriod,
    load_timezone,
    parse_partition_day,
    parse_period,
)
from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_ONE_DAY: Final = timedelta(days=1)

__all__ = [
    "DAILY",
    "QUERY_KINDS",
    "STORES_ENV",
    "StoreConfig",
    "StoreEntry",
    "StoresFile",
    "load_stores",
    "resolve_stores_path",
]

STORES_ENV: Final = "AIRFLOW_OMNISEND_STORES"
DEFAULT_STORES_FILENAME: Final = "stores.yaml"
#: the one periodic schedule: one run per store-local period (day, week or month), after it has ended
DAILY: Final = "@daily"
#: keys of ``queries``: the fields of ``airflow_omnisend.sources.sql.SqlQueries``
QUERY_KINDS: Final = ("placed", "paid", "fulfilled", "canceled", "refunded", "unplaceable")

_CONN_ID = re.compile(r"[A-Za-z0-9_.\-]{1,250}")
_POOL = re.compile(r"[A-Za-z0-9_.\-]{1,256}")

REQUIRED_KEYS: Final = ("store_id", "omnisend_conn_id", "timezone", "start_date")
OPTIONAL_KEYS: Final = (
    "source_conn_id",
    "source_path",
    "end_date",
    "events",
    "schedule",
    "pool",
    "max_active_runs",
    "max_reject_ratio",
    "staging",
    "queries",
    "paramstyle",
    "retries",
    "retry_delay_seconds",
    "period",
    "keep_staged_events",
    "approval",
    "approval_timeout_hours",
    "approval_valid_days",
)
ALLOWED_KEYS: Final = REQUIRED_KEYS + OPTIONAL_KEYS


def _fix_list(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(values)


# -- field checks: each returns the normalised value or raises OmnisendConfigError("<field>: ...") ----------


def _check_store_id(value: object) -> str:
    return check_store_id(value, purpose="name a store's DAG, pool and staging folder")


def _check_conn_id(name: str, value: object, example: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise OmnisendConfigError(f"{name} is missing; name an Airflow connection id, e.g. {name}: {example}")
    if not isinstance(value, str) or not _CONN_ID.fullmatch(value):
        raise OmnisendConfigError(
            f"{name} {value!r} is not an Airflow connection id: use letters, digits, '_', '.', '-' "
            f"(e.g. {example})"
        )
    return value


def _check_timezone(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OmnisendConfigError(
            f"timezone is missing or not text ({value!r}); give an IANA name such as Europe/Vilnius or "
            "America/New_York"
        )
    try:
        if (
            len(value) > _MAX_ZONE_NAME
            or value in _SYSTEM_ZONE_FILES
            or value.startswith(("posix/", "right/"))
        ):
            raise OmnisendConfigError(value)  # checked first: such a name is never opened as a file
        load_timezone(value)
    except OmnisendConfigError:
        raise OmnisendConfigError(
            f"timezone {short_repr(value)} is not a known IANA timezone (names such as localtime or "
            "posixrules depend on each worker's own settings); use a name such as Europe/Vilnius, "
            "America/New_York or UTC (see the tz database list)"
        ) from None
    return value


#: files of the tz database folder that are no zone of their own: they mean whatever the worker's
#: system says (or nothing), so two workers could read one store's days differently
_SYSTEM_ZONE_FILES: Final = frozenset({"localtime", "posixrules", "Factory"})
#: longer than any IANA zone name (the longest are about 32 characters)
_MAX_ZONE_NAME: Final = 64


def _check_day(name: str, value: object) -> date:
    return parse_partition_day(value, what=name)


def _check_period(value: object) -> PartitionPeriod:
    return parse_period(value)


#: ``approval``: ``none`` (a blocked check fails the run) or ``ui`` (it waits for a person's answer)
APPROVAL_MODES: Final = ("none", "ui")


def _check_approval(value: object) -> str:
    if value not in APPROVAL_MODES:
        raise OmnisendConfigError(
            f"approval must be one of {', '.join(APPROVAL_MODES)}, got {short_repr(value)}; ui makes a "
            "blocked automation check wait for a person in Airflow's UI"
        )
    return str(value)


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise OmnisendConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _check_period_bounds(period: PartitionPeriod, start: date, end: date | None) -> None:
    """start_date must open a period and end_date close one: a partition is imported whole or not."""
    if period.start_of(start) != start:
        raise OmnisendConfigError(
            f"start_date {start} is not the first day of {period.a_noun} (period: {period}); use "
            f"{period.start_of(start)} or {period.after(period.start_of(start))}"
        )
    if end is not None and period.after(period.start_of(end)) - end != _ONE_DAY:
        last = period.after(period.start_of(end)) - _ONE_DAY
        raise OmnisendConfigError(
            f"end_date {end} is not the last day of {period.a_noun} (period: {period}); use {last} "
            f"or {period.start_of(end) - _ONE_DAY}"
        )


def _check_events(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise OmnisendConfigError(
            f"events must be a non-empty list of event names out of: {_fix_list(EVENT_NAMES)}; got {value!r}"
        )
    unknown = [v for v in value if v not in EVENT_NAMES]
    if unknown:
        raise OmnisendConfigError(
            f"events has unknown name(s) {unknown!r}; allowed: {_fix_list(EVENT_NAMES)} "
            "(Omnisend's names, with spaces)"
        )
    dupes = sorted({v for v in value if value.count(v) > 1})
    if dupes:
        raise OmnisendConfigError(f"events lists {dupes!r} more than once; list each name once")
    # keep the lifecycle order, whatever the file's order
    return tuple(name for name in EVENT_NAMES if name in value)


def _check_schedule(value: object) -> str | None:
    if value is None or value == DAILY:
        return value
    raise OmnisendConfigError(
        f"schedule {value!r} is not supported: a run is one store-local period (the store's period: day, "
        f"week or month), so use {DAILY!r} (default: one run after each local period ends; backfills "
        "possible) or null (runs only when triggered with a partition)"
    )


#: the range of each integer setting: (minimum, maximum, default)
INT_BOUNDS: Final = {
    "approval_timeout_hours": (1, 24 * 14, 24),
    "approval_valid_days": (1, 365, 30),
    "max_active_runs": (1, 64, 4),
    "retries": (0, 10, 3),
    "retry_delay_seconds": (0, 86_400, 60),
}


def _check_int(name: str, value: object) -> int:
    minimum, maximum, example = INT_BOUNDS[name]
    return check_int(name, value, minimum=minimum, maximum=maximum, fix=f"e.g. {example}")


def _check_ratio(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise OmnisendConfigError(
            f"max_reject_ratio must be a number from 0 to 1 (share of events validation may reject, e.g. "
            f"0.01 = 1%), got {value!r}"
        )
    return float(value)


def _check_pool(value: object) -> str:
    if not isinstance(value, str) or not _POOL.fullmatch(value):
        raise OmnisendConfigError(
            f"pool {value!r} is not a usable Airflow pool name: use letters, digits, '_', '.', '-' "
            "(default omnisend_<store_id>)"
        )
    return value


def _check_staging(value: object) -> str:
    return _absolute_location(
        "staging",
        value,
        "a folder or URL, e.g. /shared/omnisend-staging or s3://aws_conn@bucket/prefix (leave it out for "
        "$AIRFLOW_OMNISEND_STAGING)",
        "which would depend on each worker's working directory; give an absolute folder "
        "(/shared/omnisend-staging) or a URL (file:///..., s3://...)",
    )


def _check_source_path(value: object) -> str:
    return _absolute_location(
        "source_path",
        value,
        "the path of an orders/events file (NDJSON or CSV folder)",
        "give an absolute path so every worker finds it",
    )


def _absolute_location(field: str, value: object, what: str, fix: str) -> str:
    """A path or URL that means the same on every worker: not blank, and not relative to a working
    directory (tasks run wherever the executor puts them)."""
    if not isinstance(value, str) or not value.strip():
        raise OmnisendConfigError(f"{field} {value!r} must be {what}")
    text = value.strip()
    if "://" not in text and not Path(text).expanduser().is_absolute():
        raise OmnisendConfigError(f"{field} {value!r} is a relative path, {fix}")
    return text


def _check_paramstyle(value: object) -> str:
    from airflow_omnisend.sources.sql_queries import check_paramstyle

    return check_paramstyle(value)


def _check_queries(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not value:
        raise OmnisendConfigError(
            f"queries must be a mapping of event kind to SQL ({_fix_list(QUERY_KINDS)}), got {value!r}; "
            "leave it out to use the reference-schema queries"
        )
    unknown = sorted(str(k) for k in value if k not in QUERY_KINDS)
    if unknown:
        raise OmnisendConfigError(f"queries has unknown kind(s) {unknown}; allowed: {_fix_list(QUERY_KINDS)}")
    missing = [k for k in QUERY_KINDS[:5] if k not in value]
    if missing:
        raise OmnisendConfigError(
            f"queries lacks {missing}: give all five kinds ({_fix_list(QUERY_KINDS[:5])}; 'unplaceable' is "
            "optional) - the reference queries depend on the database dialect, which is only known when the "
            "task runs, so they cannot fill gaps. Start from SqlQueries.default('postgres') or "
            "SqlQueries.default('sqlite') (airflow_omnisend.sources.sql)"
        )
    blank = sorted(str(k) for k, v in value.items() if not isinstance(v, str) or not v.strip())
    if blank:
        raise OmnisendConfigError(f"queries {blank} must be non-empty SQL text")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


@dataclass(frozen=True)
class StoreConfig:
    """One store: everything its DAG needs, validated (see the module docstring for the file form).

    Exactly one source: ``source_conn_id`` (an Airflow SQL connection with the reference shop schema, or
    custom ``queries``) or ``source_path`` (an orders/events file the extract step reads).
    """

    store_id: str
    omnisend_conn_id: str
    timezone: str
    start_date: date
    source_conn_id: str | None = None
    source_path: str | None = None
    end_date: date | None = None
    events: tuple[str, ...] = EVENT_NAMES
    schedule: str | None = DAILY
    pool: str = ""  # "" -> omnisend_<store_id>
    max_active_runs: int = 4
    max_reject_ratio: float = 0.01
    staging: str | None = None
    queries: tuple[tuple[str, str], ...] = ()
    paramstyle: str | None = None  # the SQL driver's DB-API paramstyle, when its module's is wrong
    retries: int = 3
    retry_delay_seconds: int = 60
    period: PartitionPeriod = PartitionPeriod.DAY
    keep_staged_events: bool = False
    approval: str = "none"
    approval_timeout_hours: int = 24
    approval_valid_days: int = 30

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        _check_store_id(self.store_id)
        _check_conn_id("omnisend_conn_id", self.omnisend_conn_id, "omnisend_" + self.store_id)
        _check_timezone(self.timezone)
        set_(self, "start_date", _check_day("start_date", self.start_date))
        if self.end_date is not None:
            set_(self, "end_date", _check_day("end_date", self.end_date))
            if self.end_date < self.start_date:
                raise OmnisendConfigError(
                    f"end_date {self.end_date} is before start_date {self.start_date}; swap them or drop "
                    "end_date (open-ended)"
                )
        has_conn, has_path = self.source_conn_id is not None, self.source_path is not None
        if has_conn == has_path:
            raise OmnisendConfigError(
                "source_conn_id is missing: name exactly one source - source_conn_id (an Airflow SQL "
                "connection, e.g. source_conn_id: shop_" + self.store_id + ") or source_path (a file)"
                if not has_conn
                else "source_conn_id and source_path are both set; keep exactly one source"
            )
        if has_conn:
            _check_conn_id("source_conn_id", self.source_conn_id, "shop_" + self.store_id)
        else:
            set_(self, "source_path", _check_source_path(self.source_path))
        set_(self, "events", _check_events(list(self.events)))
        _check_schedule(self.schedule)
        set_(self, "pool", _check_pool(self.pool or f"omnisend_{self.store_id}"))
        _check_int("max_active_runs", self.max_active_runs)
        set_(self, "max_reject_ratio", _check_ratio(self.max_reject_ratio))
        if self.staging is not None:
            set_(self, "staging", _check_staging(self.staging))
        if self.queries:
            if self.source_path is not None:
                raise OmnisendConfigError("queries only apply to a SQL source (source_conn_id); drop them")
            set_(self, "queries", _check_queries(dict(self.queries)))
        if self.paramstyle is not None:
            if self.source_path is not None:
                raise OmnisendConfigError("paramstyle only applies to a SQL source (source_conn_id); drop it")
            set_(self, "paramstyle", _check_paramstyle(self.paramstyle))
        _check_int("retries", self.retries)
        _check_int("retry_delay_seconds", self.retry_delay_seconds)
        set_(self, "period", _check_period(self.period))
        _check_flag("keep_staged_events", self.keep_staged_events)
        _check_approval(self.approval)
        _check_int("approval_timeout_hours", self.approval_timeout_hours)
        _check_int("approval_valid_days", self.approval_valid_days)
        _check_period_bounds(self.period, self.start_date, self.end_date)

    @property
    def dag_id(self) -> str:
        return dag_id_for(self.store_id)

    @property
    def queries_dict(self) -> dict[str, str]:
        """Custom SQL by kind (``SqlQueries`` field names: the five kinds, optionally ``unplaceable``)."""
        return dict(self.queries)


def dag_id_for(store_id: str) -> str:
    """The DAG id of a store: ``omnisend_orders__<store_id>``."""
    return f"omnisend_orders__{store_id}"


@dataclass(frozen=True)
class StoreEntry:
    """One entry of the stores file, good (``config``) or bad (``errors``).

    ``store_id`` is the entry's id when it is usable (so a bad entry can still name its DAG), else None.
    """

    index: int  # 1-based position in the file
    store_id: str | None
    config: StoreConfig | None
    errors: tuple[str, ...] = ()
    raw_store_id: object = None  # what the file says, for naming an entry whose id is unusable

    @property
    def ok(self) -> bool:
        return self.config is not None

    @property
    def dag_id(self) -> str:
        """The DAG id of the entry (a placeholder id when its store_id cannot name a DAG)."""
        return dag_id_for(self.store_id) if self.store_id else f"omnisend_orders__entry_{self.index}"

    @property
    def label(self) -> str:
        if self.store_id:
            name = f"store {self.store_id!r}"
        elif self.raw_store_id is not None:
            name = f"store_id {short_repr(self.raw_store_id)}, not usable"
        else:
            name = "no store_id"
        return f"entry {self.index} ({name})"

    def describe(self) -> str:
        """One line per problem, prefixed with the entry."""
        return "\n".join(f"{self.label}: {e}" for e in self.errors)


@dataclass(frozen=True)
class StoresFile:
    """The loaded stores file: every entry in file order, good and bad."""

    path: Path
    entries: tuple[StoreEntry, ...] = field(default_factory=tuple)

    @property
    def stores(self) -> tuple[StoreConfig, ...]:
        return tuple(e.config for e in self.entries if e.config is not None)

    @property
    def bad_entries(self) -> tuple[StoreEntry, ...]:
        return tuple(e for e in self.entries if e.config is None)

    def describe_problems(self) -> str:
        """Every bad entry's problems, for one message (Airflow keeps one import error per file)."""
        bad = self.bad_entries
        if not bad:
            return ""
        dag_ids = ", ".join(e.dag_id for e in bad)
        lines = [
            f"stores file {self.path}: {len(bad)} bad entr{'y' if len(bad) == 1 else 'ies'}, so DAG(s) "
            f"{dag_ids} did not load (the file's other stores load normally); fix:"
        ]
        lines.extend(e.describe() for e in bad)
        return "\n".join(lines)

    def get(self, store_id: str) -> StoreConfig:
        for store in self.stores:
            if store.store_id == store_id:
                return store
        raise OmnisendConfigError(
            f"stores file {self.path} has no valid store {store_id!r}; valid: "
            f"{', '.join(s.store_id for s in self.stores) or '(none)'}"
        )


# -- loading ------------------------------------------------------------------------------------------------


#: the largest stores file read (a stores file of a thousand stores is far smaller)
MAX_STORES_FILE_BYTES: Final = 1_000_000
#: the longest problem message of one field (a rendered value is cut to fit)
MAX_MESSAGE_CHARS: Final = 400


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML would keep the last silently),
    refuses anchors and aliases (``&a`` / ``*a``: a few lines of them expand into gigabytes), and reads
    dates as text (so ``2024-02-30`` reaches the day rule, which names the entry and the field)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise OmnisendConfigError(
                f"line {event.start_mark.line + 1}: YAML anchors and aliases (&name, *name, <<: *name) are "
                "not allowed in the stores file; write each entry's values out"
            )
        return super().compose_node(parent, index)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise OmnisendConfigError(
                f"key {key!r} appears twice in one mapping (lines {seen[key]} and {line}); keep one"
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def resolve_stores_path(path: str | Path | None = None, default: str | Path | None = None) -> Path:
    """The stores file to read: ``path``, else ``$AIRFLOW_OMNISEND_STORES``, else ``default``."""
    for candidate in (path, os.environ.get(STORES_ENV), default):
        if candidate is not None and str(candidate).strip():
            return Path(candidate).expanduser()
    raise OmnisendConfigError(
        f"no stores file: set {STORES_ENV} to its path, or put {DEFAULT_STORES_FILENAME} next to the DAG file"
    )


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "store_id": _check_store_id,
    "omnisend_conn_id": lambda v: _check_conn_id("omnisend_conn_id", v, "omnisend_<store_id>"),
    "source_conn_id": lambda v: _check_conn_id("source_conn_id", v, "shop_<store_id>"),
    "source_path": _check_source_path,
    "timezone": _check_timezone,
    "start_date": lambda v: _check_day("start_date", v),
    "end_date": lambda v: None if v is None else _check_day("end_date", v),
    "events": _check_events,
    "schedule": _check_schedule,
    "pool": _check_pool,
    "max_active_runs": lambda v: _check_int("max_active_runs", v),
    "max_reject_ratio": _check_ratio,
    "staging": lambda v: None if v is None else _check_staging(v),
    "queries": _check_queries,
    "paramstyle": lambda v: None if v is None else _check_paramstyle(v),
    "retries": lambda v: _check_int("retries", v),
    "retry_delay_seconds": lambda v: _check_int("retry_delay_seconds", v),
    "period": _check_period,
    "keep_staged_events": lambda v: _check_flag("keep_staged_events", v),
    "approval": _check_approval,
    "approval_timeout_hours": lambda v: _check_int("approval_timeout_hours", v),
    "approval_valid_days": lambda v: _check_int("approval_valid_days", v),
}
assert set(_CHECKS) == set(ALLOWED_KEYS)
assert {f.name for f in fields(StoreConfig)} == set(ALLOWED_KEYS)


def _entry_store_id(raw: Mapping[str, Any], taken: Mapping[str, int], errors: list[str]) -> str | None:
    """The entry's usable, unique store id, or None (with the reason appended to ``errors``)."""
    try:
        store_id = _check_store_id(raw.get("store_id"))
    except OmnisendConfigError as exc:
        errors.append(
            f"field 'store_id': {exc}" if "store_id" in raw else "field 'store_id' is missing: add it"
        )
        return None
    if store_id in taken:
        errors.append(
            f"field 'store_id': {store_id!r} is already used by entry {taken[store_id]}; store ids must be "
            "unique - rename this one"
        )
        return None  # its DAG id belongs to the earlier entry
    return store_id


def _shape_errors(raw: Mapping[str, Any]) -> list[str]:
    """Problems of the entry's keys: unknown keys, missing required keys, not exactly one source."""
    errors = [
        f"unknown key {key!r}; allowed keys: {_fix_list(ALLOWED_KEYS)}"
        for key in sorted(str(k) for k in raw if k not in ALLOWED_KEYS)
    ]
    errors.extend(
        f"field {key!r} is missing: add it (required: {_fix_list(REQUIRED_KEYS)})"
        for key in REQUIRED_KEYS[1:]
        if key not in raw
    )
    if "source_conn_id" not in raw and "source_path" not in raw:
        errors.append(
            "field 'source_conn_id' is missing: name the Airflow SQL connection of the shop database "
            "(source_conn_id: shop_<store_id>), or a file with source_path"
        )
    elif "source_conn_id" in raw and "source_path" in raw:
        errors.append("fields 'source_conn_id' and 'source_path' are both set: keep exactly one source")
    return errors


def _field_values(raw: Mapping[str, Any], errors: list[str]) -> dict[str, Any]:
    """Every present field but store_id, checked; each bad one appends its problem to ``errors``."""
    values: dict[str, Any] = {}
    for key, check in _CHECKS.items():
        if key == "store_id" or key not in raw:
            continue
        try:
            values[key] = check(raw[key])
        except OmnisendConfigError as exc:
            errors.append(f"field {key!r}: {exc}")
    return values


def parse_entry(index: int, raw: object, taken: Mapping[str, int]) -> StoreEntry:
    """One entry of the file -> :class:`StoreEntry` with every problem found (not just the first).

    :param taken: store ids of earlier good entries -> their index (for the duplicate check).
    """
    if not isinstance(raw, dict):
        return StoreEntry(
            index,
            None,
            None,
            (
                f"is {type(raw).__name__} {short_repr(raw)}, not a mapping; write 'store_id: ...' and the "
                "other keys",
            ),
        )
    raw_id = raw.get("store_id")
    errors: list[str] = []
    store_id = _entry_store_id(raw, taken, errors)
    errors.extend(_shape_errors(raw))
    values = _field_values(raw, errors)
    if not errors:
        try:
            config = StoreConfig(store_id=store_id, **values)  # type: ignore[arg-type]
        except OmnisendConfigError as exc:  # cross-field rules (source, end_date, queries)
            errors.append(str(exc))
        else:
            return StoreEntry(index, store_id, config, raw_store_id=raw_id)
    return StoreEntry(index, store_id, None, tuple(_clip(e) for e in errors), raw_store_id=raw_id)


def _clip(message: str) -> str:
    """``message`` cut to :data:`MAX_MESSAGE_CHARS` (it ends up in one UI banner with every other)."""
    return message if len(message) <= MAX_MESSAGE_CHARS else f"{message[: MAX_MESSAGE_CHARS - 3]}..."


def _read_yaml(resolved: Path) -> Any:
    """The stores file's YAML document; an unreadable file or bad YAML names the file."""
    try:
        with resolved.open("rb") as handle:
            data = handle.read(MAX_STORES_FILE_BYTES + 1)
        if len(data) > MAX_STORES_FILE_BYTES:
            raise OmnisendConfigError(
                f"stores file {resolved} is larger than {MAX_STORES_FILE_BYTES} bytes; a stores file lists "
                "stores, not data - point it at the right file"
            )
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OmnisendConfigError(
            f"stores file {resolved} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except FileNotFoundError:
        raise OmnisendConfigError(
            f"stores file {resolved} does not exist; create it (see dags/stores.yaml) or point "
            f"{STORES_ENV} at yours"
        ) from None
    except OSError as exc:
        raise OmnisendConfigError(f"stores file {resolved} cannot be read: {exc}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except OmnisendConfigError as exc:
        raise OmnisendConfigError(f"stores file {resolved}: {exc}") from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an int too long for Python to convert
        raise OmnisendConfigError(f"stores file {resolved} is not valid YAML: {_clip(str(exc))}") from None


def _raw_entries(data: Any, resolved: Path) -> list[Any]:
    """The ``stores`` list of the document; any other top-level shape names the fix."""
    if not isinstance(data, dict) or "stores" not in data:
        raise OmnisendConfigError(
            f"stores file {resolved} must be a mapping with a 'stores' list at the top, e.g.\n"
            "stores:\n  - store_id: demo\n    omnisend_conn_id: omnisend_demo\n    ..."
        )
    extra = sorted(str(k) for k in data if k != "stores")
    if extra:
        raise OmnisendConfigError(
            f"stores file {resolved} has unknown top-level key(s) {extra}; the only top-level key is 'stores'"
        )
    raw_entries = data["stores"]
    if raw_entries is None:
        return []
    if not isinstance(raw_entries, list):
        raise OmnisendConfigError(
            f"stores file {resolved}: 'stores' must be a list of entries ('- store_id: ...'), got "
            f"{type(raw_entries).__name__}"
        )
    return raw_entries


def load_stores(path: str | Path | None = None, *, default: str | Path | None = None) -> StoresFile:
    """Read and validate the stores file (see :func:`resolve_stores_path` for which file).

    Raises :class:`OmnisendConfigError` only when the file as a whole is unusable (missing, not YAML, no
    ``stores`` list); problems of single entries are in the returned entries' ``errors``.
    """
    resolved = resolve_stores_path(path, default)
    taken: dict[str, int] = {}
    entries: list[StoreEntry] = []
    for index, raw in enumerate(_raw_entries(_read_yaml(resolved), resolved), start=1):
        entry = parse_entry(index, raw, taken)
        if entry.store_id is not None:
            taken.setdefault(entry.store_id, index)
        entries.append(entry)
    return StoresFile(resolved, tuple(entries))
