"""Pure domain: JSON Schemas, validation, order -> event mapping, event ids, chunk planning.

Nothing under this package imports Airflow; it is fast and unit-testable on its own.
"""

from __future__ import annotations
