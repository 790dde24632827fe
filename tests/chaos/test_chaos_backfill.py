"""Chaos-proven backfills: two stores, a real scheduler, everything going wrong at once, then the
documented recovery - and the emulator's record says every valid event arrived, none was lost.

One chaos run per executor profile (:func:`airflow_omnisend.testing.chaos.run_chaos`): LocalExecutor on
SQLite, and CeleryExecutor with Redis and PostgreSQL (skipped, naming the missing server, where they are
not running). Each test reads the run's :class:`ChaosReport`; the figures of a run are in RELIABILITY.md
(``benchmarks/chaos_figures.py`` prints them).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest

from airflow_omnisend.faultpoints import POINTS
from airflow_omnisend.testing.chaos import STORE_A, STORE_B, ChaosReport, ChaosSettings, run_chaos
from airflow_omnisend.testing.local_airflow import ExecutorProfile
from airflow_omnisend.testing.local_servers import (
    ServerUnavailableError,
    free_redis_database,
    fresh_postgres_database,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.integration]

SETTINGS = ChaosSettings()


@pytest.fixture(scope="module", params=["local", "celery"])
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosReport]:
    root = tmp_path_factory.mktemp(f"chaos-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "local":
            profile = ExecutorProfile.local_sqlite()
        else:
            try:
                metadata_db = stack.enter_context(fresh_postgres_database())
                broker = stack.enter_context(free_redis_database())
            except ServerUnavailableError as exc:
                pytest.skip(f"the Celery chaos run needs the local PostgreSQL and Redis servers: {exc}")
            profile = ExecutorProfile.celery(metadata_db, broker, workers=2, worker_concurrency=2)
        done = run_chaos(root, profile, SETTINGS, profile_name=request.param)
        print(done.describe())
        yield done


def test_the_chaos_happened(report: ChaosReport) -> None:
    """Not a quiet run: task kills at every kill point, both components and the emulator restarted, an
    outage longer than the retry budget."""
    assert set(report.kills) == set(POINTS), report.kills
    assert sum(report.kills.values()) <= SETTINGS.max_task_kills
    assert all(n <= SETTINGS.kills_per_point for n in report.kills.values())
    assert report.restarts == {"scheduler": 1, "triggerer": 1, "emulator": 1}
    assert report.outage_seconds >= SETTINGS.outage_seconds > SETTINGS.retry_budget


def test_store_a_is_failed_by_nothing(report: ChaosReport) -> None:
    """Store A's key stays valid: kills, restarts, lost responses and the outage (also when it meets the
    automation check: it holds the day and is retried) cost it retries, never a run."""
    assert report.failures[STORE_A] == [], [str(f) for f in report.failures[STORE_A]]
    assert report.first_states[STORE_A] == dict.fromkeys(SETTINGS.day_labels, "success")


def test_store_b_fails_fast_on_its_revoked_key_without_retries_naming_its_connection(
    report: ChaosReport,
) -> None:
    """The try that meets the revoked key is the task's last; earlier tries of the same task may have
    ended in a kill or the outage (those are retried)."""
    states = report.first_states[STORE_B]
    assert "success" in states.values(), "store B's key was revoked before any of its runs ended"
    revoked = [f for f in report.failures[STORE_B] if f.cause == "credentials"]
    assert revoked, f"no task of store B failed on its revoked key: {report.failures[STORE_B]}"
    for failed in revoked:
        assert not failed.retried_on_credentials, f"{failed}: retried on a revoked key"
        assert failed.names_connection, f"{failed}: its log does not name the connection omnisend_{STORE_B}"
    assert {f.cause for f in report.failures[STORE_B]} <= {"credentials", "outage"}, report.failures


def test_the_recovery_leaves_every_run_green(report: ChaosReport) -> None:
    for store_id in (STORE_A, STORE_B):
        assert report.final_states[store_id] == dict.fromkeys(SETTINGS.day_labels, "success"), store_id


def test_every_valid_event_is_accepted_once_and_nothing_is_lost(report: ChaosReport) -> None:
    for store_id, led in report.ledgers.items():
        assert led.expected > 0, f"{store_id}: no valid event: the sample shop should have orders"
        assert (led.accepted, led.lost, led.unexpected) == (led.expected, 0, 0), (store_id, led)
        assert led.unaccounted == 0, f"{store_id}: extracted events neither valid nor rejected"
        assert led.rejected_without_reason == 0, f"{store_id}: rejected events without a reason"
        assert led.extracted == led.expected + led.rejected, (store_id, led)
    assert sum(led.rejected for led in report.ledgers.values()) > 0, "no event was rejected: a vacuous check"


def test_resubmissions_stay_within_the_one_window_no_client_closes(report: ChaosReport) -> None:
    """A finished body goes again only when its batchID never reached the task: a kill between the POST
    and storing it, or a response the emulator dropped."""
    window = report.kills.get("send.after_post", 0) + report.dropped_responses
    assert report.finished_bodies_resubmitted <= window, report.describe()
