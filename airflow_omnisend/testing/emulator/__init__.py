"""A local Omnisend for tests, demos and offline development (standard library + orjson, no Airflow).

In-process::

    from airflow_omnisend.testing.emulator import EmulatorConfig, FaultConfig, OmnisendEmulator

    with OmnisendEmulator(EmulatorConfig(faults=FaultConfig(error_5xx_rate=0.1, seed=7))) as emu:
        ...  # point a connection at emu.base_url with emu.api_key
        emu.wait_until_idle()
        events = emu.store.accepted_events()

As a process: ``airflow-omnisend emulator --port 8899`` (see ``cli.py``). In pytest: the
``omnisend_emulator`` fixture of ``airflow_omnisend.testing.pytest_plugin``.

What it does, in one place (details in each module):

- ``/v5/batches`` (``X-API-KEY`` or ``Authorization: Bearer``; 1,000 items) and ``/api/batches``
  (``Authorization: Omnisend-API-Key`` or ``Bearer``, plus a required ``Omnisend-Version``; 100 items):
  POST (201 ``{"batchID", "totalCount"}``), GET list (``endpoint`` required, offset paging), GET one and
  GET ``/items`` (the ``Batch`` with ``responses`` and ``errors``). ``/api/automations`` (2026 only, cursor
  paging). Errors are RFC 9457 problems (400 with ``errors``, 429 with ``retryAfter``).
- Batches run asynchronously (``batches.py``): pending, inProgress, then finished or stopped. A stopped
  batch reports only the items processed before the stop; the others are in neither list.
- Accepted events are de-duplicated on ``(eventID, eventTime)`` exactly as sent; duplicates succeed (202)
  and are counted, not recorded again.
- A sliding-window rate limit per key; 429s spend no budget (``ratelimit.py``).
- Seeded faults (``FaultConfig``), settable at runtime (``set_faults`` or ``POST /__emulator__/faults``).
- Keys revoked or granted at runtime (``set_keys`` or ``POST /__emulator__/keys``; ``keys.py``).
- Everything is recorded in SQLite (``store``): accepted events, duplicates, batches, requests. A batch
  is committed before its 201, so an emulator restarted on the same ``db_path`` serves it (and processes
  it if it had not been).
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
