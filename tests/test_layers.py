"""The package layers of `ablate/`: no import cycle, and no import that reaches up a layer.

Every module under `ablate/` is parsed with `ast` (imports inside functions count: they run too),
and each import is reduced to the package it reaches (`ablate.tracking.store` -> `tracking`). A
package may import packages of lower layers only; packages of one layer are siblings and do not
import each other. The same order is written in the README's "Layout" section.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ablate"

# Lowest first. A package imports only packages of the layers before its own.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "util"),  # the error types; small helpers (text, files, console, devices, graph order)
    ("compat", "config", "data"),  # bridges to the pinned stack; mmseg configs; datasets
    ("registry", "losses", "tracking"),  # what configs import; losses; the run store and its records
    ("analysis", "models", "statistics"),  # FLOPs/latency; models; tests, ladders, per-image scores
    ("metrics", "tricks", "trial"),  # the IoU metric; the tricks; one trial
    ("hooks", "dispatch"),  # what a trial does around training; running many trials
    ("study",),  # study files, plans, runs
    ("search", "report"),  # `ablate tune`, `ablate report`
    ("cli",),  # the command
)
# `ablate/__init__.py` (environment defaults and the mmcv bridge, run by every import) and
# `ablate/__main__.py` (`python -m ablate`) sit outside the layers.
OUTSIDE = {"__init__", "__main__"}

LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}


def _package_of(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("ablate",) + (parts[:-1] if parts[-1] == "__init__" else parts))


def _imported(path: Path) -> list[tuple[str, int]]:
    """Every `ablate.*` module name an import statement of `path` names, with its line."""
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return [(name, line) for name, line in found if name.startswith("ablate.")]


def _edges() -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> where (file:line)."""
    packages = {_package_of(p) for p in PACKAGE.rglob("*.py")}
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _package_of(path)
        for name, line in _imported(path):
            target = name.split(".")[1]
            if target in packages and target != source:
                where = f"{path.relative_to(PACKAGE.parent)}:{line}"
                if where not in edges.get((source, target), []):
                    edges.setdefault((source, target), []).append(where)
    return edges


EDGES = _edges()


def test_every_package_has_a_layer() -> None:
    packages = {_package_of(p) for p in PACKAGE.rglob("*.py")} - OUTSIDE
    assert packages - set(LAYER) == set(), "add the new package to LAYERS (and to the README's Layout)"
    assert set(LAYER) - packages == set(), "LAYERS names a package that no longer exists"


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for source, target in EDGES:
        graph.setdefault(source, set()).add(target)
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        cycle = error.args[1]
        where = {f"{a} -> {b}": EDGES[(a, b)] for a, b in zip(cycle, cycle[1:]) if (a, b) in EDGES}
        pytest.fail(f"import cycle {' -> '.join(cycle)}: {where}")


@pytest.mark.parametrize("source", sorted(LAYER))
def test_no_import_goes_up_or_sideways(source: str) -> None:
    wrong = {
        target: where
        for (importer, target), where in EDGES.items()
        if importer == source and target not in OUTSIDE and LAYER.get(target, -1) >= LAYER[source]
    }
    assert wrong == {}, f"{source} (layer {LAYER[source]}) imports a package of its own or a higher layer"


def test_outside_modules_import_little() -> None:
    """`import ablate` runs `ablate/__init__.py` first; it must stay as light as the lowest layers."""
    allowed = {"compat", "errors", "util", "cli"}
    reached = {target for (source, target) in EDGES if source in OUTSIDE}
    assert reached <= allowed


def test_no_cycle_between_modules() -> None:
    """Inside a package too: two modules that need each other are one concern (merge them) or a
    missing third module. A package's `__init__` re-exporting its modules is not a cycle."""
    graph: dict[str, set[str]] = {}
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        module = _module_name(path)
        for name, _line in _imported(path):
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            is_package = (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()
            if name != module and name in modules and not is_package:
                graph.setdefault(module, set()).add(name)
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"modules import each other: {' -> '.join(error.args[1])}")
