"""Failures that end a task at once: a provider error that is also Airflow's ``AirflowFailException``.

Some outcomes are verdicts, not accidents: an automation could message customers, too many events are
invalid, events are unaccounted for. Running the task again gives the same verdict, so it must fail
without spending its retries - whatever ``retries`` and ``retry_policy`` the DAG sets (a user may
replace the provider's retry policy, or set ``retry_policy=None``).

Each class below is both the typed provider error (``except OmnisendAutomationRiskError`` still works,
and ``OmnisendRetryPolicy`` answers FAIL for it) and an ``AirflowFailException``, which the task
runner turns into FAILED before it consults ``retries`` or the retry policy.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException

from airflow_omnisend.exceptions import (
    OmnisendAutomationRiskError,
    OmnisendRejectRatioError,
    OmnisendUnaccountedEventsError,
)

__all__ = ["AutomationRiskFailure", "RejectRatioFailure", "UnaccountedEventsFailure"]


class AutomationRiskFailure(OmnisendAutomationRiskError, AirflowFailException):
    """The automation safety check blocked the partition (or could not be made)."""


class RejectRatioFailure(OmnisendRejectRatioError, AirflowFailException):
    """Validation rejected more of the partition than ``max_reject_ratio`` allows."""


class UnaccountedEventsFailure(OmnisendUnaccountedEventsError, AirflowFailException):
    """The report found extracted events that were neither accepted, rejected nor dead-lettered."""
