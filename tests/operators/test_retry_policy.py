"""OmnisendRetryPolicy decisions, and that it is the (overridable) default of the provider's operators."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta

import pytest
from airflow.sdk import DAG
from airflow.sdk.definitions.retry_policy import RetryAction, RetryPolicy

from airflow_omnisend.exceptions import (
    OmnisendAPIError,
    OmnisendAuthError,
    OmnisendAutomationCheckUnavailableError,
    OmnisendAutomationRiskError,
    OmnisendBatchStoppedError,
    OmnisendConfigError,
    OmnisendInputError,
    OmnisendNotFoundError,
    OmnisendPayloadTooLargeError,
    OmnisendRateLimitError,
    OmnisendResponseLostError,
    OmnisendServerError,
    OmnisendTransportError,
    OmnisendUnaccountedEventsError,
    OmnisendValidationError,
)
from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
from airflow_omnisend.operators.retry import OmnisendRetryPolicy
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
from airflow_omnisend.sensors.batch import OmnisendBatchSensor

POLICY = OmnisendRetryPolicy()


def decide(exc: BaseException, policy: RetryPolicy = POLICY):  # type: ignore[no-untyped-def]
    return policy.evaluate(exc, try_number=1, max_tries=4, context=None)


@pytest.mark.parametrize(
    "exc",
    [
        OmnisendAuthError("no", status=401),
        OmnisendAuthError("no", status=403),
        OmnisendValidationError("bad", status=400, problem={"errors": [{"field": "items", "message": "x"}]}),
        OmnisendPayloadTooLargeError("big", status=413),
        OmnisendConfigError("wrong conn"),
        OmnisendAutomationRiskError("flow fires"),
        OmnisendUnaccountedEventsError("3 missing"),
    ],
)
def test_fails_at_once_on_what_a_retry_cannot_fix(exc: BaseException) -> None:
    decision = decide(exc)
    assert decision.action is RetryAction.FAIL
    assert type(exc).__name__ in (decision.reason or "")


def test_rate_limit_retries_after_the_named_time_capped() -> None:
    decision = decide(OmnisendRateLimitError("429", status=429, retry_after=42.0))
    assert decision.action is RetryAction.RETRY
    assert decision.retry_delay == timedelta(seconds=42)
    assert decide(OmnisendRateLimitError("429", status=429, retry_after=86_400)).retry_delay == timedelta(
        minutes=10
    )
    assert decide(OmnisendRateLimitError("429", status=429, retry_after=0.01)).retry_delay == timedelta(
        seconds=1
    )
    unnamed = decide(OmnisendRateLimitError("429", status=429))
    assert unnamed.action is RetryAction.RETRY
    assert unnamed.retry_delay is None
    custom = OmnisendRetryPolicy(max_rate_limit_delay=timedelta(seconds=30))
    assert decide(OmnisendRateLimitError("429", status=429, retry_after=99), custom).retry_delay == timedelta(
        seconds=30
    )


@pytest.mark.parametrize(
    "exc",
    [
        OmnisendServerError("503", status=503),
        OmnisendTransportError("refused"),
        OmnisendResponseLostError("lost"),
        OmnisendBatchStoppedError("stopped", batch_id="b1"),
        OmnisendAutomationCheckUnavailableError("BLOCKED 2024-03-07: the automation check could not be made"),
    ],
)
def test_transient_failures_retry_with_the_task_delay(exc: BaseException) -> None:
    decision = decide(exc)
    assert decision.action is RetryAction.RETRY
    assert decision.retry_delay is None


def test_a_check_held_by_a_429_retries_after_the_named_time() -> None:
    held = OmnisendAutomationCheckUnavailableError("BLOCKED 2024-03-07: ... (429)", retry_after=30.0)
    decision = decide(held)
    assert (decision.action, decision.retry_delay) == (RetryAction.RETRY, timedelta(seconds=30))
    assert "Omnisend rate limit (waiting 30s)" in (decision.reason or "")
    again = pickle.loads(pickle.dumps(held))
    assert (type(again), again.args, again.retry_after) == (type(held), held.args, 30.0)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("x"),
        OmnisendNotFoundError("404", status=404),
        OmnisendInputError("no file"),
        OmnisendAPIError("418", status=418),
    ],
)
def test_everything_else_is_the_default(exc: BaseException) -> None:
    assert decide(exc).action is RetryAction.DEFAULT


def test_the_cause_chain_is_searched() -> None:
    inner = OmnisendAuthError("401", status=401)
    outer = RuntimeError("wrapped")
    outer.__cause__ = inner
    assert decide(outer).action is RetryAction.FAIL
    context_only = RuntimeError("while handling")
    context_only.__context__ = OmnisendServerError("503", status=503)
    assert decide(context_only).action is RetryAction.RETRY


def test_the_sensor_policy_fails_on_a_stopped_batch() -> None:
    policy = OmnisendRetryPolicy(retry_stopped_batches=False)
    assert decide(OmnisendBatchStoppedError("s", batch_id="b"), policy).action is RetryAction.FAIL
    assert decide(OmnisendServerError("503", status=503), policy).action is RetryAction.RETRY


def test_serialize_round_trips() -> None:
    policy = OmnisendRetryPolicy(max_rate_limit_delay=timedelta(minutes=3), retry_stopped_batches=False)
    data = policy.serialize()
    assert data["__type"] == "OmnisendRetryPolicy"
    assert OmnisendRetryPolicy.deserialize(data) == policy
    with pytest.raises(OmnisendConfigError):
        OmnisendRetryPolicy(
            min_rate_limit_delay=timedelta(minutes=5), max_rate_limit_delay=timedelta(seconds=1)
        )


def _send(**kwargs: object) -> OmnisendSendBatchesOperator:
    return OmnisendSendBatchesOperator(
        task_id="send", store_id="s", partition="2024-01-01", shard=0, **kwargs
    )


def test_operators_default_to_the_policy_and_it_can_be_overridden() -> None:
    assert isinstance(_send().retry_policy, OmnisendRetryPolicy)
    assert _send().retries == 3
    assert isinstance(
        OmnisendPlanBatchesOperator(task_id="p", store_id="s", partition="2024-01-01").retry_policy,
        OmnisendRetryPolicy,
    )
    sensor = OmnisendBatchSensor(task_id="w", batch_id="b1")
    assert isinstance(sensor.retry_policy, OmnisendRetryPolicy)
    assert not sensor.retry_policy.retry_stopped_batches
    assert _send(retry_policy=None).retry_policy is None
    assert _send(retries=0).retries == 0
    other = OmnisendRetryPolicy(max_rate_limit_delay=timedelta(seconds=5))
    with DAG(
        "retry_defaults",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        default_args={"retry_policy": other, "retries": 7},
    ):
        from_defaults = _send()
    assert from_defaults.retry_policy is other
    assert from_defaults.retries == 7


def test_mapped_send_keeps_the_default_and_the_dag_serializes() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("mapped_policy", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        plan = OmnisendPlanBatchesOperator(task_id="plan", store_id="s", partition="{{ ds }}")
        OmnisendSendBatchesOperator.partial(task_id="send", store_id="s", partition="{{ ds }}").expand(
            shard=plan.output
        )
    mapped = dag.get_task("send")
    unmapped = mapped.unmap({"shard": 0})  # type: ignore[union-attr]
    assert isinstance(unmapped.retry_policy, OmnisendRetryPolicy)
    assert unmapped.retries == 3
    # DAG serialization keeps only a has_retry_policy flag; the worker evaluates the DAG file's object
    serialized = DagSerialization.to_dict(dag)
    text = str(serialized)
    assert "has_retry_policy" in text
    assert "OmnisendRetryPolicy" not in text
