"""OpenLineage datasets of the extract and send steps (optional extra ``[openlineage]``).

The operators' ``get_openlineage_facets_on_*`` methods call :func:`extract_lineage` and
:func:`send_lineage`. OpenLineage is imported inside those functions only: without the extra they return
``None`` and the provider works as before.

Lineage of one partition: the source tables (or files) -> extract -> the staged ``events.ndjson``
(row count = events extracted); the staged shard bodies -> send -> the brand's Omnisend events (row count =
events Omnisend accepted). Counts come from what the step just wrote to staging (``extract.json``, the
shard's receipts): no call to the source or Omnisend. Namespaces carry host and port only: no login,
password, API key or connection extra ever goes into a facet.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from airflow_omnisend.exceptions import OmnisendError

if TYPE_CHECKING:
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import ObjectStoragePath
    from openlineage.client.facet_v2 import RunFacet

    from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
    from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
    from airflow_omnisend.sources import SqlQueries

    #: what the operators' ``get_openlineage_facets_on_*`` return
    Lineage = OperatorLineage[Dataset, RunFacet]

__all__ = [
    "EVENTS_NAME",
    "extract_lineage",
    "location_dataset",
    "omnisend_dataset",
    "send_lineage",
    "sql_datasets",
]

log = logging.getLogger(__name__)

#: name of a brand's Omnisend events dataset (namespace ``omnisend://<API host>``)
EVENTS_NAME: Final = "brands/{brand}/events"
#: Airflow connection types whose tables are named ``database.schema.table`` (default schema) or
#: ``database.table`` (None: no schema level)
_DEFAULT_SCHEMA: Final = {"postgres": "public", "mysql": None, "sqlite": None}
_DEFAULT_PORT: Final = {"postgres": 5432, "mysql": 3306}
#: reading what a step left in staging can fail this way; lineage then goes without counts
_STAGING_ERRORS: Final = (OmnisendError, OSError, KeyError, TypeError, ValueError)


def _openlineage() -> tuple[type[Lineage], type[Dataset]] | None:
    """The OpenLineage classes, or ``None`` when the extra is not installed."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    return OperatorLineage, Dataset


def _host_port(host: str | None, port: int | None, default_port: int | None = None) -> str:
    """``host:port`` without any ``user:password@`` a host field may carry."""
    where = (host or "localhost").rsplit("@", 1)[-1]
    port = port or default_port
    return f"{where}:{port}" if port and ":" not in where else where


def _source_tables(queries: SqlQueries, dialect: str) -> list[tuple[str | None, str | None, str]]:
    """``(database, schema, table)`` of every table the queries read (OpenLineage's SQL parser)."""
    try:
        from openlineage_sql import parse
    except ImportError:
        log.info("openlineage-sql is not installed: no source tables in the lineage")
        return []
    sqls = [value for f in dataclasses.fields(queries) if isinstance(value := getattr(queries, f.name), str)]
    meta = parse(sqls, dialect=dialect)
    if meta is None:
        return []
    return sorted({(t.database, t.schema, t.name) for t in meta.in_tables}, key=str)


def sql_datasets(conn_id: str, queries: SqlQueries | None) -> list[Dataset]:
    """The source tables of an Airflow SQL connection: namespace ``<type>://host:port`` (SQLite: the file),
    names ``database.schema.table`` (PostgreSQL), ``database.table`` (MySQL), ``main.table`` (SQLite)."""
    classes = _openlineage()
    if classes is None:
        return []
    from airflow.sdk import BaseHook

    from airflow_omnisend.sources import SqlQueries

    conn = BaseHook.get_connection(conn_id)
    kind = str(conn.conn_type or "generic").lower()
    dialect = kind if kind in _DEFAULT_SCHEMA else "generic"
    if queries is None:
        if dialect == "generic":
            return []
        queries = SqlQueries.default(dialect)
    if kind == "sqlite":
        namespace, database = f"sqlite://{Path(conn.host or '').expanduser().absolute()}", "main"
    else:
        namespace, database = f"{kind}://{_host_port(conn.host, conn.port, _DEFAULT_PORT.get(kind))}", None
    database = database or conn.schema or None
    default_schema = _DEFAULT_SCHEMA.get(kind, "public")
    datasets = []
    for db, schema, table in _source_tables(queries, dialect):
        if kind == "mysql":
            parts = [schema or db or database, table]
        elif kind == "sqlite":
            parts = [schema or database, table]
        else:
            parts = [db or database, schema or default_schema, table]
        datasets.append(classes[1](namespace=namespace, name=".".join(p for p in parts if p)))
    return datasets


def location_dataset(location: str | ObjectStoragePath) -> Dataset:
    """A file or folder: namespace ``file`` and the absolute path when local, else ``<scheme>://<bucket>``
    and the key (any ``conn_id@`` of an Airflow object-storage URL is dropped)."""
    classes = _openlineage()
    assert classes is not None, "call only when OpenLineage is installed"
    text = str(location)
    parts = urlsplit(text)
    if "://" not in text or parts.scheme in ("file", "local"):
        path = parts.path if "://" in text else text
        return classes[1](namespace="file", name=str(Path(path).expanduser().absolute()))
    bucket = parts.netloc.rsplit("@", 1)[-1]
    return classes[1](namespace=f"{parts.scheme}://{bucket}", name=parts.path.lstrip("/"))


def omnisend_dataset(base_url: str, brand: str) -> Dataset:
    """The brand's events in Omnisend: namespace ``omnisend://<API host>``, name ``brands/<brand>/events``."""
    classes = _openlineage()
    assert classes is not None, "call only when OpenLineage is installed"
    host = urlsplit(base_url).netloc.rsplit("@", 1)[-1] or base_url
    return classes[1](namespace=f"omnisend://{host}", name=EVENTS_NAME.format(brand=brand))


def _output(dataset: Dataset, rows: int | None, size: int | None = None) -> Dataset:
    """``dataset`` as an output, with its ``outputStatistics`` when the counts are known."""
    from airflow.providers.common.compat.openlineage.facet import (
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )

    facets: dict[str, Any] = {}
    if rows is not None:
        facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=rows, size=size)
    return OutputDataset(namespace=dataset.namespace, name=dataset.name, outputFacets=facets)


def _file_inputs(path: str) -> list[Dataset]:
    """A file source: the file, or a local CSV folder's tables that exist (a remote folder as one)."""
    from airflow_omnisend.operators.extract import CSV_TABLES

    if "://" not in path and Path(path).expanduser().is_dir():
        folder = Path(path).expanduser()
        return [location_dataset(str(folder / name)) for name in CSV_TABLES if (folder / name).is_file()]
    return [location_dataset(path)]


def _extract_inputs(operator: OmnisendExtractOrdersOperator) -> list[Dataset]:
    from airflow_omnisend.operators.extract import _given

    conn_id, path = _given(operator.source_conn_id), _given(operator.source_path)
    if conn_id is not None:
        return sql_datasets(conn_id, operator.queries)
    return [] if path is None else _file_inputs(path)


def extract_lineage(operator: OmnisendExtractOrdersOperator, *, complete: bool) -> Lineage | None:
    """Inputs: the source tables or files; output: the staged ``events.ndjson``, with the events
    extracted and their bytes as ``outputStatistics`` when ``complete``."""
    classes = _openlineage()
    if classes is None:
        return None
    partition = operator.partition_staging()
    rows = size = None
    if complete:
        try:
            summary = partition.read_json("extract")
            rows, size = int(summary["events"]), int(summary["bytes_written"])
        except _STAGING_ERRORS as exc:
            log.warning("no row counts in the lineage: cannot read extract.json (%s)", exc)
    output = _output(location_dataset(partition.events), rows, size)
    return classes[0](inputs=_extract_inputs(operator), outputs=[output])


def _accepted(operator: OmnisendSendBatchesOperator, partition: Any, shard: Any) -> int | None:
    """Events of the shard Omnisend accepted, from its receipts (``None`` when they cannot be read)."""
    from airflow_omnisend.operators.receipts import PartitionReceipts

    try:
        receipts = PartitionReceipts(partition)
        found = [receipts.read(body.body_id) for body in shard.bodies]
    except _STAGING_ERRORS as exc:
        log.warning("no accepted count in the lineage: cannot read the receipts (%s)", exc)
        return None
    return sum(r.accepted for r in found if r is not None)


def send_lineage(operator: OmnisendSendBatchesOperator, *, complete: bool) -> Lineage | None:
    """Input: the shard's staged bodies; output: the brand's Omnisend events, with the shard's accepted
    events as ``outputStatistics`` when ``complete``."""
    classes = _openlineage()
    if classes is None:
        return None
    partition = operator.partition_staging()
    try:
        shard = operator._shard_plan(partition)
    except _STAGING_ERRORS as exc:
        log.warning("no shard in the lineage: cannot read plan.json (%s)", exc)
        return None
    hook = operator.get_hook()
    try:
        base_url = hook.settings.base_url
    finally:
        hook.close()
    rows = _accepted(operator, partition, shard) if complete else None
    return classes[0](
        inputs=[location_dataset(partition.shard(shard.index))],
        outputs=[_output(omnisend_dataset(base_url, operator.store_id), rows)],
    )
