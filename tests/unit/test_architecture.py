"""The package arrows run one way: a test reads every module's imports (ast) and fails on a wrong one.

    front ends (cli, render, server, __init__, __main__) -> api -> evaluation -> search -> storage -> base
    indexer -> storage -> base;   base = types, errors, layers, settings, cores

Library packages also keep no function-level import of layerwise modules (the
old way of dodging cycles); only the service layer and the front ends import
lazily, to keep heavy modules (torch, transformers) off the start-up path.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "layerwise"
BASE = {"types", "errors", "layers", "settings", "cores"}
ALLOWED = {
    "base": {"base"},
    "storage": {"base", "storage"},
    "indexer": {"base", "storage", "indexer"},
    "search": {"base", "storage", "search"},
    "evaluation": {"base", "storage", "search", "evaluation"},
    "api": {"base", "storage", "indexer", "search", "evaluation", "api"},
    "server": {"base", "storage", "indexer", "search", "evaluation", "api", "server"},
    "front": {"base", "storage", "indexer", "search", "evaluation", "api", "server", "front"},
}
PACKAGES = {"storage", "indexer", "search", "evaluation", "server", "api"}
LAZY_OK = {"api", "server", "front"}


def group(module: str) -> str:
    """The architectural group of a dotted module name under layerwise."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "front"
    if head in BASE:
        return "base"
    return head if head in PACKAGES else "front"  # cli, render, __main__, the package itself


def modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        dotted = "layerwise." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        out.append((dotted.removesuffix(".__init__") if path.name == "__init__.py" and path.parent != SRC else dotted,
                    ast.parse(path.read_text())))
    return out


def layerwise_imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """(imported layerwise module, inside a function) for every import in a module."""
    found = []
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inner = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("layerwise"):
            names = [node.module] if node.module != "layerwise" else [f"layerwise.{a.name}" for a in node.names]
            found += [(n, id(node) in inner) for n in names]
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in inner) for a in node.names if a.name.startswith("layerwise")]
    return found


@pytest.mark.parametrize(("module", "tree"), modules(), ids=lambda x: x if isinstance(x, str) else "")
def test_imports_point_down_the_layers(module: str, tree: ast.Module) -> None:
    mine = group(module)
    wrong = [(target, lazy) for target, lazy in layerwise_imports(tree) if group(target) not in ALLOWED[mine]]
    assert not wrong, f"{module} ({mine}) imports {wrong}: arrows must run front ends -> api -> evaluation -> search -> storage -> base"


@pytest.mark.parametrize(("module", "tree"), modules(), ids=lambda x: x if isinstance(x, str) else "")
def test_library_modules_import_at_the_top(module: str, tree: ast.Module) -> None:
    if group(module) in LAZY_OK:
        return
    lazy = [target for target, inside in layerwise_imports(tree) if inside]
    assert not lazy, f"{module} imports {lazy} inside a function: import at the top (no cycle needs dodging)"


def test_the_rule_catches_a_wrong_arrow() -> None:
    tree = ast.parse("from layerwise.search.searcher import Searcher\ndef f():\n    from layerwise.storage import bm25\n")
    assert group("layerwise.storage.collection") == "storage"
    assert [t for t, _ in layerwise_imports(tree) if group(t) not in ALLOWED["storage"]] == ["layerwise.search.searcher"]
    assert [t for t, inside in layerwise_imports(tree) if inside] == ["layerwise.storage"]
