"""OmnisendPlanBatchesOperator: a partition's valid events -> the exact request bodies, in shards.

Reads ``valid.ndjson`` of the partition, packs it with ``plan_batches`` under the connection's batch
limits (read from the connection, no HTTP call), writes ``bodies/shard-NNNNN.ndjson``, ``plan.json`` and
``dead_letters/plan.ndjson`` (events too large for any body), and returns the shard indices the send
task maps over. Bodies are content-addressed (sha256 of their bytes), so planning the same valid
events again yields the same bodies, and the sender skips those with a finished receipt.
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from airflow.sdk import conf

from airflow_omnisend.checks import check_int
from airflow_omnisend.events.chunk_plan import (
    AIRFLOW_MAX_MAP_LENGTH,
    DEFAULT_MAX_SHARDS,
    DEFAULT_MIN_BODIES_PER_SHARD,
    DEFAULT_RATE_PER_MINUTE,
    MAX_MIN_BODIES_PER_SHARD,
    MAX_RATE_PER_MINUTE,
    estimate_requests,
)
from airflow_omnisend.events.planning import plan_batches
from airflow_omnisend.exceptions import OmnisendAutomationRiskError, OmnisendConfigError, OmnisendInputError
from airflow_omnisend.faultpoints import faultpoint
from airflow_omnisend.flags import parse_flag
from airflow_omnisend.operators.base import OmnisendPartitionBaseOperator
from airflow_omnisend.operators.safety import CLEARED_OUTCOMES

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context

    from airflow_omnisend.staging import PartitionStaging

__all__ = ["OmnisendPlanBatchesOperator"]

_SHARD_FILE_PREFIX = "shard-"


def max_map_length() -> int:
    """Airflow's ``[core] max_map_length`` (the upstream of a mapped task fails above it)."""
    return conf.getint("core", "max_map_length", fallback=AIRFLOW_MAX_MAP_LENGTH)


class _CommitOnClose:
    """A shard file for ``plan_batches``: written under a temporary name and moved into place by
    ``close()`` - unless ``close()`` runs while an exception propagates (planning failed), then the
    temporary file is dropped, so a failed plan never leaves a half-written shard."""

    def __init__(self, partition: PartitionStaging, index: int) -> None:
        self._stack = contextlib.ExitStack()
        self._out = self._stack.enter_context(partition.open_write(partition.shard(index)))

    def write(self, data: bytes) -> int:
        written = self._out.write(data)
        faultpoint("plan.mid_write")
        return written

    def close(self) -> None:
        self._stack.__exit__(*sys.exc_info())


class OmnisendPlanBatchesOperator(OmnisendPartitionBaseOperator):
    """Plan the request bodies of one partition and return the shard indices to send.

    ``store_id``, ``partition``, ``staging``: see :class:`OmnisendPartitionBaseOperator`.

    :param omnisend_conn_id: the ``omnisend`` connection whose batch limits apply. Templated.
    :param max_shards: most shards (mapped send tasks); must be below ``[core] max_map_length``.
    :param min_bodies_per_shard: fewer bodies than this never get a shard of their own.
    :param rate_limit_per_minute: Omnisend's limit for the estimate in the log (400 by default).
    :param dry_run: plan and log (bodies, packing ratio, requests, minutes), write only
        ``plan_preview.json`` (what a real run would send, for the report) and return ``[]``, so the
        mapped send is skipped. Templated (``"{{ params.dry_run }}"`` works); held in the attribute
        ``dry_run_mode`` because ``BaseOperator`` already has a ``dry_run()`` method.
    :param validated: the validate task's manifest (``validate.output``): its ``valid`` file is planned,
        and the plan is written into its folder. Templated.

    Returns (XCom) the list of shard indices, ``[]`` when there is nothing to send.
    """

    template_fields: Sequence[str] = (
        *OmnisendPartitionBaseOperator.template_fields,
        "omnisend_conn_id",
        "dry_run_mode",
        "validated",
    )
    ui_color = "#e0f0ff"

    def __init__(
        self,
        *,
        omnisend_conn_id: str = "omnisend_default",
        max_shards: int = DEFAULT_MAX_SHARDS,
        min_bodies_per_shard: int = DEFAULT_MIN_BODIES_PER_SHARD,
        rate_limit_per_minute: float = DEFAULT_RATE_PER_MINUTE,
        dry_run: bool | str = False,
        validated: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.omnisend_conn_id = omnisend_conn_id
        self.max_shards = max_shards
        self.min_bodies_per_shard = min_bodies_per_shard
        self.rate_limit_per_minute = rate_limit_per_minute
        # not ``self.dry_run``: BaseOperator has a dry_run() method
        self.dry_run_mode = dry_run
        self.validated = validated
        self._check_max_shards()
        check_int(
            f"{type(self).__name__}: min_bodies_per_shard",
            min_bodies_per_shard,
            minimum=1,
            maximum=MAX_MIN_BODIES_PER_SHARD,
            fix=f"the default is {DEFAULT_MIN_BODIES_PER_SHARD}",
        )
        if isinstance(rate_limit_per_minute, bool) or not (
            isinstance(rate_limit_per_minute, int | float)
            and 0 < rate_limit_per_minute <= MAX_RATE_PER_MINUTE
        ):
            raise OmnisendConfigError(
                f"{type(self).__name__}: rate_limit_per_minute must be > 0 and <= {MAX_RATE_PER_MINUTE} "
                f"(Omnisend: 400), got "
                f"{rate_limit_per_minute!r}"
            )

    def _check_max_shards(self) -> None:
        owner = type(self).__name__
        value = self.max_shards
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OmnisendConfigError(f"{owner}: max_shards must be an integer >= 1, got {value!r}")
        limit = max_map_length()
        if value >= limit:
            raise OmnisendConfigError(
                f"{owner}: max_shards={value} is not below Airflow's [core] max_map_length={limit}: the "
                f"plan task's list would fail to push and no shard would be sent. Use max_shards <= "
                f"{limit - 1} (default {DEFAULT_MAX_SHARDS}), or raise max_map_length"
            )

    def execute(self, context: Context) -> list[int]:
        self._check_max_shards()  # max_map_length may differ on the worker
        dry_run = parse_flag(self.dry_run_mode, "dry_run", type(self).__name__)
        partition = self.partition_staging(self.validated)
        from airflow_omnisend.hooks.omnisend import OmnisendHook  # the HTTP stack: only when run

        if not dry_run:
            require_cleared(partition)
        limits = OmnisendHook(self.omnisend_conn_id).batch_limits
        valid = self.upstream_file(partition, self.validated, "valid")
        if not valid.exists():
            raise OmnisendInputError(
                f"{valid} does not exist; the validate step writes it - run it for "
                f"{partition.store_id} {partition.day} first"
            )
        with partition.local_copy(valid) as valid_path, open(valid_path, "rb") as src:
            if dry_run:
                with open_null() as sink:
                    plan = plan_batches(
                        src,
                        limits,
                        open_shard=None,
                        dead_letters=sink,
                        max_shards=self.max_shards,
                        min_bodies_per_shard=self.min_bodies_per_shard,
                    )
            else:
                with partition.open_write(partition.dead_letters("plan")) as dead:
                    plan = plan_batches(
                        src,
                        limits,
                        open_shard=lambda i: cast("BinaryIO", _CommitOnClose(partition, i)),
                        dead_letters=dead,
                        max_shards=self.max_shards,
                        min_bodies_per_shard=self.min_bodies_per_shard,
                    )
        estimate = estimate_requests(plan, self.rate_limit_per_minute)
        self.log.info("%s %s: %s", partition.store_id, partition.day, plan.describe())
        self.log.info("Estimate: %s", estimate.describe())
        if plan.dead_lettered:
            self.log.warning(
                "%d event(s) are too large for any batch body and are dead-lettered in %s",
                plan.dead_lettered,
                partition.dead_letters("plan"),
            )
        if dry_run:
            # What a real run would send, for the report: not plan.json, which always describes bodies
            # that exist in staging (the send and report steps read it).
            partition.write_json(
                "plan_preview",
                {
                    "events": plan.events,
                    "bodies": plan.bodies,
                    "shards": len(plan.shards),
                    "dead_lettered": plan.dead_lettered,
                    "packing_ratio": plan.packing_ratio,
                    "limits": plan.limits.to_dict(),
                    "estimate": estimate.to_dict(),
                },
            )
            self.log.info("Dry run: no bodies written, nothing will be sent")
            return []
        partition.write_json("plan", plan.to_dict())
        self._remove_stale_shards(partition, len(plan.shards))
        return [shard.index for shard in plan.shards if shard.bodies]

    @staticmethod
    def _remove_stale_shards(partition: PartitionStaging, shards: int) -> None:
        """Shard files of an earlier plan with more shards (a reader goes by plan.json anyway)."""
        folder = partition.bodies_dir
        if not folder.exists():
            return
        for path in folder.iterdir():
            name = path.name
            if not (name.startswith(_SHARD_FILE_PREFIX) and name.endswith(".ndjson")):
                continue
            number = name[len(_SHARD_FILE_PREFIX) : -len(".ndjson")]
            if number.isdigit() and int(number) >= shards:
                path.unlink()


def require_cleared(partition: PartitionStaging) -> None:
    """Refuse to plan bodies for a partition whose automation check blocked or awaits a person's answer.

    The DAG's wiring already keeps such a run from reaching this step; this keeps the invariant when the
    step is run on its own (a cleared task, a hand-made DAG). A partition without ``automation_check.json``
    has no verdict to honour (the check is a separate step; the report notes its absence).
    """
    check = partition.file("automation_check")
    if not check.exists():
        return
    record = partition.read_json("automation_check")
    outcome = record.get("outcome") if isinstance(record, dict) else None
    if outcome in CLEARED_OUTCOMES:
        return
    raise OmnisendAutomationRiskError(
        f"{partition.store_id} {partition.day}: the automation check's outcome is {outcome!r} in {check}, "
        "so nothing is planned or sent. Answer the approval, acknowledge the automations "
        "(acknowledge_automations in the run's conf) or clear the automation check after fixing them"
    )


class _NullSink(io.RawIOBase):
    """A binary sink that keeps nothing (the dead letters of a dry run)."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def open_null() -> BinaryIO:
    return cast("BinaryIO", _NullSink())
