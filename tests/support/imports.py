"""The import graph of prodseg's own modules, read from the source (nothing is imported).

Read once per test session (cached): callers must not change what they get.
Module names are the installed ones: ``workers/ops/masks.py`` is
``prodseg.workers.ops.masks``. Imports inside functions are kept, since they run when
the function does; imports under ``if TYPE_CHECKING:`` never run, so the torch checks
leave them out, but they tie modules together all the same, so the cycle check counts
them (``typing_too``).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOLDERS = {"prodseg": "prodseg", "producer": "prodseg.producer", "storage": "prodseg.storage",
           "tasks": "prodseg.tasks", "workers": "prodseg.workers"}
HEAVY = ("torch", "torchvision", "timm", "sam2")


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of the package, by installed name."""
    found: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def imported(path: Path, known: set[str], module_level_only: bool,
             typing_too: bool = False) -> set[str]:
    """Modules ``path`` imports: prodseg's own (as in ``known``) and third-party tops;
    with ``typing_too``, those under ``if TYPE_CHECKING:`` too."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if module_level_only and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if (not typing_too and isinstance(child, ast.If)
                    and "TYPE_CHECKING" in ast.unparse(child.test)):
                continue
            if isinstance(child, ast.Import):
                out.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                out.add(child.module)
                out.update(f"{child.module}.{a.name}" for a in child.names
                           if f"{child.module}.{a.name}" in known)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return out


@functools.cache
def graph(module_level_only: bool = False, typing_too: bool = False) -> dict[str, set[str]]:
    """Module -> the prodseg modules it imports, parent packages included.

    Importing ``a.b.c`` runs ``a/b/__init__.py`` first, so each module also depends on
    the package it is in.
    """
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = {d for d in imported(path, known, module_level_only, typing_too) if d in known}
        parent = name.rpartition(".")[0]
        if parent in known:
            deps.add(parent)
        edges[name] = deps - {name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return sorted(found)


@functools.cache
def heavy_imports(module_level_only: bool = True) -> dict[str, set[str]]:
    """Module -> the heavy libraries (torch, timm, sam2) it imports itself."""
    mods = modules()
    known = set(mods)
    return {name: {i.split(".")[0] for i in imported(path, known, module_level_only)}
            & set(HEAVY) for name, path in mods.items()}


@functools.cache
def heavy_at_import(module_level_only: bool = True) -> dict[str, set[str]]:
    """Module -> the heavy libraries (torch, timm, sam2) importing it loads, transitively."""
    mods = modules()
    direct = heavy_imports(module_level_only)
    edges = graph(module_level_only)
    closure: dict[str, set[str]] = {}

    def reach(name: str, seen: set[str]) -> set[str]:
        if name in closure:
            return closure[name]
        seen.add(name)
        out = set(direct[name])
        for dep in edges[name]:
            if dep not in seen:
                out |= reach(dep, seen)
        closure[name] = out
        return out

    for name in mods:
        reach(name, set())
    return closure
