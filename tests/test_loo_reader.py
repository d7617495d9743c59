"""eval/loo_reader.py scores the committed blind reader's answers against the problem groups (docs/judge-lab.md)."""

import subprocess
import sys

from rag.settings import PROJECT_ROOT

DIR = PROJECT_ROOT / "eval" / "relevance" / "loo_reader"


def _score(answers_dir, rankings=DIR / "rankings.json"):
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "eval" / "loo_reader.py"), "score", "--rankings",
                           str(rankings), "--dir", str(answers_dir)], capture_output=True, text=True, timeout=120)


def test_the_committed_readers_answers_score_as_the_docs_say():
    out = _score(DIR)
    assert out.returncode == 0, out.stderr
    assert "67 of 67 items answered" in out.stdout
    assert "reader P@1 0.910" in out.stdout and "shipped ranking P@1 0.552" in out.stdout


def test_a_malformed_answer_line_is_named_by_file_and_line(tmp_path):
    (tmp_path / "key.json").write_text((DIR / "key.json").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "answers_a.jsonl").write_text('{"q": "Q01", "pick": "A", "second": "B"}\n{"q": "Q02", "pick"\n',
                                              encoding="utf-8")
    out = _score(tmp_path)
    assert out.returncode == 1 and "answers_a.jsonl:2: not an answer line" in out.stderr
    assert "Traceback" not in out.stderr
    missing = _score(tmp_path, tmp_path / "nope.json")
    assert missing.returncode == 1 and "nope.json: no such file" in missing.stderr
