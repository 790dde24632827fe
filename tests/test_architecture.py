"""The structure docs/architecture.md describes, checked on the source: layers, operators' home, and
each rule defined once (a second definition is how two copies came to disagree)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "airflow_omnisend"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _imported_modules(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", [p for p in MODULES if _relative(p).startswith("events/")], ids=_relative)
def test_the_domain_layer_imports_no_airflow(path: Path) -> None:
    airflow = {m for m in _imported_modules(_tree(path)) if m == "airflow" or m.startswith("airflow.")}
    assert not airflow, f"{_relative(path)} imports {sorted(airflow)}; events/ must run without Airflow"


def _operator_classes(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if any(
                b.endswith(("BaseOperator", "BaseSensorOperator"))
                or (b.startswith("Omnisend") and (b.endswith("Operator")))
                for b in bases
            ):
                names.append(node.name)
    return names


def test_every_operator_lives_in_operators_or_sensors() -> None:
    misplaced = {
        _relative(path): _operator_classes(_tree(path))
        for path in MODULES
        if not _relative(path).startswith(("operators/", "sensors/"))
    }
    assert {k: v for k, v in misplaced.items() if v} == {}


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes (prose may name a rule; only code must not restate it)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _code_strings(tree: ast.Module) -> list[str]:
    skip = _docstrings(tree)
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    ]


def _assigned_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, ast.Assign | ast.AnnAssign):
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


EVENT_NAME_TEXTS = {"placed order", "paid for order", "order fulfilled", "order canceled", "order refunded"}

DAY_TEXTS = ("[0-9]{4}-[0-9]{2}-[0-9]{2}", r"\d{4}-\d{2}-\d{2}")

#: rule -> (the one module that defines it, does this module restate it?)
RULES = {
    "event names": ("events/names.py", lambda t: bool(EVENT_NAME_TEXTS & set(_code_strings(t)))),
    "lifecycle rank": ("events/names.py", lambda t: "LIFECYCLE_RANK" in _assigned_names(t)),
    "store-id rule": ("events/ids.py", lambda t: any("[a-z0-9_]+" in v for v in _code_strings(t))),
    "day format": (
        "events/partition.py",
        lambda t: any(
            "[0-9]{4}-[0-9]{2}-[0-9]{2}" in v or r"\d{4}-\d{2}-\d{2}" in v for v in _code_strings(t)
        ),
    ),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_is_defined_once(rule: str) -> None:
    home, restates = RULES[rule]
    assert restates(_tree(PACKAGE / home)), f"{rule}: the test no longer recognises its definition"
    elsewhere = sorted(
        _relative(path)
        for path in MODULES
        if _relative(path) != home and not _relative(path).startswith("testing/") and restates(_tree(path))
    )
    assert elsewhere == [], f"{rule}: defined in {home}; import it there instead of repeating it"


REPO = PACKAGE.parent
ARCHITECTURE_MD = REPO / "docs" / "architecture.md"
_NAMED = re.compile(r"`([a-z_]+(?:/[a-z_0-9]+)*\.py)(?:::([a-z_0-9]+))?")


def _named_places() -> list[tuple[str, str]]:
    return sorted(set(_NAMED.findall(ARCHITECTURE_MD.read_text(encoding="utf-8"))))


def _resolve(name: str) -> Path | None:
    """A path from the repository or the package root; a bare module name, in the package."""
    for base in (REPO, PACKAGE):
        if (base / name).is_file():
            return base / name
    found = [path for path in MODULES if path.name == name] if "/" not in name else []
    return found[0] if found else None


def test_the_map_names_places_that_exist() -> None:
    """docs/architecture.md is the map: every module, test module and test function it names exists."""
    missing = []
    for name, symbol in _named_places():
        path = _resolve(name)
        if path is None:
            missing.append(name)
        elif symbol:
            tree = _tree(path)
            defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
            defined |= _assigned_names(tree)
            if symbol not in defined:
                missing.append(f"{name}::{symbol}")
    assert missing == []
    assert len(_named_places()) > 50


def test_the_map_lists_every_module_of_the_package() -> None:
    text = ARCHITECTURE_MD.read_text(encoding="utf-8")
    unlisted = [
        _relative(path)
        for path in MODULES
        if path.name != "__init__.py"
        and not _relative(path).startswith("testing/")
        and f"`{_relative(path)}`" not in text
        and f"`{path.name}`" not in text
    ]
    assert unlisted == []
