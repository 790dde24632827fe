"""OmnisendRetryPolicy: retry what waiting can fix, fail at once on what it cannot.

Airflow 3.3's task runner calls ``task.retry_policy.evaluate(exception, ...)`` in the worker when a
task raises (``_handle_current_task_failed``): ``FAIL`` ends the task without spending its retries,
``RETRY`` keeps the standard retry-count check but can name the delay, ``DEFAULT`` falls through to
``retries`` / ``retry_delay``. A policy can end retries early, never add any beyond ``retries``.

DAG serialization keeps only a ``has_retry_policy`` flag (``_HAS_FLAG_FIELDS`` in
``serialized_objects.py``): the worker evaluates the object built from the DAG file, so a custom policy
needs no ``serialize()`` in 3.3. It has one anyway (plain JSON), for tools that call it.

Decisions, by the provider's exception types (found on the exception or anywhere in its
``__cause__`` / ``__context__`` chain, so a wrapping exception does not hide them):

* auth, validation, payload-too-large, configuration, automation risk, too many rejected events,
  unaccounted events: FAIL.
  Another attempt sends the same key / the same bytes / the same configuration and gets the same
  answer; a retry would only delay the alert and spend rate limit.
* rate limit (429 after the hook's own budget), also when it held the automation check: RETRY after
  the time Omnisend named, capped.
* 5xx, transport failures (incl. lost responses), stopped batches and an automation check Omnisend
  did not answer otherwise: RETRY with the task's delay.
* anything else: DEFAULT.

Input files no retry can fix (missing, a folder, not NDJSON, a line over the cap, an unknown URL
scheme) end the task through ``operators._failures.InputFailure`` (an ``AirflowFailException``), so
they fail at once even under a user's own policy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeGuard

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

from airflow_omnisend.exceptions import (
    OmnisendAuthError,
    OmnisendAutomationCheckUnavailableError,
    OmnisendAutomationRiskError,
    OmnisendBatchStoppedError,
    OmnisendConfigError,
    OmnisendError,
    OmnisendPayloadTooLargeError,
    OmnisendRateLimitError,
    OmnisendRejectRatioError,
    OmnisendServerError,
    OmnisendTransportError,
    OmnisendUnaccountedEventsError,
    OmnisendValidationError,
)

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

__all__ = ["OmnisendRetryPolicy"]

#: errors another attempt cannot fix
NOT_RETRYABLE: tuple[type[OmnisendError], ...] = (
    OmnisendAuthError,
    OmnisendValidationError,
    OmnisendPayloadTooLargeError,
    OmnisendConfigError,
    OmnisendAutomationRiskError,
    OmnisendRejectRatioError,
    OmnisendUnaccountedEventsError,
)
#: errors that usually pass with time
RETRYABLE: tuple[type[OmnisendError], ...] = (
    OmnisendAutomationCheckUnavailableError,
    OmnisendServerError,
    OmnisendTransportError,
    OmnisendBatchStoppedError,
)
_MAX_REASON = 480


def _omnisend_error(exception: BaseException) -> OmnisendError | None:
    """The first provider error on the exception's cause/context chain (the exception itself first)."""
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen and len(seen) < 20:
        if isinstance(current, OmnisendError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _rate_limited(
    error: OmnisendError,
) -> TypeGuard[OmnisendRateLimitError | OmnisendAutomationCheckUnavailableError]:
    """A 429, or the automation check held by a 429 that named its wait."""
    if isinstance(error, OmnisendRateLimitError):
        return True
    return isinstance(error, OmnisendAutomationCheckUnavailableError) and error.retry_after is not None


def _reason(prefix: str, error: BaseException) -> str:
    text = f"{prefix}: {type(error).__name__}: {error}"
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


class OmnisendRetryPolicy(RetryPolicy):
    """The default ``retry_policy`` of the provider's operators (pass ``retry_policy=`` to override).

    :param max_rate_limit_delay: longest delay taken from a 429's ``retryAfter`` (Omnisend names up to
        a minute; a larger value is more likely a misconfigured proxy than a real wait).
    :param min_rate_limit_delay: shortest such delay (a retry sooner than this only meets the 429 again).
    :param retry_stopped_batches: ``False`` makes a stopped batch fail at once (the batch sensor: a
        stopped batch stays stopped; the sender resubmits instead and never raises it).
    """

    def __init__(
        self,
        *,
        max_rate_limit_delay: timedelta = timedelta(minutes=10),
        min_rate_limit_delay: timedelta = timedelta(seconds=1),
        retry_stopped_batches: bool = True,
    ) -> None:
        if not isinstance(max_rate_limit_delay, timedelta) or not isinstance(min_rate_limit_delay, timedelta):
            raise OmnisendConfigError(
                "OmnisendRetryPolicy: max_rate_limit_delay and min_rate_limit_delay must be timedeltas, "
                f"got {max_rate_limit_delay!r} and {min_rate_limit_delay!r}"
            )
        if min_rate_limit_delay < timedelta(0) or max_rate_limit_delay < min_rate_limit_delay:
            raise OmnisendConfigError(
                "OmnisendRetryPolicy: need 0 <= min_rate_limit_delay <= max_rate_limit_delay, got "
                f"{min_rate_limit_delay} and {max_rate_limit_delay}"
            )
        self.max_rate_limit_delay = max_rate_limit_delay
        self.min_rate_limit_delay = min_rate_limit_delay
        self.retry_stopped_batches = bool(retry_stopped_batches)

    def __repr__(self) -> str:
        return (
            f"OmnisendRetryPolicy(max_rate_limit_delay={self.max_rate_limit_delay!r}, "
            f"min_rate_limit_delay={self.min_rate_limit_delay!r}, "
            f"retry_stopped_batches={self.retry_stopped_batches!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OmnisendRetryPolicy) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.serialize().items())))

    def rate_limit_delay(self, retry_after: float | None) -> timedelta | None:
        """The retry delay for a 429 that named ``retry_after`` seconds (``None``: the task's own)."""
        if retry_after is None:
            return None
        delay = timedelta(seconds=max(0.0, float(retry_after)))
        return min(max(delay, self.min_rate_limit_delay), self.max_rate_limit_delay)

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        error = _omnisend_error(exception)
        if error is None:
            return RetryDecision.default()
        if isinstance(error, NOT_RETRYABLE):
            return RetryDecision.fail(reason=_reason("not retryable (the same request fails again)", error))
        if _rate_limited(error):
            delay = self.rate_limit_delay(error.retry_after)
            said = "no wait named" if delay is None else f"waiting {delay.total_seconds():g}s"
            return RetryDecision.retry(delay=delay, reason=_reason(f"Omnisend rate limit ({said})", error))
        if isinstance(error, OmnisendBatchStoppedError) and not self.retry_stopped_batches:
            return RetryDecision.fail(reason=_reason("the batch was stopped", error))
        if isinstance(error, RETRYABLE):
            return RetryDecision.retry(reason=_reason("transient Omnisend failure", error))
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        return {
            "__type": "OmnisendRetryPolicy",
            "max_rate_limit_delay": self.max_rate_limit_delay.total_seconds(),
            "min_rate_limit_delay": self.min_rate_limit_delay.total_seconds(),
            "retry_stopped_batches": self.retry_stopped_batches,
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> OmnisendRetryPolicy:
        return cls(
            max_rate_limit_delay=timedelta(seconds=data.get("max_rate_limit_delay", 600)),
            min_rate_limit_delay=timedelta(seconds=data.get("min_rate_limit_delay", 1)),
            retry_stopped_batches=bool(data.get("retry_stopped_batches", True)),
        )
