"""Seeded, bounded kill points inside the running code, for the chaos suite (off unless a plan is named).

``faultpoint("send.after_post")`` does nothing unless ``AIRFLOW_OMNISEND_FAULTPOINTS`` names a plan file
(JSON)::

    {"seed": 13,
     "state_dir": "/tmp/chaos/faultpoints",
     "max_kills": 6,
     "points": {"send.after_post": {"probability": 0.5, "max_kills": 2}}}

When it does, each call at a planned point counts one *hit* and decides, from ``(seed, point, hit
number)`` alone, whether this hit kills: a draw under ``probability`` while the point (and the plan as
a whole, ``max_kills``) still has kills left. A chosen process appends the kill to
``<state_dir>/kills.jsonl``, flushed and fsynced, and then sends itself SIGKILL - no ``finally``, no
``atexit``, nothing of its own runs after, as when the kernel's OOM killer or a lost machine ends it.

The counts live in ``<state_dir>/counts.json`` under an exclusive ``flock`` of ``<state_dir>/lock``, so
the bound holds across every process of a deployment (task processes on several workers of one
machine) and the log says exactly how many kills happened where. This module imports no Airflow and
costs one environment lookup per call when no plan is named.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = [
    "ENV",
    "POINTS",
    "FaultPlan",
    "PointPlan",
    "faultpoint",
    "read_kills",
]

#: names the plan file; unset (the default) means every faultpoint is a no-op
ENV = "AIRFLOW_OMNISEND_FAULTPOINTS"

#: every point the package calls, and where (a plan naming another point is a typo, refused)
POINTS: Mapping[str, str] = {
    "extract.mid_write": "the extract task, after writing a part of events.ndjson, before it is in place",
    "plan.mid_write": "the plan task, after writing a part of a shard's bodies, before it is in place",
    "send.after_post": "a send task, after Omnisend accepted a POST and before its batchID is stored",
    "report.before_write": "the report task, after reading the receipts, before report.json is written",
}

KILLS_FILE = "kills.jsonl"
COUNTS_FILE = "counts.json"
LOCK_FILE = "lock"


@dataclass(frozen=True)
class PointPlan:
    """One point's share of the chaos: the chance a hit kills, and at most how many kills."""

    probability: float = 0.0
    max_kills: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.probability, bool) or not isinstance(self.probability, int | float):
            raise OmnisendConfigError(
                f"faultpoint probability must be a number 0-1, got {self.probability!r}"
            )
        if not 0.0 <= self.probability <= 1.0:
            raise OmnisendConfigError(f"faultpoint probability must be within 0-1, got {self.probability!r}")
        if isinstance(self.max_kills, bool) or not isinstance(self.max_kills, int) or self.max_kills < 0:
            raise OmnisendConfigError(f"faultpoint max_kills must be an integer >= 0, got {self.max_kills!r}")


@dataclass(frozen=True)
class FaultPlan:
    """A whole plan: the seed, where counts and the kill log live, the overall bound and each point."""

    state_dir: Path
    seed: int = 0
    max_kills: int | None = None
    points: Mapping[str, PointPlan] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if unknown := sorted(set(self.points) - set(POINTS)):
            raise OmnisendConfigError(
                f"faultpoint plan names unknown point(s) {unknown}; choose from {sorted(POINTS)}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise OmnisendConfigError(f"faultpoint plan seed must be an integer, got {self.seed!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultPlan:
        if "state_dir" not in data:
            raise OmnisendConfigError("faultpoint plan needs 'state_dir' (where counts and kills.jsonl live)")
        points = data.get("points") or {}
        if not isinstance(points, dict):
            raise OmnisendConfigError("faultpoint plan 'points' must be an object of point name -> plan")
        return cls(
            state_dir=Path(str(data["state_dir"])),
            seed=data.get("seed", 0),
            max_kills=data.get("max_kills"),
            points={str(k): PointPlan(**dict(v)) for k, v in points.items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> FaultPlan:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise OmnisendConfigError(f"{ENV}={path}: cannot read the faultpoint plan ({exc})") from exc
        if not isinstance(data, dict):
            raise OmnisendConfigError(f"{ENV}={path}: the faultpoint plan must be a JSON object")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state_dir),
            "seed": self.seed,
            "max_kills": self.max_kills,
            "points": {
                k: {"probability": p.probability, "max_kills": p.max_kills} for k, p in self.points.items()
            },
        }

    def write(self, path: str | Path) -> Path:
        """Write the plan (and create its state directory); name the returned path in :data:`ENV`."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return target

    def draws_kill(self, point: str, hit: int) -> bool:
        """Whether hit number ``hit`` (1-based) of ``point`` draws a kill (bounds aside): a function of
        the seed, the point and the hit number only."""
        chosen = self.points.get(point)
        if chosen is None or chosen.probability <= 0.0:
            return False
        return random.Random(f"{self.seed}:{point}:{hit}").random() < chosen.probability


@contextlib.contextmanager
def _locked_counts(state_dir: Path) -> Iterator[dict[str, Any]]:
    """The shared counts, read and written back under an exclusive flock of ``state_dir/lock``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK_FILE, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counts_path = state_dir / COUNTS_FILE
        try:
            counts: dict[str, Any] = json.loads(counts_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            counts = {}
        counts.setdefault("hits", {})
        counts.setdefault("kills", {})
        yield counts
        tmp = counts_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(counts, sort_keys=True), encoding="utf-8")
        os.replace(tmp, counts_path)


def _decide(plan: FaultPlan, point: str) -> dict[str, Any] | None:
    """Count a hit of ``point``; return the kill record when this hit kills (counted already)."""
    with _locked_counts(plan.state_dir) as counts:
        hit = int(counts["hits"].get(point, 0)) + 1
        counts["hits"][point] = hit
        kills = int(counts["kills"].get(point, 0))
        total = sum(int(v) for v in counts["kills"].values())
        within = kills < plan.points[point].max_kills and (plan.max_kills is None or total < plan.max_kills)
        if not (within and plan.draws_kill(point, hit)):
            return None
        counts["kills"][point] = kills + 1
        record = {"point": point, "hit": hit, "kill": kills + 1, "pid": os.getpid(), "at": time.time()}
        with open(plan.state_dir / KILLS_FILE, "ab") as log:
            log.write(json.dumps(record, sort_keys=True).encode() + b"\n")
            log.flush()
            os.fsync(log.fileno())
        return record


def faultpoint(point: str) -> None:
    """A place where the chaos suite may SIGKILL this process (see the module docstring); a no-op unless
    :data:`ENV` names a plan that lists ``point``."""
    path = os.environ.get(ENV)
    if not path:
        return
    plan = FaultPlan.load(path)
    if point not in plan.points:
        return
    if _decide(plan, point) is not None:
        os.kill(os.getpid(), signal.SIGKILL)


def read_kills(state_dir: str | Path) -> list[dict[str, Any]]:
    """The kills a plan's processes logged, in order (empty when none happened)."""
    path = Path(state_dir) / KILLS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
