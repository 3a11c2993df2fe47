"""The package's dependencies point one way: cli → calculator → parallel → io/data/model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "legato_ase"

# module (relative to the package) -> package modules it must never import
FORBIDDEN = {
    "parallel": {"calculator", "cli", "cli_core"},
    "committee.py": {"calculator", "parallel", "io", "cli", "cli_core"},
    "io.py": {"calculator", "parallel", "cli", "cli_core"},
    "data.py": {"calculator", "parallel", "io", "cli", "cli_core"},
    "model": {"calculator", "parallel", "io", "cli", "cli_core"},
}


def _imported_package_modules(path: Path) -> set[str]:
    """First-level legato_ase modules a file imports, lazily imported ones included."""
    depth = len(path.relative_to(PACKAGE).parts) - 1
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = list(path.relative_to(PACKAGE).parts[:-1])[: depth - node.level + 1]
            parts += (node.module or "").split(".") if node.module else []
            names = [parts[0]] if parts else [a.name for a in node.names]
            found.update(names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("legato_ase."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("legato_ase.")
            )
    return {name.removesuffix(".py") for name in found}


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_lower_layers_never_import_higher_ones(where):
    target = PACKAGE / where
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    for path in files:
        bad = _imported_package_modules(path) & FORBIDDEN[where]
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_the_checker_sees_direct_and_lazy_relative_imports():
    assert _imported_package_modules(PACKAGE / "calculator.py") >= {"io", "parallel", "data"}
    assert "io" in _imported_package_modules(PACKAGE / "parallel" / "lammps.py")  # lazy, ..io
