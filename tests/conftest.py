"""Test-session set-up shared by every test.

Airflow reads its configuration when first imported, so the isolated Airflow home is set here, before any
test module imports Airflow: tests never touch ~/airflow, and never load the example DAGs.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_omnisend.staging import PartitionStaging

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


@pytest.fixture
def staging(tmp_path: Path) -> PartitionStaging:
    """A local partition staging folder (store ``shop_1``, day 2026-03-01)."""
    from airflow_omnisend.staging import PartitionStaging, StagingRoot

    return PartitionStaging(StagingRoot(str(tmp_path / "stage")), "shop_1", "2026-03-01")


@pytest.fixture
def remote() -> PartitionStaging:
    """The same partition on a non-local filesystem (fsspec's in-memory one), like s3 without the network."""
    from airflow.sdk.io.store import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from airflow_omnisend.staging import PartitionStaging

    attach(protocol="memory", fs=MemoryFileSystem())
    return PartitionStaging(f"memory://bucket-{uuid.uuid4().hex[:8]}/prefix", "shop_1", "2026-03-01")


@pytest.fixture(autouse=True)
def own_brand_budget_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own shared brand budget (file backend): the emulator's one API key must not
    carry one test's pace or 429 hold into the next; the processes a test starts share it."""
    monkeypatch.setenv("AIRFLOW_OMNISEND_BRAND_BUDGET_DIR", str(tmp_path_factory.mktemp("brand-budget")))
