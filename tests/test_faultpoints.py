"""Kill points: off without a plan, seeded draws, bounds shared across processes, a log written before
the SIGKILL (real child processes, real signals)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.faultpoints import ENV, POINTS, FaultPlan, PointPlan, faultpoint, read_kills

REPO = Path(__file__).resolve().parents[1]
#: a process that passes the point ``times`` times, then says it survived
CHILD = (
    "import sys\n"
    "from airflow_omnisend.faultpoints import faultpoint\n"
    "for _ in range(int(sys.argv[2])):\n"
    "    faultpoint(sys.argv[1])\n"
    "print('survived')\n"
)


def _plan(tmp_path: Path, **points: PointPlan) -> tuple[FaultPlan, Path]:
    plan = FaultPlan(state_dir=tmp_path / "state", seed=5, points=points)
    return plan, plan.write(tmp_path / "plan.json")


def _child(plan_file: Path, point: str, times: int = 1) -> subprocess.Popen[str]:
    env = {**os.environ, ENV: str(plan_file), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, point, str(times)], env=env, stdout=subprocess.PIPE, text=True
    )


def test_without_a_plan_a_faultpoint_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    faultpoint("send.after_post")  # still alive: the test goes on


def test_a_point_the_plan_does_not_list_neither_kills_nor_counts(tmp_path: Path) -> None:
    _plan_obj, plan_file = _plan(tmp_path, **{"report.before_write": PointPlan(1.0, 1)})
    child = _child(plan_file, "send.after_post", times=3)
    out, _ = child.communicate(timeout=60)
    assert (child.returncode, out.strip()) == (0, "survived")
    assert read_kills(tmp_path / "state") == []
    assert not (tmp_path / "state" / "counts.json").exists()


def test_a_chosen_process_logs_the_kill_then_dies_of_sigkill(tmp_path: Path) -> None:
    _plan_obj, plan_file = _plan(tmp_path, **{"send.after_post": PointPlan(1.0, 1)})
    first = _child(plan_file, "send.after_post")
    out, _ = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL
    assert out == ""  # nothing of its own ran after the point
    (kill,) = read_kills(tmp_path / "state")
    assert (kill["point"], kill["hit"], kill["kill"], kill["pid"]) == ("send.after_post", 1, 1, first.pid)

    # the point's bound is spent: the next process passes it, and the log still holds one kill
    second = _child(plan_file, "send.after_post", times=2)
    assert second.communicate(timeout=60)[0].strip() == "survived"
    assert len(read_kills(tmp_path / "state")) == 1
    counts = json.loads((tmp_path / "state" / "counts.json").read_text())
    assert counts == {"hits": {"send.after_post": 3}, "kills": {"send.after_post": 1}}


def test_the_bound_holds_across_concurrent_processes(tmp_path: Path) -> None:
    _plan_obj, plan_file = _plan(tmp_path, **{"plan.mid_write": PointPlan(1.0, 2)})
    children = [_child(plan_file, "plan.mid_write") for _ in range(6)]
    codes = sorted(c.wait(timeout=120) for c in children)
    assert codes == [-signal.SIGKILL, -signal.SIGKILL, 0, 0, 0, 0]
    kills = read_kills(tmp_path / "state")
    assert sorted(k["kill"] for k in kills) == [1, 2]
    assert {k["pid"] for k in kills} == {c.pid for c in children if c.returncode == -signal.SIGKILL}


def test_the_overall_bound_caps_every_point_together(tmp_path: Path) -> None:
    plan = FaultPlan(
        state_dir=tmp_path / "state",
        max_kills=1,
        points={"extract.mid_write": PointPlan(1.0, 5), "report.before_write": PointPlan(1.0, 5)},
    )
    plan_file = plan.write(tmp_path / "plan.json")
    assert _child(plan_file, "extract.mid_write").wait(timeout=60) == -signal.SIGKILL
    assert _child(plan_file, "report.before_write").wait(timeout=60) == 0
    assert [k["point"] for k in read_kills(tmp_path / "state")] == ["extract.mid_write"]


def test_draws_are_a_function_of_seed_point_and_hit() -> None:
    points = {"send.after_post": PointPlan(0.3, 9), "plan.mid_write": PointPlan(0.3, 9)}
    one = FaultPlan(state_dir=Path("unused"), seed=13, points=points)
    again = FaultPlan(state_dir=Path("elsewhere"), seed=13, points=points)
    other = FaultPlan(state_dir=Path("unused"), seed=14, points=points)
    draws = [one.draws_kill("send.after_post", hit) for hit in range(1, 201)]
    assert draws == [again.draws_kill("send.after_post", hit) for hit in range(1, 201)]
    assert draws != [other.draws_kill("send.after_post", hit) for hit in range(1, 201)]
    assert draws != [one.draws_kill("plan.mid_write", hit) for hit in range(1, 201)]
    assert 30 <= sum(draws) <= 90  # about 0.3 of 200
    assert not any(one.draws_kill("report.before_write", hit) for hit in range(1, 50))


def test_the_plan_round_trips_through_its_file(tmp_path: Path) -> None:
    plan = FaultPlan(
        state_dir=tmp_path / "s", seed=3, max_kills=4, points={p: PointPlan(0.5, 2) for p in POINTS}
    )
    assert FaultPlan.load(plan.write(tmp_path / "p.json")) == plan


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"seed": 1, "points": {}}, "state_dir"),
        ({"state_dir": "x", "points": {"send.before_post": {}}}, "send.before_post"),
        ({"state_dir": "x", "points": {"send.after_post": {"probability": 1.5}}}, "probability"),
        ({"state_dir": "x", "points": {"send.after_post": {"max_kills": -1}}}, "max_kills"),
        ({"state_dir": "x", "seed": "7"}, "seed"),
    ],
)
def test_a_bad_plan_is_refused_naming_what_to_fix(data: dict[str, object], names: str) -> None:
    with pytest.raises(OmnisendConfigError, match=names):
        FaultPlan.from_dict(data)


def test_an_unreadable_plan_file_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "missing.json"))
    with pytest.raises(OmnisendConfigError, match=ENV):
        faultpoint("send.after_post")
