"""Tests and eval scripts find the code through the installed package: no sys.path edits, no imports from
conftest or from another test module (shared helpers are fixtures in conftest.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from rag.settings import PROJECT_ROOT


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("conftest",):
            found.append(f"{path.name}:{node.lineno}: from {node.module} import ...")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("test_"):
            found.append(f"{path.name}:{node.lineno}: from {node.module} import ...")
        if isinstance(node, ast.Import) and any(a.name == "conftest" or a.name.startswith("test_") for a in node.names):
            found.append(f"{path.name}:{node.lineno}: import of a test module")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("insert", "append")
                and ast.unparse(node.func.value) == "sys.path"):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_path_edits_and_no_imports_between_test_modules():
    files = sorted((PROJECT_ROOT / "tests").glob("*.py")) + sorted((PROJECT_ROOT / "eval").glob("*.py"))
    assert len(files) > 30
    offences = [o for f in files for o in _offences(f)]
    assert not offences, "\n".join(offences)


def test_the_check_finds_each_kind(tmp_path):
    bad = tmp_path / "test_bad.py"
    bad.write_text("import sys\nsys.path.insert(0, 'eval')\nfrom conftest import X\nfrom test_other import y\n")
    assert len(_offences(bad)) == 3
