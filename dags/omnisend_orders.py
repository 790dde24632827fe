"""One Airflow DAG per store of the stores file: ``omnisend_orders__<store_id>``.

The stores file is ``stores.yaml`` next to this file, or the file named by ``AIRFLOW_OMNISEND_STORES``.
A bad entry becomes an import error naming the store, the field and the fix; the other stores' DAGs
load as usual. Everything else lives in ``airflow_omnisend.dag_factory`` (importable for your own dags
folder).
"""

from __future__ import annotations

from pathlib import Path

from airflow_omnisend.dag_factory import build_store_dags

globals().update(build_store_dags(default_stores_path=Path(__file__).with_name("stores.yaml")))
