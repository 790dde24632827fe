"""The plugin: what it registers, how Airflow 3.3 finds it (the ``airflow.plugins`` entry point), and
Airflow's own ``airflow plugins`` listing it with the app and the nav entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from airflow._shared.plugins_manager import is_valid_plugin
from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
from fastapi import FastAPI

from airflow_omnisend.dashboard.plugin import NAV_NAME, URL_PREFIX, OmnisendDashboardPlugin
from airflow_omnisend.get_provider_info import get_provider_info
from airflow_omnisend.testing.plugin_entry_point import declared_entry_point, entry_point_dir

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
REPO = Path(__file__).resolve().parents[2]


def test_the_plugin_mounts_the_app_and_adds_the_nav_entry() -> None:
    assert is_valid_plugin(OmnisendDashboardPlugin)
    (app,) = OmnisendDashboardPlugin.fastapi_apps
    assert isinstance(app["app"], FastAPI)
    assert app["url_prefix"] == URL_PREFIX == "/omnisend"
    assert not any(URL_PREFIX.startswith(p) for p in RESERVED_URL_PREFIXES)
    (view,) = OmnisendDashboardPlugin.external_views
    assert (view["name"], view["href"], view["destination"]) == (NAV_NAME, "/omnisend/", "nav")
    assert NAV_NAME == "Omnisend backfills"


def test_it_is_registered_once_through_the_entry_point() -> None:
    value = declared_entry_point(OmnisendDashboardPlugin.name, REPO / "pyproject.toml")
    assert value == f"{OmnisendDashboardPlugin.__module__}:{OmnisendDashboardPlugin.__name__}"
    # not also in the provider metadata: with lazy_discover_providers off it would load twice
    assert "plugins" not in get_provider_info()


def test_airflow_lists_the_plugin(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env |= {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(tmp_path / "plugins")}  # fmt: skip
    shim = entry_point_dir(tmp_path / "entry-point")
    paths = [str(REPO), *([str(shim)] if shim else []), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    done = subprocess.run([AIRFLOW, "plugins", "-o", "json"], env=env, capture_output=True, text=True,
                          timeout=180, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    listed = {p["name"]: p for p in json.loads(done.stdout)}
    plugin = listed[OmnisendDashboardPlugin.name]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/omnisend"]
    assert [v["name"] for v in plugin["external_views"]] == [NAV_NAME]
