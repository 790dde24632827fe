"""Argument checks shared by every layer: each returns the checked value or raises
:class:`~airflow_omnisend.exceptions.OmnisendConfigError` naming the argument and the fix.

Imports nothing from Airflow, so ``events/`` and the CLI use it too.
"""

from __future__ import annotations

from airflow_omnisend.exceptions import OmnisendConfigError


def check_int(name: str, value: object, *, minimum: int, fix: str) -> int:
    """``value`` when it is a whole number (not a bool) of at least ``minimum``.

    :param name: how the caller names the argument in the message, e.g. ``"BatchLimits.max_items"``.
    :param fix: what to pass instead, e.g. ``"use the API version's batch size (100 or 1000)"``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise OmnisendConfigError(f"{name} must be an integer (a whole number), got {value!r}; {fix}")
    if value < minimum:
        raise OmnisendConfigError(f"{name} must be >= {minimum}, got {value}; {fix}")
    return value
