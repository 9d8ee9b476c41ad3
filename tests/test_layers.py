"""Dependencies flow one way (../shared/design/STYLE.md): a package imports only the layers below it.

Checked on the import statements of every module under app/ (function-level imports too), so a
shortcut such as the registry asking the experiments repository, or experiments and rollouts
importing each other, fails here rather than in review.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

# Bottom to top; a unit may import units of lower layers only (and itself).
LAYERS: list[set[str]] = [
    {"settings", "errors", "dbtypes", "changes", "memo"},
    {"db", "schemas", "middleware"},
    {"auth", "migrate", "health"},
    {"bundles"},
    {"lifecycle", "events"},
    {"experiments"},
    {"rollouts"},
    {"cache"},
    {"fleet"},
    {"runtime", "gateway", "ui", "webhooks"},
    {"models", "main"},
    {"cli", "sdk"},
]
LAYER = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    return module.split(".")[1]


def modules() -> dict[str, Path]:
    found = {}
    for path in APP.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, module: str) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names.add(target)
            # ``from app.events import service`` imports the module app.events.service
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("app.")}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        module: {name for name in imports(path, module) if name in known and name != module}
        for module, path in known.items()
    }


def test_every_unit_of_the_app_has_a_layer() -> None:
    units = {unit_of(module) for module in modules() if module != "app"}
    assert units - LAYER.keys() == set()


def test_units_import_only_lower_layers() -> None:
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in graph().items()
        if module != "app"
        for target in targets
        if unit_of(target) != unit_of(module) and LAYER[unit_of(target)] >= LAYER[unit_of(module)]
    )
    assert upward == []


def test_there_are_no_import_cycles_between_modules() -> None:
    edges = graph()
    # Parents import their children only to re-export; a package's __init__ is not a cycle with it.
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if target.startswith(module + ".") or module.startswith(target + "."):
                continue
            if state[target] == 1:
                cycles.append([*path[path.index(target) :], target] if target in path else [module, target])
            elif state[target] == 0:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if state[module] == 0:
            visit(module, [module])
    assert cycles == []
