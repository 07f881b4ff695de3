"""The shape of src/commonshelf: no import cycles, imports only down the layers, small
modules, and no `assert` in shipped code.

Layers, lowest first: `platform` (no other commonshelf package), `recipes` (platform),
`catalogue` (platform, recipes), `installation` (platform, catalogue), `ci` (anything but
the façades). The top-level `commonshelf.harness` and `commonshelf.recipe` are façades
that recipe tests import at stable paths; they may import `ci` and `recipes`, and nothing
in the package imports them.

The import graph is read with `ast`: module-level imports and those inside functions
(a lazy import is still a dependency), but not those under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = "commonshelf"
MAX_LINES = 400

LAYERS: dict[str, frozenset[str]] = {
    # layer: the other layers it may import (a layer may always import itself)
    "platform": frozenset(),
    "recipes": frozenset({"platform"}),
    "catalogue": frozenset({"platform", "recipes"}),
    "installation": frozenset({"platform", "catalogue"}),
    "ci": frozenset({"platform", "recipes", "catalogue", "installation"}),
    "harness": frozenset({"ci", "recipes"}),  # façade for recipe tests
    "recipe": frozenset({"ci", "recipes"}),  # façade for recipe tests
    "": frozenset(),  # the package itself (commonshelf/__init__.py)
}


@dataclass(frozen=True)
class Import:
    """One import of a commonshelf module: `source` imports `target` at `path:line`."""

    source: str
    target: str
    file: str  # relative to the folder that holds `src`
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where()}: {self.source} imports {self.target}"


# ---- reading the graph


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(src: Path, root: str = ROOT) -> dict[str, Path]:
    """Every module of the package under `src/root`, by dotted name."""
    return {module_name(p, src): p for p in sorted((src / root).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    """(dotted names, line) of every import, with `from X import a, b` as X.a and X.b
    candidates; skips the body of `if TYPE_CHECKING:` (its `else:` still counts)."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[str, tuple[str, ...], int]] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name, (), node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.package.split(".")
            anchor = ".".join(package[: len(package) - (node.level - 1)])
            base = f"{anchor}.{base}" if base else anchor
        self.found.append((base, tuple(a.name for a in node.names), node.lineno))

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("commonshelf.x") / __import__("commonshelf.x")
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if (
            name in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            self.found.append((node.args[0].value, (), node.lineno))
        self.generic_visit(node)


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The most specific known module `name` refers to (a prefix of it), if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def imports(src: Path, root: str = ROOT) -> list[Import]:
    """Every import of one of the package's modules by another (or by itself)."""
    known = modules(src, root)
    out: list[Import] = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        collector = _Collector(module, path.name == "__init__.py")
        collector.visit(tree)
        for base, names, line in collector.found:
            if base != root and not base.startswith(f"{root}."):
                continue
            targets = [_resolve(f"{base}.{n}", known) for n in names] or [_resolve(base, known)]
            for target in dict.fromkeys(t for t in targets if t is not None):
                out.append(Import(module, target, str(path.relative_to(src.parent)), line))
    return out


def graph(found: list[Import]) -> dict[str, dict[str, Import]]:
    """source -> target -> the first import that makes the edge."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in found:
        edges.setdefault(imp.source, {}).setdefault(imp.target, imp)
    return edges


def cycles(edges: dict[str, dict[str, Import]]) -> list[list[Import]]:
    """One cycle (as the imports that close it) per strongly connected component that has
    one (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    nodes = sorted(set(edges) | {t for targets in edges.values() for t in targets})

    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, {}):
                    components.append(sorted(component))

    return [_cycle_in(component, edges) for component in components]


def _cycle_in(component: list[str], edges: dict[str, dict[str, Import]]) -> list[Import]:
    """The shortest cycle through the component's first module (breadth-first)."""
    members = set(component)
    start = component[0]
    came_from: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target, imp in sorted(edges.get(node, {}).items()):
                if target == start:
                    path = [imp]
                    while path[0].source != start:
                        path.insert(0, came_from[path[0].source])
                    return path
                if target in members and target not in came_from:
                    came_from[target] = imp
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {component}")  # pragma: no cover


def describe(cycle: list[Import]) -> str:
    chain = " -> ".join([cycle[0].source, *(imp.target for imp in cycle)])
    return chain + "\n" + "\n".join(f"    {imp}" for imp in cycle)


def layer(module: str) -> str | None:
    """The layer of a module: its first part below `commonshelf`; None when unknown."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else ""
    return name if name in LAYERS else None


def layer_violations(found: list[Import]) -> list[str]:
    out = []
    for imp in found:
        source, target = layer(imp.source), layer(imp.target)
        if source is None:
            out.append(f"{imp.where()}: {imp.source} is in no layer (add it to LAYERS)")
        elif target is not None and target != source and target not in LAYERS[source]:
            may = ", ".join(sorted(LAYERS[source])) or "no other commonshelf package"
            where = f"commonshelf.{source}" if source else "commonshelf"
            out.append(f"{imp} ({where} may import only: {may})")
    return out


# ---- the rules


@pytest.fixture(scope="module")
def found() -> list[Import]:
    return imports(SRC)


def test_there_are_no_import_cycles(found: list[Import]) -> None:
    every = cycles(graph(found))
    assert not every, f"{len(every)} import cycle(s):\n" + "\n".join(describe(c) for c in every)


def test_imports_go_only_down_the_layers(found: list[Import]) -> None:
    bad = layer_violations(found)
    assert not bad, f"{len(bad)} import(s) against the layers:\n" + "\n".join(bad)


def test_no_module_is_over_the_line_limit() -> None:
    counts = {
        str(path.relative_to(SRC.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in modules(SRC).values()
    }
    over = sorted(((n, f) for f, n in counts.items() if n > MAX_LINES), reverse=True)
    assert not over, f"modules over {MAX_LINES} lines (split them):\n" + "\n".join(
        f"    {f}: {n} lines" for n, f in over
    )


def test_no_assert_in_shipped_code() -> None:
    # `python -O` strips asserts: a check that guards control flow must be an `if`/raise
    found = [
        f"    {path.relative_to(SRC.parent)}:{node.lineno}: {ast.unparse(node)}"
        for path in modules(SRC).values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert not found, "assert statements in src/commonshelf (use if/raise):\n" + "\n".join(found)


# ---- the checker checks what it says


def test_the_graph_sees_every_module_and_lazy_imports(found: list[Import]) -> None:
    names = modules(SRC)
    assert {"commonshelf", "commonshelf.harness", "commonshelf.platform.errors"} <= set(names)
    edges = graph(found)
    assert "commonshelf.platform.errors" in edges["commonshelf.catalogue.catalog"]
    # imported inside a function
    assert "commonshelf.platform.environment" in edges["commonshelf.installation.agent"]
    # `from commonshelf.platform import apt_sources` is the submodule, not the package
    assert "commonshelf.platform.apt_sources" in edges["commonshelf.platform.settings"]
    assert all(layer(m) is not None for m in names), "a module outside the layers"


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "src" / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "src"


def test_the_checker_finds_cycles_through_lazy_and_relative_imports(tmp_path: Path) -> None:
    src = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg import b\n",
            "b.py": "def f():\n    from .c import thing\n",
            "c.py": "import pkg.a\n",
            "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n",
            "e.py": "import pkg.d\nimport importlib\nimportlib.import_module('pkg.e')\n",
        },
    )
    found = imports(src, "pkg")
    every = cycles(graph(found))
    assert [[(i.source, i.target) for i in c] for c in every] == [
        [("pkg.a", "pkg.b"), ("pkg.b", "pkg.c"), ("pkg.c", "pkg.a")],
        [("pkg.e", "pkg.e")],  # import_module of itself; d -> e is TYPE_CHECKING only
    ]
    assert describe(every[0]).startswith("pkg.a -> pkg.b -> pkg.c -> pkg.a\n")
    assert "    src/pkg/b.py:2: pkg.b imports pkg.c\n" in describe(every[0])


def test_the_checker_names_the_offending_import() -> None:
    bad = Import("commonshelf.platform.x", "commonshelf.ci.y", "src/commonshelf/p.py", 3)
    facade = Import("commonshelf.ci.y", "commonshelf.harness", "src/commonshelf/c.py", 4)
    fine = Import("commonshelf.harness", "commonshelf.ci.y", "src/commonshelf/h.py", 5)
    stray = Import("commonshelf.tools", "commonshelf.ci.y", "src/commonshelf/tools.py", 6)
    assert layer_violations([bad, facade, fine, stray]) == [
        "src/commonshelf/p.py:3: commonshelf.platform.x imports commonshelf.ci.y "
        "(commonshelf.platform may import only: no other commonshelf package)",
        "src/commonshelf/c.py:4: commonshelf.ci.y imports commonshelf.harness "
        "(commonshelf.ci may import only: catalogue, installation, platform, recipes)",
        "src/commonshelf/tools.py:6: commonshelf.tools is in no layer (add it to LAYERS)",
    ]
