"""Where orders come from: SQL (any Airflow SQL connection) and files."""

from __future__ import annotations
