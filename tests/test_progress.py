"""ProgressLog: at most one line per interval, with counts, rate and ETA (a hand-driven clock, no sleeps)."""

from __future__ import annotations

import logging

import pytest

from airflow_omnisend.progress import ProgressLog, format_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "airflow_omnisend.progress"]


def test_logs_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    progress = ProgressLog("extract demo 2024-03", unit="events", clock=clock)
    logged = []
    for second in range(35):  # a unit every 0.25 s for 35 s
        for quarter in range(4):
            clock.now = 1000.0 + second + quarter / 4
            logged.append(progress.update(second * 4 + quarter + 1))
    assert sum(logged) == 3  # at 10, 20 and 30 s, never before the first interval
    assert lines(caplog) == [
        "extract demo 2024-03: 41 events, 4.1 events/s",
        "extract demo 2024-03: 81 events, 4.0 events/s",
        "extract demo 2024-03: 121 events, 4.0 events/s",
    ]


def test_a_short_step_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    progress = ProgressLog("send", unit="bodies", total=3, clock=clock)
    for done in (1, 2, 3):
        clock.now += 2
        assert not progress.update(done)
    assert lines(caplog) == []


def test_total_gives_share_and_eta_from_the_observed_rate() -> None:
    clock = Clock()
    progress = ProgressLog("send demo 2024-03 shard 0", unit="bodies", total=100, clock=clock)
    clock.now += 20
    assert (
        progress.line(25) == "send demo 2024-03 shard 0: 25 of 100 bodies, 25%, 1.2 bodies/s, ETA 1 min 00 s"
    )
    assert progress.line(100).endswith("100 of 100 bodies, 100%, 5.0 bodies/s")  # done: no ETA


def test_the_eta_never_beats_the_pace() -> None:
    clock = Clock()
    # 400 requests/min at 2 requests a body: at most 200 bodies/min
    progress = ProgressLog("send", unit="bodies", total=1000, pace=400 / 60 / 2, clock=clock)
    assert progress.line(0).endswith("ETA 5 min 00 s at the rate limit")  # no rate yet
    clock.now += 10
    assert progress.line(500).endswith("50.0 bodies/s, ETA 2 min 30 s at the rate limit")  # faster: capped
    clock.now += 990
    assert progress.line(600).endswith("0.6 bodies/s, ETA 11 min 07 s (at the rate limit 2 min 00 s)")


def test_the_rate_counts_only_this_steps_units() -> None:
    """A resumed send starts with bodies finished earlier: they are not this try's rate."""
    clock = Clock()
    progress = ProgressLog("send", unit="bodies", total=100, done_before=60, clock=clock)
    clock.now += 10
    assert progress.line(70) == "send: 70 of 100 bodies, 70%, 1.0 bodies/s, ETA 30 s"


def test_no_rate_yet_and_an_empty_total() -> None:
    clock = Clock()
    assert ProgressLog("send", unit="bodies", total=5, clock=clock).line(0) == (
        "send: 0 of 5 bodies, 0%, 0.0 bodies/s, ETA unknown"
    )
    assert (
        ProgressLog("send", unit="bodies", total=0, clock=clock).line(0)
        == "send: 0 of 0 bodies, 0.0 bodies/s"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.4, "59 s"), (60, "1 min 00 s"), (3599, "59 min 59 s"), (7620, "2 h 07 min")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
