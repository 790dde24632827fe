"""Test-session set-up shared by every test.

Airflow reads its configuration when first imported, so the isolated Airflow home is set here, before any
test module imports Airflow: tests never touch ~/airflow, and never load the example DAGs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# the Omnisend emulator fixtures (``omnisend_emulator``); the plugin imports no Airflow
pytest_plugins = ["airflow_omnisend.testing.pytest_plugin"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO_ROOT / "tests" / "fixtures"

_home = Path(tempfile.mkdtemp(prefix="airflow-omnisend-pytest-"))
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_home / 'airflow.db'}")
os.environ.setdefault("AIRFLOW_OMNISEND_STAGING", str(_home / "omnisend-staging"))
os.environ.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
