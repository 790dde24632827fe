"""The provider's ``airflow.plugins`` entry points (the dashboard, the run notes) for a checkout whose
installed metadata predates them (an editable install made before they were added: ``make``
reinstalls when pyproject.toml changes, a shared venv may not have yet).

:func:`entry_point_dir` writes a minimal ``.dist-info`` declaring the entry points that
pyproject.toml declares and the installed metadata lacks, for a deployment's ``PYTHONPATH``; when the
installed distribution declares them all, it returns None (so no plugin is ever registered twice).
Imports no Airflow.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path

__all__ = ["GROUP", "declared_entry_point", "declared_entry_points", "entry_point_dir", "installed"]

GROUP = "airflow.plugins"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def declared_entry_points(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """``{name: "module:Class"}`` of the plugin entry points pyproject.toml declares."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return dict(data["project"]["entry-points"][GROUP])


def declared_entry_point(name: str, pyproject: Path = PYPROJECT) -> str:
    """``"module:Class"`` of the plugin entry point called ``name`` in pyproject.toml."""
    return declared_entry_points(pyproject)[name]


def _missing() -> dict[str, str]:
    have = {e.value for e in entry_points(group=GROUP)}
    return {name: value for name, value in declared_entry_points().items() if value not in have}


def installed() -> bool:
    """Whether installed distributions already declare every plugin entry point of pyproject.toml."""
    return not _missing()


def entry_point_dir(where: Path) -> Path | None:
    """A folder holding a dist-info with the missing entry points (to put on PYTHONPATH), or None when
    the installed metadata has them all (or there is no pyproject.toml: an installed package)."""
    if not PYPROJECT.is_file():
        return None
    missing = _missing()
    if not missing:
        return None
    dist = where / "airflow_omnisend_plugins_entry_points-0.0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: airflow-omnisend-plugins-entry-points\nVersion: 0.0.0\n"
    )
    lines = "".join(f"{name} = {value}\n" for name, value in missing.items())
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")
    return where
