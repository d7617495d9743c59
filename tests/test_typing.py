"""The package type-checks: mypy with the settings in pyproject.toml ([tool.mypy]) must report no error.

Its incremental cache (.mypy_cache) keeps a rerun to a few seconds; a cold run takes ~40 s of CPU."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


def test_mypy_reports_no_error() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_every_type_ignore_names_its_code_and_reason() -> None:
    bare = []
    for path in sorted((ROOT / "rag").rglob("*.py")):
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = _IGNORE.search(line)
            if m and (not m["codes"] or not re.match(r"\s+#\s*\S", m["rest"])):
                bare.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not bare, "a `# type: ignore[code]` needs `  # why` beside it:\n" + "\n".join(bare)


def test_the_reason_check_catches_a_bare_ignore() -> None:
    # the check above must be able to fail
    assert _IGNORE.search("x = f()  # type: ignore[arg-type]")["rest"] == ""
    assert not _IGNORE.search("x = f()  # type: ignore")["codes"]
