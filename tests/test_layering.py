"""The import layering of docs/ARCHITECTURE.md: every omuda import, also one inside a
function, goes to the importer's own layer or a lower one."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first; a module may import from its own layer and the layers before it.
LAYERS = ("leaf", "data", "config", "models", "adaptation", "engine", "cli")


def layer_of(module: str) -> str:
    """`omuda.engine.train` -> "engine"; `omuda.config_show` -> "config"; errors, limits and
    the package itself -> "leaf"."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in ("errors", "limits"):
        return "leaf"
    if parts[1].startswith("config"):
        return "config"
    return parts[1]


def omuda_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute `omuda...` import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, module) for line, module in found if module.split(".")[0] == "omuda"]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def test_layer_of():
    assert layer_of("omuda.engine.report.page") == "engine"
    assert layer_of("omuda.config_checks") == layer_of("omuda.config") == "config"
    assert layer_of("omuda.errors") == layer_of("omuda") == "leaf"


def test_every_import_goes_downward():
    upward = []
    modules = sorted((SRC / "omuda").rglob("*.py"))
    assert len(modules) > 50
    for path in modules:
        importer = module_name(path)
        rank = LAYERS.index(layer_of(importer))
        for line, imported in omuda_imports(path):
            if LAYERS.index(layer_of(imported)) > rank:
                upward.append(f"{importer}:{line} imports {imported}")
    assert upward == []


def test_adaptation_takes_no_config_objects():
    for path in sorted((SRC / "omuda" / "adaptation").rglob("*.py")):
        configs = [m for _, m in omuda_imports(path) if layer_of(m) == "config"]
        assert configs == [], f"{module_name(path)} imports {configs}"
