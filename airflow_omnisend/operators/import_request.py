"""OmnisendImportRequestOperator: the first task of the import-file DAG - what to import, and where.

The import-file DAG sends an NDJSON file of ready Omnisend events (a user's export, a fixed-up
dead-letter file) through the same validate -> automation safety check -> plan -> send -> report steps
as the store DAGs; this task reads its conf and names the staging partition those steps share.

An import reads only files under the allowed roots (:func:`import_allowed_roots`: the Airflow option
``[omnisend] import_allowed_roots``, a comma-separated list of absolute folders or URL prefixes; default
``$AIRFLOW_HOME/omnisend-imports``), and stages under ``<staging root>/file-imports/<store_id>/<label>``
(:data:`IMPORT_STAGING_DIRNAME`), a folder no store run uses: an import with a store's id and day never
overwrites that store's files.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf as airflow_conf

from airflow_omnisend.events.ids import check_store_id
from airflow_omnisend.events.partition import parse_partition_day
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators.base import DEFAULT_RETRY_POLICY, push_keys
from airflow_omnisend.operators.safety import check_acknowledgement
from airflow_omnisend.run_partition import parse_run_options
from airflow_omnisend.staging import StagingRoot
from airflow_omnisend.stores import load_stores

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import Context

__all__ = [
    "DEFAULT_IMPORT_STORE_ID",
    "IMPORT_CONF_KEYS",
    "IMPORT_STAGING_DIRNAME",
    "OmnisendImportRequestOperator",
    "check_import_path",
    "import_allowed_roots",
]

#: conf keys of the import-file DAG besides the run options
IMPORT_CONF_KEYS: Final = ("path", "store_id", "omnisend_conn_id")
#: the staging folder of an import that names no store
DEFAULT_IMPORT_STORE_ID: Final = "file_import"
_DEFAULT_CONN_ID: Final = "omnisend_default"
#: the folder under the staging root that holds imports (a hyphen: never a store id, so never a store's)
IMPORT_STAGING_DIRNAME: Final = "file-imports"
#: the Airflow option (section, key) naming the folders and URL prefixes an import may read
IMPORT_ROOTS_OPTION: Final = ("omnisend", "import_allowed_roots")
#: the allowed root when the option is unset, under $AIRFLOW_HOME
DEFAULT_IMPORT_DIRNAME: Final = "omnisend-imports"


def import_allowed_roots(setting: str | None = None) -> tuple[str, ...]:
    """The folders (absolute, resolved) and URL prefixes an import may read: ``setting``, else the
    Airflow option ``[omnisend] import_allowed_roots`` (env ``AIRFLOW__OMNISEND__IMPORT_ALLOWED_ROOTS``),
    comma-separated; else ``$AIRFLOW_HOME/omnisend-imports``. A relative folder is refused."""
    text = setting if setting is not None else airflow_conf.get(*IMPORT_ROOTS_OPTION, fallback="")
    roots: list[str] = []
    for item in (text or "").split(","):
        root = item.strip()
        if not root:
            continue
        if "://" in root:
            roots.append(root.rstrip("/") + "/")
        elif not Path(root).expanduser().is_absolute():
            raise OmnisendConfigError(
                f"[omnisend] import_allowed_roots lists the relative folder {root!r}; list absolute folders "
                "or URL prefixes (e.g. /data/omnisend-imports, s3://aws_conn@bucket/imports)"
            )
        else:
            roots.append(str(Path(root).expanduser().resolve()))
    if not roots:
        home = os.environ.get("AIRFLOW_HOME") or "~/airflow"
        roots.append(str((Path(home).expanduser() / DEFAULT_IMPORT_DIRNAME).resolve()))
    return tuple(roots)


def check_import_path(path: str, roots: tuple[str, ...]) -> str:
    """``path`` when it lies under one of ``roots`` (see :func:`import_allowed_roots`), else
    :class:`OmnisendConfigError` naming the roots and the setting. A local path must be absolute; it is
    resolved (``..``, symlinks) before the check, and the resolved path is returned."""
    fix = (
        f"put the file under {', '.join(roots)}, or add its folder to the Airflow option [omnisend] "
        "import_allowed_roots (env AIRFLOW__OMNISEND__IMPORT_ALLOWED_ROOTS, comma-separated)"
    )
    if "://" in path:
        parts = urlsplit(path)
        if parts.scheme in ("file", "local"):
            return check_import_path(unquote(parts.path), roots)
        if ".." in unquote(parts.path).split("/"):
            raise OmnisendConfigError(f"import path {path!r} climbs with '..'; name the file directly")
        if not any(path.startswith(root) for root in roots if "://" in root):
            raise OmnisendConfigError(f"import path {path!r} is not under an allowed import root; {fix}")
        return path
    if not Path(path).is_absolute():
        raise OmnisendConfigError(
            f"import path {path!r} is relative (to whichever folder the worker runs in); give an absolute "
            f"path; {fix}"
        )
    resolved = Path(path).resolve()
    if not any(resolved.is_relative_to(root) for root in roots if "://" not in root):
        raise OmnisendConfigError(f"import path {path!r} is not under an allowed import root; {fix}")
    return str(resolved)


class OmnisendImportRequestOperator(BaseOperator):
    """Resolve the import-file run's conf: the file, the store and connection, the partition label.

    Conf (or the DAG params): ``path`` (required: an NDJSON file of Omnisend events, a local path or
    fsspec URL), ``store_id`` (staging folder; default ``file_import``), ``omnisend_conn_id`` (default:
    the store's in the stores file, else ``omnisend_default``), ``partition`` (a ``YYYY-MM-DD`` label for
    the staging folder; default today in UTC - rerun with the same label to resume and skip finished
    bodies), ``dry_run``, ``acknowledge_automations``.

    Returns (XCom) ``{"path", "store_id", "staging", "omnisend_conn_id", "partition", "dry_run",
    "acknowledge_automations"}`` (``staging``: the imports' own staging root), and pushes each key as
    its own XCom. ``path`` must lie under an allowed import root (:func:`check_import_path`).
    """

    ui_color = "#f0f0f0"

    def __init__(
        self,
        *,
        stores_path: str | None = None,
        default_stores_path: str | None = None,
        staging: str | None = None,
        import_allowed_roots: str | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("retry_policy", DEFAULT_RETRY_POLICY)
        super().__init__(**kwargs)
        self.stores_path = stores_path
        self.default_stores_path = default_stores_path
        self.staging = staging
        self.import_allowed_roots = import_allowed_roots

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
        imports_root = StagingRoot(f"{StagingRoot.from_env(self.staging).url}/{IMPORT_STAGING_DIRNAME}")
        result = {
            "path": check_import_path(path.strip(), import_allowed_roots(self.import_allowed_roots)),
            "store_id": store_id,
            "staging": imports_root.url,
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
