"""Argument checks shared by every layer: each returns the checked value or raises
:class:`~airflow_omnisend.exceptions.OmnisendConfigError` naming the argument and the fix.

Imports nothing from Airflow, so ``events/`` and the CLI use it too.
"""

from __future__ import annotations

from airflow_omnisend.exceptions import OmnisendConfigError


def check_int(name: str, value: object, *, minimum: int, fix: str, maximum: int | None = None) -> int:
    """``value`` when it is a whole number (not a bool) from ``minimum`` to ``maximum`` (if given).

    :param name: how the caller names the argument in the message, e.g. ``"BatchLimits.max_items"``.
    :param fix: what to pass instead, e.g. ``"use the API version's batch size (100 or 1000)"``.
    :param maximum: the largest value that makes sense (a bound keeps a typo such as ``1e20`` from
        overflowing later, far from the setting).
    """
    span = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise OmnisendConfigError(
            f"{name} must be an integer (a whole number), got {short_repr(value)}; {fix} (range: {span})"
        )
    if value < minimum or (maximum is not None and value > maximum):
        raise OmnisendConfigError(f"{name} must be {span}, got {short_repr(value)}; {fix}")
    return value


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a huge value never makes a huge message."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than sys.get_int_max_str_digits() digits
        return (
            f"an integer of about {int.bit_length(value) * 30103 // 100000} digits"
            if isinstance(value, int)
            else "?"
        )
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
