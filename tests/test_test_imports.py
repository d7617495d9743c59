"""Tests and eval scripts find the code through the installed package: no sys.path edits, no PYTHONPATH, no
imports from conftest or from another test module (shared helpers are fixtures in conftest.py).

Scanned: every Python file under tests/, eval/ (eval/relevance/ included) and scripts/, the notebook's code
cells, and the scripts and docs of those folders (shell, Markdown) plus the top-level README and
ARCHITECTURE and the pages in docs/ for a ``PYTHONPATH=`` that points somewhere."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from rag.settings import PROJECT_ROOT

SCRIPT_FOLDERS = ("tests", "eval", "scripts")
_PATH_METHODS = {"insert", "append", "extend", "__setitem__", "__iadd__"}
# Setting PYTHONPATH to anything (the shell's `PYTHONPATH=. cmd`, `export PYTHONPATH=…`, env={"PYTHONPATH": …});
# clearing it (`PYTHONPATH=""`, a test isolating a child interpreter) is fine.
_PYTHONPATH = re.compile(r"""PYTHONPATH(?:=(?![\s"']|$)|=(["'])(?!\1)|["']\s*:\s*["'](?!["'])|["']\]\s*=\s*(?!["']{2}))""",
                         re.M)


def _is_sys_path(node: ast.AST) -> bool:
    text = ast.unparse(node)
    return text == "sys.path" or text.startswith("sys.path[")


def _code_offences(tree: ast.AST, where: str) -> list[str]:
    found = []
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "conftest":
            found.append(f"{line}: from {node.module} import ...")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("test_"):
            found.append(f"{line}: from {node.module} import ...")
        if isinstance(node, ast.ImportFrom) and node.module == "sys" and any(a.name == "path" for a in node.names):
            found.append(f"{line}: from sys import path")
        if isinstance(node, ast.Import) and any(a.name == "conftest" or a.name.startswith("test_") for a in node.names):
            found.append(f"{line}: import of a test module")
        targets = (node.targets if isinstance(node, ast.Assign) else [node.target]
                   if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        if any(_is_sys_path(t) for t in targets):
            found.append(f"{line}: {ast.unparse(node)}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _PATH_METHODS and _is_sys_path(node.func.value):
                found.append(f"{line}: {ast.unparse(node)}")
            if ast.unparse(node.func) == "site.addsitedir":
                found.append(f"{line}: {ast.unparse(node)}")
    return found


def _offences(path: Path) -> list[str]:
    """Path edits and test-module imports in a Python file or a notebook's code cells."""
    name = path.relative_to(PROJECT_ROOT).as_posix() if path.is_relative_to(PROJECT_ROOT) else path.name
    if path.suffix == ".ipynb":
        cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
        found = []
        for n, cell in enumerate(cells, 1):
            # IPython's magics and shell escapes are not Python; a `!PYTHONPATH=…` is caught by the text scan
            source = "\n".join(l for l in "".join(cell["source"]).splitlines() if not l.lstrip().startswith(("%", "!")))
            found += _code_offences(ast.parse(source), f"{name} cell {n}")
        return found
    return _code_offences(ast.parse(path.read_text(encoding="utf-8")), name)


def _pythonpath_offences(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(PROJECT_ROOT).as_posix() if path.is_relative_to(PROJECT_ROOT) else path.name
    return [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {text[m.start():m.end() + 10].splitlines()[0]}"
            for m in _PYTHONPATH.finditer(text)]


def _files(*suffixes: str) -> list[Path]:
    return sorted(p for folder in SCRIPT_FOLDERS for p in (PROJECT_ROOT / folder).rglob("*")
                  if p.suffix in suffixes and p.is_file() and "__pycache__" not in p.parts)


def test_no_path_edits_and_no_imports_between_test_modules():
    files = _files(".py", ".ipynb")
    assert len(files) > 30 and PROJECT_ROOT / "eval" / "relevance" / "check_tickets.py" in files
    offences = [o for f in files for o in _offences(f)]
    assert not offences, "\n".join(offences)


def test_no_pythonpath_in_scripts_or_docs():
    files = _files(".py", ".ipynb", ".sh", ".md", ".txt", ".toml", ".cfg", ".ini")
    files += [PROJECT_ROOT / name for name in ("README.md", "ARCHITECTURE.md", "pyproject.toml")]
    files += sorted((PROJECT_ROOT / "docs").rglob("*.md"))  # the README's pages: set-up steps live there too
    assert PROJECT_ROOT / "eval" / "relevance" / "README.md" in files
    assert PROJECT_ROOT / "docs" / "llm.md" in files and PROJECT_ROOT / "docs" / "testing.md" in files
    offences = [o for f in files if f != Path(__file__).resolve() for o in _pythonpath_offences(f)]  # not this checker
    assert not offences, "\n".join(offences)


def test_the_checks_find_each_kind(tmp_path):
    bad = tmp_path / "test_bad.py"
    bad.write_text("import sys\nsys.path.insert(0, 'eval')\nfrom conftest import X\nfrom test_other import y\n"
                   "sys.path.append('a')\nsys.path.extend(['b'])\nsys.path += ['c']\nsys.path = ['d']\n"
                   "sys.path[0:0] = ['e']\nfrom sys import path\nimport site\nsite.addsitedir('f')\n"
                   "sys.path.index('x')\n", encoding="utf-8")
    assert sorted(int(o.split(":")[1]) for o in _offences(bad)) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    notebook = tmp_path / "n.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["%matplotlib inline\n", "import sys\n",
                                                                              "sys.path.insert(0, '..')"]}]}))
    assert len(_offences(notebook)) == 1
    doc = tmp_path / "README.md"
    doc.write_text("PYTHON" "PATH=. python x.py\nexport PYTHON" "PATH=/src:$PYTHON" "PATH\nenv={'PYTHON" "PATH': 'src'}\n"
                   "os.environ['PYTHON" "PATH'] = str(root)\nenv = dict(PYTHON" "PATH=str(src))\n"
                   "env = dict(PYTHON" "PATH=\"\")\nPYTHON" "PATH= python y.py\nthe PYTHON" "PATH variable\n"
                   "{'PYTHON" "PATH': ''}\n", encoding="utf-8")
    assert [int(o.split(":")[1]) for o in _pythonpath_offences(doc)] == [1, 2, 3, 4, 5]
