"""ARCHITECTURE.md's layer table stays true: every module of ``rag/`` is placed in one row, every name there
exists, no runtime import reaches a later row, and ``rag`` modules import each other in no cycle.

Read with ``ast`` only (nothing of ``rag`` is imported, so this runs in well under a second). An import
under ``if TYPE_CHECKING:`` is for the type checker and is skipped; an import inside a function runs when
the function does, so it counts. Importing ``rag.a.b`` from outside ``rag/a/`` also runs
``rag/a/__init__.py``, so that is an edge too.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE_HEADER = re.compile(r"^\|\s*layer\s*\|\s*modules\s*\|\s*holds\s*\|\s*$")


@dataclass(frozen=True)
class Layers:
    names: tuple[str, ...]  # the rows, first (lowest) to last
    row_of: dict[str, int]  # dotted module name -> row index
    problems: tuple[str, ...]  # names that place nothing, or place a module twice


def modules_of(package_dir: Path) -> dict[str, Path]:
    """Dotted name -> file for every module of the package (a package is its ``__init__.py``)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def read_layers(markdown: str, package: str = "rag") -> Layers:
    """The layer table: rows ``| layer | modules | holds |``. In the modules cell, a name ending in ``/``
    is a package (relative to ``rag/``) and places its ``__init__.py``; the names after it in the same
    cell are its modules, until the next package."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if TABLE_HEADER.match(line)), None)
    assert start is not None, "ARCHITECTURE.md has no '| layer | modules | holds |' table"
    names: list[str] = []
    row_of: dict[str, int] = {}
    problems: list[str] = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        layer, modules = cells[0], cells[1]
        names.append(layer)
        prefix = ""
        for token in re.findall(r"`([^`]+)`", modules):
            if token.endswith("/"):
                prefix = token
                dotted = f"{package}." + token.rstrip("/").replace("/", ".")
            elif token.endswith(".py"):
                parts = (prefix + token)[: -len(".py")].split("/")
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                dotted = ".".join([package, *parts])
            else:
                problems.append(f"row {layer!r}: `{token}` is neither a module (.py) nor a package (/)")
                continue
            if dotted in row_of:
                problems.append(f"{dotted} is placed twice (rows {names[row_of[dotted]]!r} and {layer!r})")
            else:
                row_of[dotted] = len(names) - 1
    return Layers(tuple(names), row_of, tuple(problems))


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _known_prefix(name: str, known: set[str]) -> str:
    """The longest module ``name`` starts with (``rag.x.Class`` -> ``rag.x``), or ""."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def runtime_imports(module: str, path: Path, known: set[str]) -> dict[str, int]:
    """The ``rag`` modules ``module`` imports when it runs (top level or in a function, not under
    ``TYPE_CHECKING``), each with the line of the first such import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            type_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            targets = [_known_prefix(a.name, known) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # ``from rag.a import b``: the module rag.a.b when there is one, else a name read from rag.a
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else _known_prefix(base, known)
                       for a in node.names]
        else:
            continue
        for target in targets:
            if not target or target == module:
                continue
            found.setdefault(target, node.lineno)
            # Importing rag.a.b first runs rag/a/__init__.py, unless it is already running (we are in rag/a/).
            parts = target.split(".")
            for depth in range(2, len(parts)):
                parent = ".".join(parts[:depth])
                if parent in known and not (module == parent or module.startswith(parent + ".")):
                    found.setdefault(parent, node.lineno)
    return found


def import_graph(package_dir: Path) -> dict[str, dict[str, int]]:
    modules = modules_of(package_dir)
    known = set(modules)
    return {m: runtime_imports(m, p, known) for m, p in modules.items()}


def upward_imports(graph: dict[str, dict[str, int]], layers: Layers, files: dict[str, Path], root: Path) -> list[str]:
    out = []
    for module, imports in sorted(graph.items()):
        row = layers.row_of.get(module)
        for target, line in sorted(imports.items()):
            target_row = layers.row_of.get(target)
            if row is not None and target_row is not None and target_row > row:
                out.append(f"{files[module].relative_to(root)}:{line}: {module} ({layers.names[row]}) imports "
                           f"{target} ({layers.names[target_row]}), a later row")
    return out


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan), as a path back to its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules (~120)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    out = []
    for group in groups:  # walk from the first member inside the group until a module repeats
        members, path = set(group), [group[0]]
        while path.count(path[-1]) < 2:
            path.append(next(w for w in sorted(graph[path[-1]]) if w in members))
        out.append(path[path.index(path[-1]):])
    return out


@lru_cache(maxsize=1)  # one parse of the tree for the four checks
def _project() -> tuple[Layers, dict[str, Path], dict[str, dict[str, int]]]:
    layers = read_layers((ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    return layers, modules_of(ROOT / "rag"), import_graph(ROOT / "rag")


def test_every_module_is_placed_once_in_the_layer_table():
    layers, files, _ = _project()
    unplaced = sorted(m for m in files if m not in layers.row_of)
    assert not unplaced, "modules of rag/ missing from ARCHITECTURE.md's layer table: " + ", ".join(unplaced)
    assert not layers.problems, "\n".join(layers.problems)


def test_every_module_the_table_names_exists():
    layers, files, _ = _project()
    missing = sorted(m for m in layers.row_of if m not in files)
    assert not missing, "ARCHITECTURE.md names modules that do not exist: " + ", ".join(missing)


def test_no_runtime_import_reaches_a_later_row():
    layers, files, graph = _project()
    offences = upward_imports(graph, layers, files, ROOT)
    assert not offences, "\n".join(offences)


def test_rag_modules_import_each_other_in_no_cycle():
    _, _, graph = _project()
    found = cycles(graph)
    assert not found, "\n".join(" -> ".join(c) for c in found)


# The checker itself, on a small package written for the purpose: each kind of offence is found.

def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def test_the_checker_finds_each_kind_of_offence(tmp_path):
    package = _write(tmp_path, {
        "__init__.py": "",
        "low.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high import H\n"
                   "def f():\n    from pkg.sub.mid import g\n"),  # type-only: skipped; lazy: counted
        "sub/__init__.py": "from pkg.sub.mid import g\n",
        "sub/mid.py": "from . import leaf\n",  # a relative import of a module; pkg.sub is already running: no edge
        "sub/extra.py": "from pkg.sub import g\n",  # a name read from its own package while it runs: an edge
        "sub/leaf.py": "from pkg import low\n",
        "high.py": "import pkg.sub.leaf\n",  # runs pkg/sub/__init__.py: an edge to pkg.sub
    })
    graph = import_graph(package)
    assert graph["pkg.low"] == {"pkg.sub": 5, "pkg.sub.mid": 5}
    assert graph["pkg.sub.mid"] == {"pkg.sub.leaf": 1}
    assert graph["pkg.sub.extra"] == {"pkg.sub": 1}
    assert graph["pkg.high"] == {"pkg.sub": 1, "pkg.sub.leaf": 1}
    layers = read_layers("| layer | modules | holds |\n|---|---|---|\n"
                         "| one | `__init__.py`, `low.py`, `nowhere.py` | |\n"
                         "| two | `low.py`, `sub/`: `mid.py`, `leaf.py`, `extra.py`, `high` | |\n", package="pkg")
    assert layers.names == ("one", "two")
    assert layers.row_of["pkg.sub"] == layers.row_of["pkg.sub.leaf"] == 1
    assert "pkg.high" not in layers.row_of and "pkg.nowhere" in layers.row_of
    assert layers.problems == ("pkg.low is placed twice (rows 'one' and 'two')",
                               "row 'two': `high` is neither a module (.py) nor a package (/)")
    assert upward_imports(graph, layers, modules_of(package), tmp_path) == [
        "pkg/low.py:5: pkg.low (one) imports pkg.sub (two), a later row",
        "pkg/low.py:5: pkg.low (one) imports pkg.sub.mid (two), a later row",
    ]
    assert cycles(graph) == [["pkg.low", "pkg.sub", "pkg.sub.mid", "pkg.sub.leaf", "pkg.low"]]
