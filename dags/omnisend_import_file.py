"""The manual DAG ``omnisend_import_file``: import an NDJSON file of Omnisend events.

``airflow dags trigger omnisend_import_file -c '{"path": "/data/events.ndjson", "store_id": "demo"}'``
runs validate -> automation safety check -> plan -> send -> report, as the store DAGs do. A ``store_id``
of the stores file lends its Omnisend connection (or name one with ``omnisend_conn_id``).
"""

from __future__ import annotations

from pathlib import Path

from airflow_omnisend.dag_factory import build_import_file_dag

dag = build_import_file_dag(default_stores_path=Path(__file__).with_name("stores.yaml"))
