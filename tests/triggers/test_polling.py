"""BatchPoller: oldest-first polling with back-off (pure logic, no I/O)."""

from __future__ import annotations

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.triggers._polling import BatchPoller, batch_summary, check_intervals, is_terminal

RUNNING = {"status": "inProgress", "totalCount": 3, "finishedCount": 0, "errorsCount": 0}
FINISHED = {"status": "finished", "totalCount": 3, "finishedCount": 3, "errorsCount": 1, "responses": []}
STOPPED = {"status": "stopped", "totalCount": 3, "finishedCount": 1, "errorsCount": 1}


def test_polls_only_the_oldest_until_it_ends_then_the_next_at_once() -> None:
    poller = BatchPoller(["a", "b", "c"], poll_interval=1, max_poll_interval=5)
    assert poller.next_batch() == "a"
    assert poller.observe("a", RUNNING) == 1
    assert poller.next_batch() == "a"
    assert poller.observe("a", RUNNING) == 2
    assert poller.observe("a", RUNNING) == 4
    assert poller.observe("a", RUNNING) == 5  # capped
    assert poller.observe("a", RUNNING) == 5
    assert poller.observe("a", FINISHED) == 0  # ended: the next one right away
    assert poller.next_batch() == "b"
    assert poller.observe("b", RUNNING) == 1  # the back-off started again
    assert poller.observe("b", STOPPED) == 0
    assert poller.observe("c", FINISHED) == 0
    assert poller.next_batch() is None
    assert poller.polls == 9
    assert poller.summaries == {
        "a": batch_summary(FINISHED),
        "b": batch_summary(STOPPED),
        "c": batch_summary(FINISHED),
    }
    assert "responses" not in poller.summaries["a"]


def test_added_batches_queue_behind_and_known_ones_are_ignored() -> None:
    poller = BatchPoller(["a"], poll_interval=0.5, max_poll_interval=0.5)
    poller.add(["b", "a"])
    assert poller.pending == ["a", "b"]
    poller.observe("a", FINISHED)
    poller.add(["a", "c"])  # "a" ended already: not polled again
    assert poller.pending == ["b", "c"]


def test_terminal_statuses() -> None:
    assert is_terminal(FINISHED)
    assert is_terminal(STOPPED)
    assert not is_terminal(RUNNING)
    assert not is_terminal({"status": "pending"})
    assert not is_terminal({})


@pytest.mark.parametrize(
    ("poll", "most", "message"),
    [(0, 1, "poll_interval must be > 0"), (2, 1, "must be >= poll_interval"), ("5", 9, "number of seconds")],
)
def test_intervals_are_validated(poll: object, most: object, message: str) -> None:
    with pytest.raises(OmnisendConfigError, match=message):
        check_intervals(poll, most, "X")
    with pytest.raises(OmnisendConfigError):
        BatchPoller(["a"], poll_interval=poll, max_poll_interval=most)  # type: ignore[arg-type]


def test_a_bulk_round_records_ended_batches_and_backs_off_while_none_end() -> None:
    poller = BatchPoller(["a", "b", "c"], poll_interval=1, max_poll_interval=4)
    running = {"status": "inProgress"}
    assert poller.observe_round({"a": running, "b": running}, requests=1) == 1
    assert poller.observe_round({"a": running}, requests=1) == 2
    ended = {"status": "finished", "totalCount": 1, "finishedCount": 1, "errorsCount": 0}
    assert poller.observe_round({"a": ended, "b": {"status": "stopped"}, "c": running}, requests=2) == 1
    assert poller.pending == ["c"]
    assert poller.summaries["a"] == ended
    assert poller.summaries["b"]["status"] == "stopped"
    assert poller.polls == 4
