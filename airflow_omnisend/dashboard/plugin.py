"""The Airflow plugin that puts the dashboard on the api-server: the app at ``/omnisend`` and a nav
entry "Omnisend backfills" in Airflow's UI.

Registered through the ``airflow.plugins`` entry point in pyproject.toml, so installing the provider
is all it takes: Airflow 3.3 loads entry-point plugins always, while the provider-metadata
``plugins`` key is only read when ``[core] lazy_discover_providers`` is off (plugins_manager.py).
Building the app reads nothing (every component that loads plugins may build it); the DB and
staging are read per request, on the api-server only.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_omnisend.dashboard.app import create_app

__all__ = ["NAV_NAME", "PLUGIN_NAME", "URL_PREFIX", "OmnisendDashboardPlugin"]

PLUGIN_NAME = "omnisend_dashboard"
NAV_NAME = "Omnisend backfills"
URL_PREFIX = "/omnisend"


class OmnisendDashboardPlugin(AirflowPlugin):
    """Mounts the dashboard app and links it from the UI's navigation (opened inside the UI)."""

    name = PLUGIN_NAME
    fastapi_apps: list[Any] = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": NAV_NAME}]
    external_views: list[Any] = [
        {
            "name": NAV_NAME,
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "omnisend",
        }
    ]
