"""Fixtures for the emulator tests: start emulators with given settings, talk raw HTTP to them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from emulator_http import Api

from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., OmnisendEmulator]]:
    """Start an emulator with these ``EmulatorConfig`` settings (``processing_delay`` 0 unless given)."""
    started: list[OmnisendEmulator] = []

    def start(**settings: Any) -> OmnisendEmulator:
        settings.setdefault("processing_delay", 0.0)
        emulator = OmnisendEmulator(EmulatorConfig(**settings)).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emu(start_emulator: Callable[..., OmnisendEmulator]) -> OmnisendEmulator:
    return start_emulator()


@pytest.fixture
def v5(emu: OmnisendEmulator) -> Api:
    return Api(emu, "v5")


@pytest.fixture
def api26(emu: OmnisendEmulator) -> Api:
    return Api(emu, "2026-03-15")
