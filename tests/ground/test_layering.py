"""Imports only go down the layers: ground, pki, directory, mail, regulation, notices, app, doctor,
daemon/cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mailbot

PACKAGE = Path(mailbot.__file__).parent
#: Each package and the packages above it, which it must never import.
LAYERS = ["pki", "directory", "mail", "regulation", "notices", "app", "doctor", "daemon", "cli"]
#: The ground modules, below everything.
GROUND = ["config", "log", "files", "folders", "identifiers", "backoff", "addresses", "dates"]


def imported_modules(path: Path) -> set[str]:
    """Every module named by an import statement of *path*."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def upward_imports(sources: list[Path], above: list[str]) -> set[str]:
    """``file: module`` for every import of a package in *above*."""
    return {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sources
        for name in imported_modules(path)
        for upper in above
        if name == f"mailbot.{upper}" or name.startswith(f"mailbot.{upper}.")
    }


@pytest.mark.parametrize("layer", LAYERS[:-2])
def test_a_layer_never_imports_the_layers_above(layer: str) -> None:
    sources = sorted((PACKAGE / layer).rglob("*.py"))
    assert len(sources) > 2  # the package was found
    above = LAYERS[LAYERS.index(layer) + 1 :]
    assert upward_imports(sources, above) == set()


def test_ground_imports_no_layer() -> None:
    sources = [p for name in GROUND for p in (PACKAGE / name).rglob("*.py")]
    sources += [PACKAGE / f"{name}.py" for name in GROUND if (PACKAGE / f"{name}.py").exists()]
    assert len(sources) > 5
    assert upward_imports(sources, LAYERS) == set()
