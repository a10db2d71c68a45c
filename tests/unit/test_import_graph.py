"""The modules of ``flowmc_like`` and ``benchmarks`` import each other without a cycle.

Every ``.py`` file is parsed with `ast` (nothing is imported). Every import statement counts,
wherever it stands: at module level, inside a function, under ``if TYPE_CHECKING:`` or in a
``try``. Absolute and relative imports are resolved to modules of the two packages:

- ``import a.b`` is an edge to ``a.b`` (a package stands for its ``__init__``);
- ``from a import name`` is an edge to ``a.name`` when that is a module, else to ``a``;
- an import of something that is not a module of the two packages (``jax``, or an attribute
  spelled as a submodule) falls back to its longest prefix that is one, or is dropped.

A package's ``__init__`` importing its submodules gives edges like any other module. Importing
``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__`` at run time; those implicit edges are
not added (every submodule would otherwise sit on a cycle with any ``__init__`` that
re-exports it). An explicit ``import a`` or ``from a import name`` (``name`` not a module) in
a submodule of ``a`` is an edge to ``a``'s ``__init__`` and is kept: if ``a/__init__``
imports that submodule back, the cycle is real (the submodule then sees a half-initialised
package).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flowmc_like", "benchmarks")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under `PACKAGES`."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _known_prefix(name: str, modules: set[str]) -> str | None:
    """``name`` or its longest dotted prefix that is one of ``modules``."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imported_names(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool
) -> Iterator[str]:
    """The dotted names one import statement of ``module`` refers to (modules or attributes)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    yield base
    for alias in node.names:
        if alias.name != "*":
            yield f"{base}.{alias.name}"


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of `PACKAGES` it imports (see the module docstring)."""
    files = module_files()
    modules = set(files)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = list(_imported_names(node, module, is_package))
            if isinstance(node, ast.ImportFrom):
                base, *members = names
                # ``from a import b``: the module ``a.b`` if it is one, else ``a`` itself
                submodules = [name for name in members if name in modules]
                if len(submodules) < len(members) or not members:
                    submodules.append(base)
                names = submodules
            for name in names:
                target = _known_prefix(name, modules)
                if target is not None and target != module:
                    graph[module].add(target)
    return graph


def cyclic_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan; the graphs here are small enough to recurse
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle ``[m0, m1, ..., m0]`` per strongly connected component with a cycle."""
    return [_cycle_within(graph, set(component)) for component in cyclic_components(graph)]


def _cycle_within(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's smallest module (breadth-first search)."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & component):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if successor not in parents:
                    parents[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    reports = [
        f"{' -> '.join(_cycle_within(graph, set(component)))} "
        f"(strongly connected modules: {', '.join(component)})"
        for component in cyclic_components(graph)
    ]
    for report in reports:
        print("import cycle: " + report)
    assert not reports, "import cycles:\n" + "\n".join(reports)


# --------------------------------------------------------------------------- the checker itself


@pytest.mark.parametrize(
    ("source", "module", "is_package", "expected"),
    [
        ("import flowmc_like.kernels.mala", "benchmarks.run", False, {"flowmc_like.kernels.mala"}),
        ("import flowmc_like as fm", "benchmarks.run", False, {"flowmc_like"}),
        (
            "from flowmc_like import _validation",
            "flowmc_like.config",
            False,
            {"flowmc_like._validation"},
        ),
        ("from flowmc_like import Sampler", "benchmarks.run", False, {"flowmc_like"}),
        ("from flowmc_like.kernels import MALA", "benchmarks.run", False, {"flowmc_like.kernels"}),
        ("from . import mala", "flowmc_like.kernels", True, {"flowmc_like.kernels.mala"}),
        ("from .mala import MALA", "flowmc_like.kernels.hmc", False, {"flowmc_like.kernels.mala"}),
        (
            "from .. import _validation",
            "flowmc_like.kernels.hmc",
            False,
            {"flowmc_like._validation"},
        ),
        (
            "from ..records import History",
            "flowmc_like.exporters.plotting",
            False,
            {"flowmc_like.records"},
        ),
        ("import jax.numpy as jnp", "flowmc_like.config", False, set()),
        (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from flowmc_like.result import SamplerResult",
            "flowmc_like.sampler",
            False,
            {"flowmc_like.result"},
        ),
        (
            "def f():\n    from benchmarks.worker import json_default\n    return json_default",
            "benchmarks.ising",
            False,
            {"benchmarks.worker"},
        ),
    ],
)
def test_imports_are_resolved(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    module: str,
    is_package: bool,
    expected: set[str],
) -> None:
    """Each import form gives the documented edge (checked on the real module names)."""
    files = module_files()
    path = tmp_path / ("__init__.py" if is_package else "module.py")
    path.write_text(source, encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.module_files", lambda: {**files, module: path})
    assert import_graph()[module] == expected


def test_a_cycle_is_found_and_printed() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
