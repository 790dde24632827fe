"""Extra links on a store DAG's tasks: from the report to the period's report, from the safety check to
the brand's automations in Omnisend.

Airflow 3.3 asks each link for its URL on the worker when the task ends (success or failure), with
the task's rendered arguments, and keeps the URL in an XCom the UI reads; so a link can name the
period the task ran for. The report links go to the provider's dashboard on Airflow's own API server
(``/omnisend``, :mod:`airflow_omnisend.dashboard`): relative to it unless ``[api] base_url`` says where
the UI is. The automations link opens Omnisend's app, where a blocking automation is switched off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "DASHBOARD_PREFIX",
    "OMNISEND_AUTOMATIONS_URL",
    "OmnisendAutomationsLink",
    "OmnisendPeriodReportLink",
    "OmnisendStoreDashboardLink",
    "dashboard_url",
]

#: where the provider's dashboard plugin mounts its app on the API server
DASHBOARD_PREFIX: Final = "/omnisend"
#: the automations list in Omnisend's app (the brand is the one the user is logged in to)
OMNISEND_AUTOMATIONS_URL: Final = "https://app.omnisend.com/automations"


def _ui_root() -> str:
    """``[api] base_url`` without its trailing slash; empty (a link relative to the UI) when unset."""
    from airflow.sdk import conf

    return str(conf.get("api", "base_url", fallback="") or "").rstrip("/")


def dashboard_url(*parts: str) -> str:
    """The dashboard page at ``parts``, each quoted: ``dashboard_url("stores", "acme")`` is
    ``/omnisend/stores/acme`` (behind ``[api] base_url`` when it is set)."""
    path = "/".join(quote(str(part), safe="") for part in parts)
    return f"{_ui_root()}{DASHBOARD_PREFIX}/{path}"


def _rendered(operator: BaseOperator, name: str) -> str | None:
    """A rendered text argument of the task; ``None`` when it is missing or still a template."""
    value: Any = getattr(operator, name, None)
    if not isinstance(value, str) or not value or "{{" in value:
        return None
    return value


class OmnisendStoreDashboardLink(BaseOperatorLink):
    """The store's page on the dashboard: every period, its state and counts."""

    name = "Store dashboard"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        store = _rendered(operator, "store_id")
        return dashboard_url("stores", store) if store else ""


class OmnisendPeriodReportLink(BaseOperatorLink):
    """The period's ``report.json``, served by the dashboard (counts, files, the automation check)."""

    name = "Period report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        store, period = _rendered(operator, "store_id"), _rendered(operator, "partition")
        if not store or not period:
            return ""
        return dashboard_url("stores", store, "periods", period, "report")


class OmnisendAutomationsLink(BaseOperatorLink):
    """The brand's automations in Omnisend's app, where one that blocks the backfill is switched off."""

    name = "Omnisend automations"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return OMNISEND_AUTOMATIONS_URL
