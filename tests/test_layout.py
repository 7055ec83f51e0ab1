"""The shape of the code (docs/architecture.md, "Layers"): layers point inward,
no import cycle, no module too long to read in one sitting.

Imports are read from the source with `ast`, lazy ones inside functions included:
a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "inventory_cli"
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports.

    ``from package import module`` counts as a dependency on that module, not on
    the package's ``__init__``.
    """
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {_module_name(path) for path in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = {f"{node.module}.{alias.name}" for alias in node.names} & known
                names = [alias for alias in node.names if f"{node.module}.{alias.name}" not in known]
                found |= modules | ({node.module} if names else set())
        name = _module_name(path)
        graph[name] = {m for m in found if m in known and m != name}
    return graph


GRAPH = _imports()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_domain_imports_no_other_layer():
    for module, imported in GRAPH.items():
        if _layer(module) == "domain":
            assert {_layer(m) for m in imported} <= {"domain"}, module


def test_storage_imports_neither_the_application_nor_the_cli():
    for module, imported in GRAPH.items():
        if _layer(module) == "storage":
            assert not {_layer(m) for m in imported} & {"application", "cli"}, module


def test_the_application_reaches_storage_only_through_the_port():
    allowed = {"inventory_cli.storage", "inventory_cli.storage.port"}
    for module, imported in GRAPH.items():
        if _layer(module) == "application":
            assert "cli" not in {_layer(m) for m in imported}, module
            storage = {m for m in imported if _layer(m) == "storage"}
            assert storage <= allowed, f"{module} imports {sorted(storage - allowed)}"


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(GRAPH[module]):
            if state.get(imported) == 1:
                cycle = path[path.index(imported):] + [imported]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if imported not in state:
                visit(imported, path + [imported])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_the_length_limit(path):
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines; split it by concern"
