"""The package type-checks: mypy with the settings in pyproject.toml ([tool.mypy]) must report no error.

Its incremental cache (.mypy_cache) keeps a rerun to a few seconds; a cold run takes ~40 s of CPU."""

from __future__ import annotations

import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


def test_mypy_reports_no_error() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def _bare_ignores(path: Path) -> list[str]:
    """``# type: ignore`` comments (real comments, not strings that mention one) without a code or a reason."""
    bare = []
    with path.open("rb") as f:
        for tok in tokenize.tokenize(f.readline):
            m = _IGNORE.search(tok.string) if tok.type == tokenize.COMMENT else None
            if m and (not m["codes"] or not re.match(r"\s+#\s*\S", m["rest"])):
                name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                bare.append(f"{name}:{tok.start[0]}: {tok.line.strip()}")
    return bare


def test_every_type_ignore_names_its_code_and_reason() -> None:
    """In the package, and in the tests and scripts that mypy does not check but people read."""
    files = sorted([*(ROOT / "rag").rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "eval").rglob("*.py")])
    bare = [line for path in files for line in _bare_ignores(path)]
    assert not bare, "a `# type: ignore[code]` needs `  # why` beside it:\n" + "\n".join(bare)


def test_the_reason_check_catches_a_bare_ignore() -> None:
    # the check above must be able to fail
    assert _IGNORE.search("x = f()  # type: ignore[arg-type]")["rest"] == ""
    assert not _IGNORE.search("x = f()  # type: ignore")["codes"]


def test_the_ignore_scan_reads_comments_only(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('s = "x  # type: ignore"\nx = f()  # type: ignore[misc]\ny = g()  # type: ignore\n'
                      'z = h()  # type: ignore[misc]  # why\n', encoding="utf-8")
    assert [line.split(":")[1] for line in _bare_ignores(sample)] == ["2", "3"]
