"""OmnisendPartitionBaseOperator: what every task of one partition shares.

A partition is (store, store-local day); its files sit in one staging folder
(:class:`~airflow_omnisend.staging.PartitionStaging`). Each task names it by ``store_id``, ``partition``
(the day) and ``staging`` (the root), all templated. A task that reads what its upstream task wrote
may also be given that task's returned manifest (its XCom, ``task.output``): the files are then read
where the manifest says they were written. Every task retries only what waiting can fix
(:class:`~airflow_omnisend.operators.retry.OmnisendRetryPolicy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from airflow.sdk import BaseOperator

from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.operators.retry import OmnisendRetryPolicy
from airflow_omnisend.staging import StagingManifest, StagingRoot

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context, ObjectStoragePath
    from airflow.sdk.definitions.retry_policy import RetryPolicy

    from airflow_omnisend.staging import PartitionStaging

__all__ = ["DEFAULT_RETRY_POLICY", "OmnisendPartitionBaseOperator", "push_keys"]

#: the retry policy every provider task gets unless it is given another (or ``None``)
DEFAULT_RETRY_POLICY: Final = OmnisendRetryPolicy()


def push_keys(context: Context, result: Mapping[str, Any]) -> None:
    """Push every key of ``result`` as its own XCom, so later tasks take one value each
    (``task.output["partition"]`` names an XCom key, not a key of the returned dict)."""
    ti = context["ti"]
    for key, value in result.items():
        ti.xcom_push(key=key, value=value)


class OmnisendPartitionBaseOperator(BaseOperator):
    """The arguments and the staging of a task of one partition.

    :param store_id: the store (staging folder name). Templated.
    :param partition: the partition's store-local day, ``YYYY-MM-DD``. Templated.
    :param staging: staging root (folder or fsspec URL); default ``$AIRFLOW_OMNISEND_STAGING`` or
        ``$AIRFLOW_HOME/omnisend-staging``. Templated.
    :param retry_policy: default :class:`~airflow_omnisend.operators.retry.OmnisendRetryPolicy`.
    """

    template_fields: Sequence[str] = ("store_id", "partition", "staging")

    def __init__(
        self,
        *,
        store_id: str,
        partition: str,
        staging: str | None = None,
        retry_policy: RetryPolicy | None = DEFAULT_RETRY_POLICY,
        **kwargs: Any,
    ) -> None:
        super().__init__(retry_policy=retry_policy, **kwargs)
        self.store_id = store_id
        self.partition = partition
        self.staging = staging

    def partition_staging(self, upstream: Mapping[str, Any] | None = None) -> PartitionStaging:
        """The partition's staging folder: where ``upstream`` (the manifest an upstream task returned)
        says it wrote, else ``store_id``/``partition`` under the staging root.

        An upstream manifest of another store or day is refused: the task is wired to the wrong task.
        """
        named = StagingRoot.from_env(self.staging).partition(self.store_id, self.partition)
        if upstream is None:
            return named
        written = self._manifest(upstream).partition
        if (written.store_id, written.day) != (named.store_id, named.day):
            raise OmnisendInputError(
                f"{type(self).__name__}: the upstream task's manifest is of {written.store_id} "
                f"{written.day}, but this task is for {named.store_id} {named.day}; pass the output of "
                "the upstream task of the same partition"
            )
        return written

    def upstream_file(
        self, partition: PartitionStaging, upstream: Mapping[str, Any] | None, name: str
    ) -> ObjectStoragePath:
        """The file ``name`` (``"valid"``, ``"events"``, ...): as ``upstream``'s manifest names it,
        else the partition's file of that logical name."""
        if upstream is None:
            return partition.file(name)
        return self._manifest(upstream).path(name)

    def _manifest(self, upstream: object) -> StagingManifest:
        if not isinstance(upstream, Mapping):
            raise OmnisendConfigError(
                f"{type(self).__name__}: an upstream manifest must be the upstream task's output "
                f"(e.g. validate.output), got {type(upstream).__name__} {upstream!r:.80}"
            )
        return StagingManifest.from_dict(upstream)
