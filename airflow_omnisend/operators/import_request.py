"""OmnisendImportRequestOperator: the first task of the import-file DAG - what to import, and where.

The import-file DAG sends an NDJSON file of ready Omnisend events (a user's export, a fixed-up
dead-letter file) through the same validate -> automation safety check -> plan -> send -> report steps
as the store DAGs; this task reads its conf and names the staging partition those steps share.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from airflow.sdk import BaseOperator

from airflow_omnisend.events.ids import check_store_id
from airflow_omnisend.events.partition import parse_partition_day
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators.base import DEFAULT_RETRY_POLICY, push_keys
from airflow_omnisend.operators.safety import check_acknowledgement
from airflow_omnisend.run_partition import parse_run_options
from airflow_omnisend.stores import load_stores

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import Context

__all__ = ["DEFAULT_IMPORT_STORE_ID", "IMPORT_CONF_KEYS", "OmnisendImportRequestOperator"]

#: conf keys of the import-file DAG besides the run options
IMPORT_CONF_KEYS: Final = ("path", "store_id", "omnisend_conn_id")
#: the staging folder of an import that names no store
DEFAULT_IMPORT_STORE_ID: Final = "file_import"
_DEFAULT_CONN_ID: Final = "omnisend_default"


class OmnisendImportRequestOperator(BaseOperator):
    """Resolve the import-file run's conf: the file, the store and connection, the partition label.

    Conf (or the DAG params): ``path`` (required: an NDJSON file of Omnisend events, a local path or
    fsspec URL), ``store_id`` (staging folder; default ``file_import``), ``omnisend_conn_id`` (default:
    the store's in the stores file, else ``omnisend_default``), ``partition`` (a ``YYYY-MM-DD`` label for
    the staging folder; default today in UTC - rerun with the same label to resume and skip finished
    bodies), ``dry_run``, ``acknowledge_automations``.

    Returns (XCom) ``{"path", "store_id", "omnisend_conn_id", "partition", "dry_run",
    "acknowledge_automations"}``, and pushes each key as its own XCom.
    """

    ui_color = "#f0f0f0"

    def __init__(
        self, *, stores_path: str | None = None, default_stores_path: str | None = None, **kwargs: Any
    ):
        kwargs.setdefault("retry_policy", DEFAULT_RETRY_POLICY)
        super().__init__(**kwargs)
        self.stores_path = stores_path
        self.default_stores_path = default_stores_path

    def execute(self, context: Context) -> dict[str, Any]:
        dag_run = context["dag_run"]
        conf = dict(dag_run.conf or {})
        params = dict(context.get("params") or {})
        options = parse_run_options(conf, params, extra_keys=IMPORT_CONF_KEYS)
        merged = {**params, **conf}
        check_acknowledgement(options.acknowledge_automations, type(self).__name__)
        path = merged.get("path")
        if not isinstance(path, str) or not path.strip():
            raise OmnisendConfigError(
                f"{dag_run.dag_id}: name the NDJSON file of events to import: "
                f'airflow dags trigger {dag_run.dag_id} -c \'{{"path": "/data/events.ndjson"}}\''
            )
        store_id = merged.get("store_id") or DEFAULT_IMPORT_STORE_ID
        check_store_id(store_id)
        label = options.partition or datetime.now(UTC).date().isoformat()
        parse_partition_day(label)
        result = {
            "path": path.strip(),
            "store_id": store_id,
            "omnisend_conn_id": self._omnisend_conn_id(merged, store_id),
            "partition": label,
            "dry_run": options.dry_run,
            "acknowledge_automations": options.acknowledge_automations,
        }
        shown = {k: v for k, v in result.items() if k != "acknowledge_automations"}
        self.log.info("Import request: %s", shown)
        push_keys(context, result)
        return result

    def _omnisend_conn_id(self, merged: Mapping[str, Any], store_id: str) -> str:
        """The conf's connection, else the store's in the stores file, else ``omnisend_default``."""
        conn_id = merged.get("omnisend_conn_id")
        if conn_id:
            return str(conn_id)
        try:
            stores = load_stores(self.stores_path, default=self.default_stores_path)
            return stores.get(store_id).omnisend_conn_id
        except OmnisendConfigError:
            return _DEFAULT_CONN_ID
