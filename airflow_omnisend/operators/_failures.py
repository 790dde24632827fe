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
    OmnisendAuthError,
    OmnisendAutomationRiskError,
    OmnisendError,
    OmnisendInputError,
    OmnisendRejectRatioError,
    OmnisendUnaccountedEventsError,
)

__all__ = [
    "AuthFailure",
    "AutomationRiskFailure",
    "InputFailure",
    "RejectRatioFailure",
    "UnaccountedEventsFailure",
    "auth_failure",
    "failing_fast",
    "input_failure",
]


class AutomationRiskFailure(OmnisendAutomationRiskError, AirflowFailException):
    """The automation safety check blocked the partition (or could not be made)."""


class RejectRatioFailure(OmnisendRejectRatioError, AirflowFailException):
    """Validation rejected more of the partition than ``max_reject_ratio`` allows."""


class UnaccountedEventsFailure(OmnisendUnaccountedEventsError, AirflowFailException):
    """The report found extracted events that were neither accepted, rejected nor dead-lettered."""


class InputFailure(OmnisendInputError, AirflowFailException):
    """An input file no retry can fix: missing, a folder, not NDJSON/CSV, a line over the cap, a URL
    scheme no filesystem serves."""


def input_failure(what: str, exc: BaseException) -> InputFailure:
    """``exc`` (raised reading ``what``) as an :class:`InputFailure` whose message says the fix."""
    if isinstance(exc, InputFailure):
        return exc
    if isinstance(exc, FileNotFoundError):
        text = f"{what} does not exist: check the path (and that the worker can see it)"
    elif isinstance(exc, IsADirectoryError):
        text = f"{what} is a folder: give the path of the file itself"
    elif isinstance(exc, PermissionError):
        text = f"{what} cannot be read by the worker (permission denied): fix its permissions"
    elif isinstance(exc, OmnisendInputError):
        text = str(exc)
    else:
        text = f"{what}: {type(exc).__name__}: {exc}"
    return InputFailure(f"{text} (not retried: the same input fails again)")


class AuthFailure(OmnisendAuthError, AirflowFailException):
    """Omnisend refused the connection's key (401) or its permissions (403): a revoked key stays revoked,
    so the task fails at once instead of spending its retries (and the brand's rate limit) on it."""


def auth_failure(err: OmnisendAuthError) -> AuthFailure:
    """``err`` (whose text names the connection and the fix) as an :class:`AuthFailure`."""
    if isinstance(err, AuthFailure):
        return err
    return AuthFailure(
        str(err), status=err.status, problem=err.problem, retry_after=err.retry_after, request=err.request
    )


def failing_fast(error: OmnisendError) -> OmnisendError:
    """The error to raise for ``error``: a refused key as :class:`AuthFailure` (it ends the task whatever
    its retries), anything else as it is."""
    return auth_failure(error) if isinstance(error, OmnisendAuthError) else error
