"""The brand's shared budget: backends, and several real processes sending through the hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.hooks._brand_budget import (
    BrandBudgetConfig,
    FileBudget,
    ProcessBudget,
    RedisBudget,
    brand_budget_config,
    brand_id,
)
from airflow_omnisend.hooks._profile import OmnisendConnectionSettings
from airflow_omnisend.testing.emulator import OmnisendEmulator
from airflow_omnisend.testing.emulator.config import EmulatorConfig, FaultConfig
from airflow_omnisend.testing.emulator.ratelimit import early_arrivals

REDIS_URL = "redis://127.0.0.1:6379/15"
ROOT = Path(__file__).resolve().parents[2]
#: a request that left its sender before the 429 was written cannot know of it (see docs/rate-limit.md)
IN_FLIGHT = 0.05


def _redis_or_skip(*secrets: str) -> None:
    """Skip unless Redis answers; forget what earlier runs left for these keys' brands."""
    redis = pytest.importorskip("redis", reason="the redis package is not installed")
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError as err:
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({type(err).__name__})")
    for secret in secrets:
        budget = RedisBudget(REDIS_URL, brand_id(secret))
        budget.client.delete(budget.starts_key, budget.blocked_key)


@pytest.mark.parametrize("backend", ["process", "file", "redis"])
def test_the_sliding_window_and_the_hold_decide_every_start(tmp_path: Path, backend: str) -> None:
    brand = brand_id(f"key-{backend}-{os.getpid()}-{tmp_path.name}")
    if backend == "redis":
        _redis_or_skip()
        budget: Any = RedisBudget(REDIS_URL, brand, 2, 10.0)
    else:
        budget = ProcessBudget(2, 10.0) if backend == "process" else FileBudget(tmp_path, brand, 2, 10.0)
    t0 = 1_000_000.0
    assert budget.try_reserve(t0) == 0
    assert budget.try_reserve(t0 + 1) == 0
    assert budget.try_reserve(t0 + 2) == pytest.approx(8.0)  # the first start leaves the window at t0+10
    assert budget.try_reserve(t0 + 10.5) == 0
    budget.hold_until(t0 + 30)
    budget.hold_until(t0 + 20)  # a shorter hold never shortens the one in force
    assert budget.blocked_until() == pytest.approx(t0 + 30)
    assert budget.try_reserve(t0 + 25) == pytest.approx(5.0)
    assert budget.try_reserve(t0 + 30) == 0


def test_the_state_file_is_named_by_a_hash_and_never_holds_the_key(tmp_path: Path) -> None:
    secret = "very-secret-api-key-123"
    budget = FileBudget(tmp_path, brand_id(secret))
    budget.hold_until(2e9)
    assert budget.try_reserve(1e9) > 0
    (state,) = tmp_path.iterdir()
    assert secret not in state.name
    assert secret not in state.read_text()
    assert brand_id(secret) != brand_id(secret + "x")


def test_a_torn_state_file_counts_as_empty(tmp_path: Path) -> None:
    budget = FileBudget(tmp_path, "brand")
    budget.path.write_text('{"starts": [1, 2')
    assert budget.try_reserve(5.0) == 0
    assert json.loads(budget.path.read_text())["starts"] == [5.0]


def test_connection_extras_choose_the_backend_and_bad_values_name_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = OmnisendConnectionSettings.from_connection_fields(host=None, extra={})
    assert settings.brand_budget == BrandBudgetConfig(backend="file")
    extra = {"brand_budget": "Process", "brand_budget_per_minute": "120", "brand_budget_dir": "/x"}
    chosen = OmnisendConnectionSettings.from_connection_fields(host=None, extra=extra).brand_budget
    assert (chosen.backend, chosen.requests_per_window, chosen.directory) == ("process", 120, "/x")
    with pytest.raises(OmnisendConfigError, match=r"connection 'c'.*brand_budget must be one of"):
        OmnisendConnectionSettings.from_connection_fields(
            host=None, extra={"brand_budget": "db"}, conn_id="c"
        )
    with pytest.raises(OmnisendConfigError, match="brand_budget_per_minute must be a whole number"):
        brand_budget_config({"brand_budget_per_minute": "0"})
    for name in ("AIRFLOW__CELERY__BROKER_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(OmnisendConfigError, match="brand_budget_redis_url"):
        brand_budget_config({"brand_budget": "redis"})
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", "redis://broker:6379/0")
    assert brand_budget_config({"brand_budget": "redis"}).resolved_redis_url() == "redis://broker:6379/0"


_PACE_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from airflow_omnisend.hooks._brand_budget import FileBudget, RedisBudget
    backend, where, brand, count = sys.argv[1:5]
    budget = FileBudget(where, brand, 5, 1.0) if backend == "file" else RedisBudget(where, brand, 5, 1.0)
    granted = []
    while len(granted) < int(count):
        now = time.time()
        wait = budget.try_reserve(now)
        if wait <= 0:
            granted.append(now)
        else:
            time.sleep(wait)  # pacing, as the hook does: the budget said how long
    print(json.dumps(granted))
    """
)
#: a start is stamped when its process reads the clock, a moment before it takes the budget's lock
CLOCK_TO_LOCK = 0.05


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_processes_sharing_a_budget_never_exceed_the_pace_together(tmp_path: Path, backend: str) -> None:
    secret = f"pace-{backend}-{tmp_path.name}"
    if backend == "redis":
        _redis_or_skip(secret)
    where = str(tmp_path) if backend == "file" else REDIS_URL
    cmd = [sys.executable, "-c", _PACE_WORKER, backend, where, brand_id(secret), "6"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True) for _ in range(4)]
    starts = sorted(t for p in procs for t in json.loads(p.communicate(timeout=120)[0]))
    assert len(starts) == 24
    # 5 per sliding second across all four processes: any six consecutive starts span a second
    assert all(starts[i + 5] - starts[i] >= 1.0 - CLOCK_TO_LOCK for i in range(len(starts) - 5))


_HOOK_WORKER = textwrap.dedent(
    """
    import sys
    from airflow_omnisend.hooks.omnisend import OmnisendHook
    from airflow_omnisend.hooks._pacing import RetryConfig
    hook = OmnisendHook("omnisend_brand", retry=RetryConfig(max_attempts=20, total_budget=120))
    hook.settings
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(int(sys.argv[1])):
        hook.list_automations(enabled=None)
    print("done", flush=True)
    """
)


def run_senders(emu: OmnisendEmulator, extra: dict[str, Any], processes: int, calls: int) -> None:
    """Start ``processes`` OS processes with one hook each on the emulator's key, release them together."""
    conn = {"conn_type": "omnisend", "host": emu.base_url, "password": emu.api_key, "extra": extra}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AIRFLOW_CONN_OMNISEND_BRAND": json.dumps(conn)}
    cmd = [sys.executable, "-c", _HOOK_WORKER, str(calls)]
    procs = [
        subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        for _ in range(processes)
    ]
    for p in procs:
        assert p.stdout is not None
        lines = iter(p.stdout.readline, "")
        assert "ready" in (line.strip() for line in lines)  # Airflow may log to stdout before it
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        assert out.strip().splitlines()[-1] == "done"


def _emulator_with_429s() -> OmnisendEmulator:
    emu = OmnisendEmulator(EmulatorConfig(fractional_seconds=True, rate_limit=10_000)).start()
    emu.set_faults(FaultConfig(targets="*", burst_429_every=25, burst_429_retry_after=1.0))
    return emu


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_a_429_one_process_receives_holds_every_process_of_the_brand(tmp_path: Path, backend: str) -> None:
    emu = _emulator_with_429s()
    if backend == "redis":
        try:
            _redis_or_skip(emu.api_key)
        except pytest.skip.Exception:
            emu.stop()
            raise
    try:
        extra = {
            "brand_budget": backend,
            "brand_budget_dir": str(tmp_path),
            "brand_budget_redis_url": REDIS_URL,
        }
        run_senders(emu, extra, processes=3, calls=50)
        log = emu.store.request_log()
    finally:
        emu.stop()
    refusals = [r for r in log if r.status == 429]
    assert len(refusals) >= 2
    assert all(r.retry_after == pytest.approx(1.0) for r in refusals)
    assert early_arrivals(log, in_flight=IN_FLIGHT) == []
    assert sum(r.status == 200 for r in log) == 150


def test_without_a_shared_budget_the_other_processes_arrive_early() -> None:
    """The same run with per-process budgets: what the shared budget prevents (the test can fail)."""
    emu = _emulator_with_429s()
    try:
        run_senders(emu, {"brand_budget": "process"}, processes=3, calls=50)
        log = emu.store.request_log()
    finally:
        emu.stop()
    assert len(early_arrivals(log, in_flight=IN_FLIGHT)) > 0
