"""The partition tasks' base: shared arguments and template fields, the retry policy default, and the
one way to the partition's staging (the arguments, or an upstream task's manifest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.operators.base import DEFAULT_RETRY_POLICY, OmnisendPartitionBaseOperator, push_keys
from airflow_omnisend.operators.extract import OmnisendExtractOrdersOperator
from airflow_omnisend.operators.plan import OmnisendPlanBatchesOperator
from airflow_omnisend.operators.report import OmnisendReportOperator
from airflow_omnisend.operators.retry import OmnisendRetryPolicy
from airflow_omnisend.operators.safety import OmnisendAutomationSafetyOperator
from airflow_omnisend.operators.select_events import OmnisendSelectEventsOperator
from airflow_omnisend.operators.send import OmnisendSendBatchesOperator
from airflow_omnisend.operators.validate import OmnisendValidateEventsOperator
from airflow_omnisend.staging import StagingRoot

if TYPE_CHECKING:
    from pathlib import Path

PARTITION_TASKS = (
    OmnisendExtractOrdersOperator,
    OmnisendSelectEventsOperator,
    OmnisendValidateEventsOperator,
    OmnisendAutomationSafetyOperator,
    OmnisendPlanBatchesOperator,
    OmnisendSendBatchesOperator,
    OmnisendReportOperator,
)


def task(tmp_path: Path, **kwargs: Any) -> OmnisendPartitionBaseOperator:
    kwargs.setdefault("staging", str(tmp_path / "args"))
    return OmnisendPartitionBaseOperator(task_id="t", store_id="shop", partition="2024-03-10", **kwargs)


@pytest.mark.parametrize("operator", PARTITION_TASKS, ids=lambda o: o.__name__)
def test_every_partition_task_shares_the_arguments(operator: type[OmnisendPartitionBaseOperator]) -> None:
    assert issubclass(operator, OmnisendPartitionBaseOperator)
    assert {"store_id", "partition", "staging"} <= set(operator.template_fields)


def test_the_default_retry_policy_and_an_override(tmp_path: Path) -> None:
    assert task(tmp_path).retry_policy is DEFAULT_RETRY_POLICY
    assert isinstance(DEFAULT_RETRY_POLICY, OmnisendRetryPolicy)
    assert task(tmp_path, retry_policy=None).retry_policy is None


def test_staging_from_the_arguments(tmp_path: Path) -> None:
    partition = task(tmp_path).partition_staging()
    assert partition == StagingRoot(str(tmp_path / "args")).partition("shop", "2024-03-10")
    assert task(tmp_path).upstream_file(partition, None, "valid") == partition.valid


def test_staging_from_an_upstream_manifest(tmp_path: Path) -> None:
    written = StagingRoot(str(tmp_path / "upstream")).partition("shop", "2024-03-10")
    manifest = written.manifest(files={"valid": "valid"}).to_dict()
    op = task(tmp_path)
    assert op.partition_staging(manifest) == written  # where the upstream task wrote
    assert op.upstream_file(written, manifest, "valid") == written.valid
    with pytest.raises(OmnisendInputError, match="names no file 'plan'"):
        op.upstream_file(written, manifest, "plan")


def test_an_upstream_manifest_of_another_partition_is_refused(tmp_path: Path) -> None:
    other = StagingRoot(str(tmp_path)).partition("shop", "2024-03-11").manifest().to_dict()
    with pytest.raises(OmnisendInputError, match="manifest is of shop 2024-03-11, but this task is for shop"):
        task(tmp_path).partition_staging(other)
    with pytest.raises(OmnisendConfigError, match="must be the upstream task's output"):
        task(tmp_path).partition_staging("valid.ndjson")  # type: ignore[arg-type]


def test_push_keys_pushes_each_key() -> None:
    pushed: dict[str, Any] = {}

    class TI:
        def xcom_push(self, key: str, value: Any) -> None:
            pushed[key] = value

    push_keys({"ti": TI()}, {"partition": "2024-03-10", "dry_run": False})  # type: ignore[typeddict-item]
    assert pushed == {"partition": "2024-03-10", "dry_run": False}
