"""The command line of ``benchmarks/chaos_figures.py`` (the run itself is ``tests/chaos/``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_omnisend.testing.chaos import ChaosSettings

if TYPE_CHECKING:
    from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "chaos_figures.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chaos_figures", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_defaults_are_the_suites_run(script: ModuleType) -> None:
    args, settings = script.parse([])
    assert (args.profile, args.keep, args.json) == ("local", None, False)
    assert settings == ChaosSettings()


def test_seed_days_and_orders_change_only_those(script: ModuleType) -> None:
    args, settings = script.parse(["--profile", "celery", "--seed", "5", "--days", "6", "--orders", "90"])
    assert args.profile == "celery"
    assert settings == ChaosSettings(seed=5, days=6, orders=90)


def test_an_unknown_profile_is_refused(script: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        script.parse(["--profile", "kubernetes"])
    assert "kubernetes" in capsys.readouterr().err
