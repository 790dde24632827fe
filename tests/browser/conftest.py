"""The browser tests share the end-to-end tests' deployment helpers (``tests/e2e/e2e_deployment.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
