"""The provider is registered through its entry point, as Airflow's own CLI sees it."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

from airflow_omnisend.get_provider_info import get_provider_info

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_provider_info_names_the_distribution_and_every_listed_module_imports() -> None:
    info = get_provider_info()
    # package-name must equal the distribution name, or ProvidersManager breaks every airflow command
    assert info["package-name"] == "airflow-omnisend"
    assert version(info["package-name"])
    (point,) = [
        e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_omnisend")
    ]
    assert point.load() is get_provider_info
    modules = [m for kind in ("hooks", "operators", "sensors", "triggers") for entry in info.get(kind, [])
               for m in entry["python-modules"]]  # fmt: skip
    assert modules
    for module in modules:
        __import__(module)
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == "omnisend"
    # the port is shown: the UI's Test button needs a stored port (tests/e2e/test_connection_test_e2e.py)
    assert set(conn_type["ui-field-behaviour"]["hidden-fields"]) == {"schema", "login"}


def test_every_operator_module_is_listed() -> None:
    """Each module of operators/ that defines an operator (the shared base aside) is in the provider info."""
    from airflow.sdk import BaseOperator

    import airflow_omnisend.operators as package
    from airflow_omnisend.operators.base import OmnisendPartitionBaseOperator

    listed = {m for entry in get_provider_info()["operators"] for m in entry["python-modules"]}
    defining = set()
    for info in pkgutil.iter_modules(package.__path__, prefix=f"{package.__name__}."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseOperator)
                and value is not OmnisendPartitionBaseOperator
                and value.__module__ == info.name
            ):
                defining.add(info.name)
    assert listed == defining


@pytest.mark.e2e
def test_airflow_providers_list_shows_it() -> None:
    result = subprocess.run(
        [AIRFLOW, "providers", "list"],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert any(line.startswith("airflow-omnisend ") for line in result.stdout.splitlines()), result.stdout
    hooks = subprocess.run(
        [AIRFLOW, "providers", "hooks"],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert "airflow_omnisend.hooks.omnisend.OmnisendHook" in hooks.stdout


def test_the_description_reads_the_same_on_admin_providers() -> None:
    """3.3's providers endpoint deletes backticks, underscores and angle brackets: plain text survives."""
    from airflow.api_fastapi.core_api.services.public.providers import _remove_rst_syntax

    description = get_provider_info()["description"]
    assert _remove_rst_syntax(description) == description.rstrip(".")
    assert "Omnisend" in description
    assert "http" not in description  # links go in [project.urls], not in the text


def test_the_documentation_link_is_a_real_page() -> None:
    """Admin > Providers links the distribution's ``Project-URL: Documentation`` (pyproject urls)."""
    import tomllib

    from airflow_omnisend.get_provider_info import HISTORIC_ORDERS_GUIDE

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    urls = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["urls"]
    assert urls["Documentation"] == HISTORIC_ORDERS_GUIDE  # Omnisend's guide (omnisend-api.md D-hist)
    assert all(url.startswith("https://") for url in urls.values())


def test_every_extra_link_is_registered_and_is_an_operator_link() -> None:
    from airflow.sdk import BaseOperatorLink

    from airflow_omnisend.operators.report import OmnisendReportOperator
    from airflow_omnisend.operators.safety import OmnisendAutomationSafetyOperator

    registered = get_provider_info()["extra-links"]
    classes = []
    for path in registered:
        module, _, name = path.rpartition(".")
        classes.append(getattr(importlib.import_module(module), name))
    assert all(issubclass(cls, BaseOperatorLink) for cls in classes)
    on_operators = {
        type(link)
        for op in (OmnisendReportOperator, OmnisendAutomationSafetyOperator)
        for link in op.operator_extra_links
    }
    assert on_operators == set(classes)


@pytest.mark.e2e
def test_airflow_providers_links_lists_them() -> None:
    result = subprocess.run(
        [AIRFLOW, "providers", "links"],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("OmnisendPeriodReportLink", "OmnisendStoreDashboardLink", "OmnisendAutomationsLink"):
        assert f"airflow_omnisend.operators.links.{name}" in result.stdout, result.stdout
