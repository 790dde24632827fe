"""Where orders come from: SQL (any Airflow SQL connection, or a DB-API connection) and files.

Every source is an :class:`OrderSource`: ``iter_events(store_id, window, reject)`` yields the events of one
partition (a store-local day), and ``find_unplaceable(reject)`` is the once-per-backfill sweep for rows
whose time has no date. :func:`extract_partition` writes one partition as NDJSON. Nothing here imports
Airflow at import time (only :class:`SqlOrderSource` does, when it opens its connection).
"""

from __future__ import annotations

from airflow_omnisend.sources.base import OrderSource, RowRejection, place
from airflow_omnisend.sources.extract import (
    ExtractSummary,
    RejectedRowWriter,
    extract_partition,
    sweep_unplaceable,
)
from airflow_omnisend.sources.files import NdjsonEventSource, OrderCsvSource, OrderNdjsonSource
from airflow_omnisend.sources.sql import (
    DbApiOrderSource,
    SqlOrderSource,
    SqlQueries,
    check_queries,
    find_unplaceable_sql,
    iter_sql_events,
)

__all__ = [
    "DbApiOrderSource",
    "ExtractSummary",
    "NdjsonEventSource",
    "OrderCsvSource",
    "OrderNdjsonSource",
    "OrderSource",
    "RejectedRowWriter",
    "RowRejection",
    "SqlOrderSource",
    "SqlQueries",
    "check_queries",
    "extract_partition",
    "find_unplaceable_sql",
    "iter_sql_events",
    "place",
    "sweep_unplaceable",
]
