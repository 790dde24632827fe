"""The dashboard plugin's ``airflow.plugins`` entry point for a checkout whose installed metadata
predates it (an editable install made before the entry point was added: ``make`` reinstalls when
pyproject.toml changes, a shared venv may not have yet).

:func:`entry_point_dir` writes a minimal ``.dist-info`` declaring exactly the entry point that
pyproject.toml declares, for a deployment's ``PYTHONPATH``; when the installed distribution already
declares it, it returns None and nothing is added (so the plugin is never registered twice).
Imports no Airflow.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path

__all__ = ["GROUP", "declared_entry_point", "entry_point_dir", "installed"]

GROUP = "airflow.plugins"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def declared_entry_point(pyproject: Path = PYPROJECT) -> tuple[str, str]:
    """``(name, "module:Class")`` of the plugin entry point pyproject.toml declares."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    ((name, value),) = data["project"]["entry-points"][GROUP].items()
    return name, value


def installed() -> bool:
    """Whether an installed distribution already declares the plugin's entry point."""
    _name, value = declared_entry_point()
    return any(e.value == value for e in entry_points(group=GROUP))


def entry_point_dir(where: Path) -> Path | None:
    """A folder holding a dist-info with the entry point (to put on PYTHONPATH), or None when the
    installed metadata has it (or there is no pyproject.toml: an installed package, not a checkout)."""
    if not PYPROJECT.is_file() or installed():
        return None
    name, value = declared_entry_point()
    dist = where / "airflow_omnisend_dashboard_entry_point-0.0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: airflow-omnisend-dashboard-entry-point\nVersion: 0.0.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\n{name} = {value}\n")
    return where
