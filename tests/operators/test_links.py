"""Extra links: what each gives for a rendered task, behind ``[api] base_url`` or relative to the UI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_omnisend.operators.links import (
    OMNISEND_AUTOMATIONS_URL,
    OmnisendAutomationsLink,
    OmnisendPeriodReportLink,
    OmnisendStoreDashboardLink,
)
from airflow_omnisend.operators.report import OmnisendReportOperator
from airflow_omnisend.operators.safety import OmnisendAutomationSafetyOperator

if TYPE_CHECKING:
    import pytest


def _report(store_id: str = "acme_store", partition: str = "2024-03-10") -> OmnisendReportOperator:
    return OmnisendReportOperator(task_id="report", store_id=store_id, partition=partition, staging="/tmp/x")


def test_the_report_links_to_its_period_and_its_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    report = _report()
    links = {link.name: link.get_link(report, ti_key=None) for link in report.operator_extra_links}
    assert links == {
        "Period report": "/omnisend/stores/acme_store/periods/2024-03-10/report",
        "Store dashboard": "/omnisend/stores/acme_store",
    }


def test_behind_a_base_url_the_links_carry_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.invalid/team-a/")
    link = OmnisendPeriodReportLink().get_link(_report(partition="2024-W10"), ti_key=None)
    assert link == "https://airflow.example.invalid/team-a/omnisend/stores/acme_store/periods/2024-W10/report"


def test_an_unrendered_or_odd_argument_gives_no_link_or_a_quoted_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    unrendered = _report(partition="{{ ti.xcom_pull(task_ids='partition')['day'] }}")
    assert OmnisendPeriodReportLink().get_link(unrendered, ti_key=None) == ""
    assert OmnisendStoreDashboardLink().get_link(unrendered, ti_key=None) == "/omnisend/stores/acme_store"
    odd = _report(store_id="a/b c")
    assert OmnisendStoreDashboardLink().get_link(odd, ti_key=None) == "/omnisend/stores/a%2Fb%20c"


def test_the_safety_check_links_to_the_automations_in_omnisend() -> None:
    safety = OmnisendAutomationSafetyOperator(
        task_id="automation_safety_check", store_id="acme_store", partition="2024-03-10", staging="/tmp/x"
    )
    names = {link.name: link for link in safety.operator_extra_links}
    assert set(names) == {"Omnisend automations", "Store dashboard"}
    assert isinstance(names["Omnisend automations"], OmnisendAutomationsLink)
    assert names["Omnisend automations"].get_link(safety, ti_key=None) == OMNISEND_AUTOMATIONS_URL
    assert OMNISEND_AUTOMATIONS_URL.startswith("https://app.omnisend.com/")
