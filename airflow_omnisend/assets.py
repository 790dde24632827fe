"""The Airflow asset of a store's imported orders, ``omnisend://<store_id>/orders``.

Every successful, non-dry run of a store DAG emits one asset event for it (the ``report`` task),
carrying the run's period key (``YYYY-MM-DD``, ``YYYY-Www`` or ``YYYY-MM``) as its partition key, so
downstream DAGs can be scheduled on a store's imported periods (``dags/omnisend_monthly_report.py``).
The URI rule is defined here once; the provider registers :func:`normalize_uri` for ``omnisend``
(``asset-uris`` in ``get_provider_info``), and Airflow runs it on every ``Asset("omnisend://...")``, so a
misspelt URI fails when its DAG is parsed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from airflow.sdk import Asset

from airflow_omnisend.events.ids import STORE_ID_PATTERN

if TYPE_CHECKING:
    from urllib.parse import SplitResult

__all__ = ["ASSET_SCHEME", "normalize_uri", "store_asset", "store_asset_uri"]

ASSET_SCHEME: Final = "omnisend"
#: the one path of a store's asset (more kinds of imports could add their own)
ORDERS_PATH: Final = "/orders"
_STORE_ID: Final = re.compile(STORE_ID_PATTERN)


def store_asset_uri(store_id: str) -> str:
    """``omnisend://<store_id>/orders``."""
    return f"{ASSET_SCHEME}://{store_id}{ORDERS_PATH}"


def store_asset(store_id: str) -> Asset:
    """The asset of ``store_id``'s imported orders (named like its URI)."""
    uri = store_asset_uri(store_id)
    return Asset(uri=uri, name=uri, group="omnisend")


def normalize_uri(parts: SplitResult) -> SplitResult:
    """Airflow's URI handler for ``omnisend://``: the netloc must be a store id and the path ``/orders``.

    Raises ``ValueError`` (what Airflow expects of a handler) naming the expected form.
    """
    if not _STORE_ID.fullmatch(parts.netloc) or parts.path != ORDERS_PATH or parts.query:
        raise ValueError(
            f"omnisend asset URI {parts.geturl()!r} is not of the form "
            f"omnisend://<store_id>/orders (store id pattern {STORE_ID_PATTERN})"
        )
    return parts
