"""The one-way flow of ``rag/`` holds: import-linter's contracts in ``pyproject.toml`` (a layers contract for the
flow, a forbidden contract for the grader's independence) are kept, every package and root module of ``rag/``
sits in a layer, and the root stays small.

``lint-imports`` reads the imports with grimp: imports inside functions count, and so do imports under
``TYPE_CHECKING`` (``exclude_type_checking_imports = false``), so no upward edge hides anywhere.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_ROOT_MODULES = 12


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def _lint(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(config)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_the_import_contracts_are_kept():
    result = _lint(ROOT / "pyproject.toml", ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_every_package_and_root_module_sits_in_a_layer():
    # A layers contract says nothing about a module it does not name: a new package must be placed.
    named = {name.strip() for layer in _contracts()["flow"]["layers"] for name in layer.replace(":", "|").split("|")}
    tops = {f"rag.{p.name}" for p in (ROOT / "rag").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    tops |= {f"rag.{p.stem}" for p in (ROOT / "rag").glob("*.py") if p.stem != "__init__"}
    assert tops - named == set(), "place these in pyproject.toml's layers contract (and ARCHITECTURE.md)"
    assert named - tops == set(), "the layers contract names modules that do not exist"


def test_the_root_of_rag_stays_small():
    modules = sorted(p.name for p in (ROOT / "rag").glob("*.py"))
    assert len(modules) <= MAX_ROOT_MODULES, modules


def test_architecture_md_names_every_layer():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for layer in _contracts()["flow"]["layers"]:
        for name in layer.split("|"):
            module = name.strip().removeprefix("rag.")
            assert f"`{module}" in text, f"ARCHITECTURE.md does not mention {name.strip()}"


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A three-module package whose imports break each kind of contract, to show the checks are live."""
    root = tmp_path_factory.mktemp("toy")
    pkg = root / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from toy import high  # a lazy upward import\n")
    (pkg / "mid.py").write_text("from toy import low\n")
    (pkg / "high.py").write_text("from toy import mid\n")
    (pkg / "grader.py").write_text("from toy import high\n")
    return root


def _toy_config(root: Path, contract: str) -> Path:
    path = root / "contracts.toml"
    path.write_text(f'[tool.importlinter]\nroot_package = "toy"\n\n[[tool.importlinter.contracts]]\n{contract}\n')
    return path


def test_a_lazy_upward_import_breaks_the_layers(toy):
    config = _toy_config(toy, 'name = "flow"\ntype = "layers"\nlayers = ["toy.grader", "toy.high", "toy.mid", "toy.low"]')
    result = _lint(config, toy)
    assert result.returncode != 0 and "toy.low -> toy.high" in result.stdout, result.stdout


def test_an_indirect_import_breaks_a_forbidden_contract(toy):
    # grader -> high -> mid -> low: the forbidden contract sees the chain, not only direct imports.
    config = _toy_config(toy, 'name = "grader"\ntype = "forbidden"\nsource_modules = ["toy.grader"]\n'
                              'forbidden_modules = ["toy.low"]')
    result = _lint(config, toy)
    assert result.returncode != 0 and "toy.grader -> toy.high" in result.stdout, result.stdout
