"""OmnisendBatchSensor: wait until an Omnisend batch has ended (for users wiring their own DAGs).

``finished`` succeeds; ``stopped`` (Omnisend gave up on the batch for too many item errors) fails with
:class:`~airflow_omnisend.exceptions.OmnisendBatchStoppedError` unless ``allow_stopped=True``. A
refused key (401/403) fails the task at once, whatever its retries, as the send task does. The
XCom value is the batch summary ``{status, totalCount, finishedCount, errorsCount}``; read the items
with ``OmnisendHook.get_batch_items`` when you need them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_omnisend.exceptions import (
    OmnisendAuthError,
    OmnisendBatchStoppedError,
    OmnisendConfigError,
    OmnisendInputError,
)
from airflow_omnisend.hooks.omnisend import OmnisendHook
from airflow_omnisend.operators._failures import auth_failure, failing_fast
from airflow_omnisend.operators.retry import OmnisendRetryPolicy
from airflow_omnisend.triggers._polling import batch_summary, is_terminal
from airflow_omnisend.triggers.batches import OmnisendBatchesTrigger, exception_from_event

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context
    from airflow.sdk.definitions.retry_policy import RetryPolicy

__all__ = ["OmnisendBatchSensor"]

#: a stopped batch stays stopped: retrying the sensor cannot change that
DEFAULT_RETRY_POLICY = OmnisendRetryPolicy(retry_stopped_batches=False)


class OmnisendBatchSensor(BaseSensorOperator):
    """Wait for ``batch_id`` to be ``finished`` (or ``stopped``, with ``allow_stopped``).

    :param batch_id: the Omnisend batchID. Templated.
    :param omnisend_conn_id: the ``omnisend`` connection. Templated.
    :param allow_stopped: succeed on a stopped batch too (the XCom summary says which it was).
    :param deferrable: wait in the triggerer (``OmnisendBatchesTrigger``); default
        ``[operators] default_deferrable``.
    :param poke_interval: seconds between polls (deferrable: the first wait, doubling up to
        ``max_poll_interval``).
    :param max_poll_interval: longest wait between two polls of the trigger (default: 10 x poke_interval,
        at least 60 s).
    """

    template_fields: Sequence[str] = ("batch_id", "omnisend_conn_id")
    ui_color = "#e0f0ff"

    def __init__(
        self,
        *,
        batch_id: str,
        omnisend_conn_id: str = "omnisend_default",
        allow_stopped: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: timedelta | float = 30.0,
        max_poll_interval: float | None = None,
        retry_policy: RetryPolicy | None = DEFAULT_RETRY_POLICY,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, retry_policy=retry_policy, **kwargs)
        self.batch_id = batch_id
        self.omnisend_conn_id = omnisend_conn_id
        self.allow_stopped = bool(allow_stopped)
        self.deferrable = bool(deferrable)
        if max_poll_interval is None:
            max_poll_interval = max(60.0, 10 * self.poke_interval)
        if isinstance(max_poll_interval, bool) or not isinstance(max_poll_interval, int | float):
            raise OmnisendConfigError(
                f"OmnisendBatchSensor: max_poll_interval must be seconds, got {max_poll_interval!r}"
            )
        self.max_poll_interval = float(max(max_poll_interval, self.poke_interval))

    def _check_batch_id(self) -> str:
        if not isinstance(self.batch_id, str) or not self.batch_id.strip():
            raise OmnisendConfigError(
                f"OmnisendBatchSensor: batch_id must be a batchID, got {self.batch_id!r}"
            )
        return self.batch_id.strip()

    def _result(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        summary = batch_summary(batch)
        if summary["status"] == "stopped" and not self.allow_stopped:
            raise OmnisendBatchStoppedError(
                f"Omnisend stopped batch {self.batch_id} for too many errors ({summary['errorsCount']} of "
                f"{summary['totalCount']} items failed, {summary['finishedCount']} processed); read its "
                "items for the reasons, or set allow_stopped=True",
                batch_id=self.batch_id,
            )
        return summary

    def poke(self, context: Context) -> bool | PokeReturnValue:
        batch_id = self._check_batch_id()
        hook = OmnisendHook(self.omnisend_conn_id)
        try:
            batch = hook.get_batch(batch_id)
        except OmnisendAuthError as err:  # a revoked key: fail now, whatever retries the task has
            raise auth_failure(err) from None
        finally:
            hook.close()
        if not is_terminal(batch):
            self.log.info("Batch %s is %s (%s of %s items)", batch_id, batch.get("status"),
                          batch.get("finishedCount"), batch.get("totalCount"))  # fmt: skip
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._result(batch))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        batch_id = self._check_batch_id()
        self.defer(
            trigger=OmnisendBatchesTrigger(
                batch_ids=[batch_id],
                omnisend_conn_id=self.omnisend_conn_id,
                poll_interval=max(self.poke_interval, 0.001),
                max_poll_interval=self.max_poll_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )
        return None  # not reached: defer() raises TaskDeferred

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not isinstance(event, dict) or event.get("status") not in ("done", "error"):
            raise OmnisendInputError(f"OmnisendBatchSensor: unexpected trigger event {event!r}")
        if event["status"] == "error":
            raise failing_fast(exception_from_event(event))
        summary = (event.get("batches") or {}).get(self.batch_id)
        if not isinstance(summary, dict):
            raise OmnisendInputError(
                f"OmnisendBatchSensor: the trigger event does not name batch {self.batch_id}"
            )
        return self._result(summary)
