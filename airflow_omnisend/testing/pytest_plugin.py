"""pytest fixtures for testing against the Omnisend emulator.

Enable them in a ``conftest.py``::

    pytest_plugins = ["airflow_omnisend.testing.pytest_plugin"]

``omnisend_emulator`` yields a started :class:`~airflow_omnisend.testing.emulator.OmnisendEmulator` (fresh
record, free port) and stops it afterwards. Override ``omnisend_emulator_config`` in a test module (or
parametrize it indirectly) to change its settings. Imports no Airflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_omnisend.testing.emulator import EmulatorConfig, OmnisendEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def omnisend_emulator_config(request: pytest.FixtureRequest) -> EmulatorConfig:
    """The emulator's settings: defaults, or an ``EmulatorConfig`` given by indirect parametrization."""
    param = getattr(request, "param", None)
    return param if isinstance(param, EmulatorConfig) else EmulatorConfig()


@pytest.fixture
def omnisend_emulator(omnisend_emulator_config: EmulatorConfig) -> Iterator[OmnisendEmulator]:
    """A running emulator on 127.0.0.1 (``.base_url``, ``.api_key``, ``.store``), stopped after the test."""
    emulator = OmnisendEmulator(omnisend_emulator_config)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
