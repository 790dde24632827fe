"""One reading of yes/no settings that may arrive as text (rendered templates, connection extras from the UI).

``"{{ params.dry_run }}"`` renders to ``"True"``; the connection form stores ``"true"``. Every place that
takes such a flag reads it here, so ``"off"`` means the same everywhere and a typo is an error, never a
silent ``True``. Imports no Airflow.
"""

from __future__ import annotations

from airflow_omnisend.exceptions import OmnisendConfigError

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off", "", "none"})


def parse_flag(value: object, name: str, owner: str) -> bool:
    """``value`` as a bool: a bool or number as Python reads it, text by :data:`TRUE_WORDS` /
    :data:`FALSE_WORDS` (any case); other text raises, naming ``owner`` and ``name``."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        raise OmnisendConfigError(f"{owner}: {name} must be true or false, got {value!r}")
    return bool(value)
