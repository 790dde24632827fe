"""OmnisendSendBatchesOperator: send one shard of a planned partition, crash-safely.

Mapped one task per shard::

    plan = OmnisendPlanBatchesOperator(task_id="plan", store_id="acme", partition="{{ ds }}")
    OmnisendSendBatchesOperator.partial(
        task_id="send", store_id="acme", partition="{{ ds }}", pool="omnisend_acme"
    ).expand(shard=plan.output)

The task is a resumable state machine whose only state is the staging receipts (see
``_shard_sender``): ``execute`` and ``execute_complete`` both run the same ``_advance`` step - reconcile
the batches known to have ended, submit every body that may go, then wait for the rest (in the
triggerer when ``deferrable``, else by polling here) - until every body of the shard has a
``finished`` receipt.

Why not ``ResumableJobMixin``: the mixin tracks *one* external id per task and persists it after
``submit_job`` returns. A shard has many batches (one per body, plus follow-ups for retried items),
submitted one after another and each persisted the moment it exists, before anything waits. The idea
is the same - persist the id before waiting, reconnect on retry instead of resubmitting - applied per
body, with the task state store as the fast path (same key scope as the mixin's) and staging receipts
as the record every later task (and a rerun) can read.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf

from airflow_omnisend.checks import check_int
from airflow_omnisend.events.chunk_plan import ChunkPlan
from airflow_omnisend.exceptions import (
    OmnisendAuthError,
    OmnisendConfigError,
    OmnisendInputError,
    OmnisendNotFoundError,
)
from airflow_omnisend.flags import parse_flag
from airflow_omnisend.hooks._responses import COUNTER_FIELDS, merge_batch_items
from airflow_omnisend.operators._failures import auth_failure, failing_fast
from airflow_omnisend.operators._shard_sender import (
    BatchOutcome,
    SendSettings,
    SendStats,
    ShardSender,
    TaskState,
)
from airflow_omnisend.operators._supervisor_watch import SupervisorWatch
from airflow_omnisend.operators.base import OmnisendPartitionBaseOperator
from airflow_omnisend.operators.labels import label_shard
from airflow_omnisend.triggers._polling import BatchPoller, check_intervals, is_terminal
from airflow_omnisend.triggers._shared_listing import SharedRounds

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context

    from airflow_omnisend.events.chunk_plan import ShardPlan
    from airflow_omnisend.hooks.omnisend import OmnisendHook
    from airflow_omnisend.lineage import Lineage
    from airflow_omnisend.staging import PartitionStaging

__all__ = ["OmnisendSendBatchesOperator"]


def _embedded_items(batch: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The items a ``GET /batches/{id}`` answer already carries, when it carries all processed ones
    (then reading ``/items`` again would only spend rate limit)."""
    if not isinstance(batch.get("responses"), list) and not isinstance(batch.get("errors"), list):
        return None
    items = merge_batch_items(batch)
    finished = batch.get("finishedCount")
    if not isinstance(finished, int) or len(items) < finished:
        return None
    return items


def _outcome(batch: Mapping[str, Any]) -> BatchOutcome:
    """An ended batch as the sender reconciles it: status, counters, and items when it carries them."""
    counters = {name: batch[name] for name in COUNTER_FIELDS if name in batch}
    return BatchOutcome(str(batch.get("status")), _embedded_items(batch), counters)


def _find_batches(
    hook: OmnisendHook, rounds: SharedRounds, ids: list[str], date_from: str | None
) -> tuple[dict[str, dict[str, Any]], int]:
    """``find_batches`` for a shared round; when another poller's batch is gone (404), this shard's
    own batches only."""
    try:
        return hook.find_batches(ids, date_from)
    except OmnisendNotFoundError:
        own = rounds.own(ids)
        if own == ids:
            raise
        return hook.find_batches(own, date_from)


class OmnisendSendBatchesOperator(OmnisendPartitionBaseOperator):
    """Submit the planned bodies of one shard, wait for their batches, reconcile per-item results.

    Every event of the shard ends accepted by Omnisend or dead-lettered (``dead_letters/send-<body>``)
    with Omnisend's reason: items that failed for a retryable reason (408/429/5xx, or left unprocessed
    by a stopped batch) are sent again in follow-up bodies, up to ``max_item_retry_rounds`` rounds.

    A 400 or 413 on a *whole* body (Omnisend refused the request, not an item) means the plan, the
    validation or the connection's limits are wrong: the body's events are dead-lettered with Omnisend's
    reason and field errors (so the report accounts for them), no ``finished`` receipt is written (a
    rerun after the fix sends the body again and replaces those dead letters), and the task fails
    without retrying.

    ``store_id``, ``partition``, ``staging``: see :class:`OmnisendPartitionBaseOperator`.

    :param shard: the shard index to send (``.expand(shard=plan.output)``).
    :param omnisend_conn_id: the ``omnisend`` connection. Templated.
    :param deferrable: wait for batches in the triggerer (``OmnisendBatchesTrigger``) instead of polling
        in the worker; default ``[operators] default_deferrable``.
    :param poll_interval: seconds before polling a running batch again; doubles up to...
    :param max_poll_interval: ...this many seconds.
    :param max_item_retry_rounds: follow-up rounds for items that failed for a retryable reason.
    :param max_lost_response_resubmits: times a body whose POST response was lost is sent again
        within one try (Omnisend de-duplicates its events), before the try fails.
    :param strict_reconciliation: read every ended batch's items (one more GET per body). Default
        ``None``: the connection extra ``strict_reconciliation`` (default false, "bulk"): a batch whose
        counters say every item finished without error is accepted without reading its items; items
        are read only for batches with errors, stopped ones, or counters missing or inconsistent.

    Waiting costs a small constant per poll round of the brand, not a GET per body nor per shard: the
    shards (and runs) of one brand share one listing per round (``triggers._shared_listing``), paged
    ``GET /batches?endpoint=events&dateFrom=<earliest submission>``; see ``docs/rate-limit.md``.

    Defaults that differ from ``BaseOperator``: ``retries=3`` (a retry is how a dead worker's shard
    resumes) and ``retry_policy=OmnisendRetryPolicy()``; both can be overridden, also via default_args.

    Returns (XCom) ``{"shard", "bodies", "bodies_skipped", "batches_submitted", "events_sent",
    "accepted", "dead_lettered", "retried_items", "requests"}``: ``bodies_skipped`` were finished
    before this try; ``batches_submitted``/``events_sent``/``requests`` count this try's API calls
    (triggerer polls included, the hook's internal retries not); ``accepted``/``dead_lettered``/
    ``retried_items`` are the shard's totals from its receipts.
    """

    template_fields: Sequence[str] = (*OmnisendPartitionBaseOperator.template_fields, "omnisend_conn_id")
    ui_color = "#e0f0ff"

    def __init__(
        self,
        *,
        shard: int,
        omnisend_conn_id: str = "omnisend_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        max_item_retry_rounds: int = 3,
        max_lost_response_resubmits: int = 3,
        strict_reconciliation: bool | None = None,
        retries: int | None = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(retries=retries, **kwargs)
        owner = type(self).__name__
        self.shard = shard
        self.omnisend_conn_id = omnisend_conn_id
        self.deferrable = bool(deferrable)
        self.poll_interval, self.max_poll_interval = check_intervals(poll_interval, max_poll_interval, owner)
        self.max_item_retry_rounds = check_int(
            f"{owner}: max_item_retry_rounds",
            max_item_retry_rounds,
            minimum=0,
            maximum=20,
            fix="the default is 3",
        )
        self.max_lost_response_resubmits = check_int(
            f"{owner}: max_lost_response_resubmits",
            max_lost_response_resubmits,
            minimum=0,
            maximum=20,
            fix="the default is 3",
        )
        self.strict_reconciliation = (
            None
            if strict_reconciliation is None
            else parse_flag(strict_reconciliation, "strict_reconciliation", owner)
        )

    # -- building blocks -----------------------------------------------------------------------------

    def _shard_index(self) -> int:
        shard = self.shard
        if isinstance(shard, str) and shard.strip().isdigit():
            shard = int(shard.strip())
        if isinstance(shard, bool) or not isinstance(shard, int) or shard < 0:
            raise OmnisendConfigError(
                f"{type(self).__name__}: shard must be a shard index >= 0 (map it over the plan task's "
                f"output), got {self.shard!r}"
            )
        return shard

    def _shard_plan(self, partition: PartitionStaging) -> ShardPlan:
        plan = ChunkPlan.from_dict(partition.read_json("plan"))
        index = self._shard_index()
        if index >= len(plan.shards) or plan.shards[index].index != index:
            raise OmnisendInputError(
                f"plan.json of {partition.store_id} {partition.day} has {len(plan.shards)} shards, no shard "
                f"{index}; was the partition planned again with fewer shards? Re-run plan and send together"
            )
        return plan.shards[index]

    def get_hook(self) -> OmnisendHook:
        from airflow_omnisend.hooks.omnisend import OmnisendHook  # the HTTP stack: only when run

        return OmnisendHook(self.omnisend_conn_id)

    # -- the step ------------------------------------------------------------------------------------

    def _advance(
        self,
        context: Context,
        *,
        ended: Mapping[str, BatchOutcome] | None,
        stats: SendStats,
        resume: bool,
    ) -> dict[str, int]:
        """One step of the state machine: reconcile, submit, then wait (defer or poll) or finish."""
        partition = self.partition_staging()
        shard = self._shard_plan(partition)
        label_shard(context, shard)  # the mapped task's name in the UI (map_index_template)
        hook = self.get_hook()
        strict = self.strict_reconciliation
        if strict is None:
            strict = hook.settings.strict_reconciliation
        settings = SendSettings(self.max_item_retry_rounds, self.max_lost_response_resubmits, strict)
        task_state = TaskState(context.get("task_state_store") if context else None)
        watch = SupervisorWatch()  # the supervisor of this task process, as it starts
        try:
            with partition.local_copy(partition.shard(shard.index)) as body_file:
                sender = ShardSender(
                    hook=hook,
                    partition=partition,
                    shard=shard,
                    body_file=body_file,
                    settings=settings,
                    task_state=task_state,
                    stats=stats,
                    resume=resume,
                    watch=watch,
                )
                outstanding = sender.advance(ended)
                if outstanding and self.deferrable:
                    from airflow_omnisend.triggers.batches import OmnisendBatchesTrigger

                    self.log.info(
                        "Shard %d: deferring until %d batch(es) end (oldest %s)",
                        shard.index, len(outstanding), outstanding[0],
                    )  # fmt: skip
                    self.defer(
                        trigger=OmnisendBatchesTrigger(
                            batch_ids=outstanding,
                            date_from=sender.earliest_submission(),
                            omnisend_conn_id=self.omnisend_conn_id,
                            poll_interval=self.poll_interval,
                            max_poll_interval=self.max_poll_interval,
                        ),
                        method_name="execute_complete",
                        kwargs={"stats": stats.to_dict()},
                    )
                if outstanding:
                    self._poll_until_done(hook, sender, outstanding)
                manifest = sender.manifest()
        finally:
            hook.close()
        self.log.info(
            "Shard %d of %s %s done: %d bodies, %d finished before this try (not sent again); this try "
            "sent %d events in %d batches, %d requests; all tries: %d accepted, %d dead-lettered, "
            "%d items retried",
            manifest["shard"], partition.store_id, partition.day, manifest["bodies"],
            manifest["bodies_skipped"], manifest["events_sent"], manifest["batches_submitted"],
            manifest["requests"], manifest["accepted"], manifest["dead_lettered"], manifest["retried_items"],
        )  # fmt: skip
        return manifest

    def _poll_until_done(self, hook: OmnisendHook, sender: ShardSender, outstanding: list[str]) -> None:
        """Sync waiting in rounds over the brand's shared listing (``triggers._shared_listing``): a
        round another shard's listing answers costs nothing, else this one lists (paged ``GET
        /batches``) every batch any poller of the brand waits for; reconcile the ended ones (which may
        submit follow-ups or unblock split orders), wait, repeat."""
        poller = BatchPoller(
            outstanding, poll_interval=self.poll_interval, max_poll_interval=self.max_poll_interval
        )
        rounds = SharedRounds(poller, hook.settings, hook._secret)
        time.sleep(rounds.first_wait(sender.earliest_submission()))
        while poller.pending:
            date_from = sender.earliest_submission()
            plan = rounds.plan(date_from)
            if plan.fetch:
                try:
                    listed, requests = _find_batches(hook, rounds, plan.fetch, date_from)
                except BaseException:
                    rounds.release()
                    raise
                sender.stats.requests += requests
                found, wait = rounds.fetched(listed, requests)
                del listed
            else:
                found, wait = rounds.shared()
            ended = {b: _outcome(found[b]) for b in found if b in poller.summaries and is_terminal(found[b])}
            del found
            if ended:
                poller.add(sender.advance(ended))
            if poller.pending and wait > 0:
                time.sleep(wait)

    # -- Airflow entry points ------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, int]:
        try:
            return self._advance(context, ended=None, stats=SendStats(), resume=True)
        except OmnisendAuthError as err:  # a revoked key: fail now, whatever retries the task has
            raise auth_failure(err) from None

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, stats: dict[str, Any] | None = None
    ) -> dict[str, int]:
        """Resume after the trigger: raise its error as the typed exception, else carry on."""
        if not isinstance(event, dict) or event.get("status") not in ("done", "error"):
            raise OmnisendInputError(f"{type(self).__name__}: unexpected trigger event {event!r}")
        counters = SendStats.from_dict(stats)
        counters.requests += int(event.get("polls") or 0)
        if event["status"] == "error":
            from airflow_omnisend.triggers.batches import exception_from_event

            raise failing_fast(exception_from_event(event))
        batches = event.get("batches") or {}
        ended = {
            batch_id: _outcome(summary)
            for batch_id, summary in batches.items()
            if isinstance(summary, dict) and is_terminal(summary)
        }
        try:
            return self._advance(context, ended=ended, stats=counters, resume=False)
        except OmnisendAuthError as err:
            raise auth_failure(err) from None

    # -- OpenLineage (extra ``[openlineage]``; see airflow_omnisend/lineage.py) -----------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """The shard's staged bodies -> the brand's Omnisend events, with the events accepted."""
        from airflow_omnisend.lineage import send_lineage

        return send_lineage(self, complete=True)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Lineage | None:
        """The same datasets without counts."""
        from airflow_omnisend.lineage import send_lineage

        return send_lineage(self, complete=False)
