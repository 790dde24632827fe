"""A local Omnisend for tests, demos and offline development (standard library + orjson, no Airflow).

In-process::

    from airflow_omnisend.testing.emulator import EmulatorConfig, FaultConfig, OmnisendEmulator

    with OmnisendEmulator(EmulatorConfig(faults=FaultConfig(error_5xx_rate=0.1, seed=7))) as emu:
        ...  # point a connection at emu.base_url with emu.api_key
        emu.wait_until_idle()
        events = emu.store.accepted_events()

As a process: ``airflow-omnisend emulator --port 8899`` (see ``cli.py``). In pytest: the
``omnisend_emulator`` fixture of ``airflow_omnisend.testing.pytest_plugin``.
"""

from __future__ import annotations

from airflow_omnisend.testing.emulator.config import (
    DEFAULT_API_KEY,
    FAULT_TARGETS,
    RATE_LIMIT_SIGNALS,
    V5,
    V2026,
    ApiKeyGrant,
    EmulatorConfig,
    FaultConfig,
)
from airflow_omnisend.testing.emulator.server import OmnisendEmulator
from airflow_omnisend.testing.emulator.store import (
    AcceptedEvent,
    BatchRecord,
    DuplicateEvent,
    EmulatorStore,
    RequestRecord,
    RetryAfterViolation,
)

__all__ = [
    "DEFAULT_API_KEY",
    "FAULT_TARGETS",
    "RATE_LIMIT_SIGNALS",
    "V5",
    "V2026",
    "AcceptedEvent",
    "ApiKeyGrant",
    "BatchRecord",
    "DuplicateEvent",
    "EmulatorConfig",
    "EmulatorStore",
    "FaultConfig",
    "OmnisendEmulator",
    "RequestRecord",
    "RetryAfterViolation",
]
