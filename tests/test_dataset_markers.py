"""The dataset's markers and courtesy phrases have one home, ``rag/text/markers.py``."""

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from rag.text import markers as dm

RAG = Path(__file__).resolve().parents[1] / "rag"
HOME = RAG / "text" / "markers.py"
# A safety metric never shares code with the guards it grades: rag/score/ keeps its own patterns.
INDEPENDENT = RAG / "score"


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _marker_literal(text: str) -> str | None:
    """Why ``text`` belongs in the home module, or None."""
    if "REDACTED" in text:
        return "a redaction token"
    if re.search(r"图片\\?\]", text):  # written "[图片]" or escaped in a pattern
        return "the image marker"
    if "您好" in text or "你好" in text:
        return "a Chinese greeting"
    if "|" in text and re.search(r"\bhello\b", text, re.I):
        return "a greeting pattern"
    return None


def _offenders(path: Path) -> list[tuple[int, str]]:
    """(line, why) for every string literal in ``path`` that is not a docstring and holds a marker."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _docstrings(tree)
    return [(node.lineno, why) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and (why := _marker_literal(node.value))]


def test_marker_and_greeting_literals_live_only_in_the_home_module():
    scanned = [p for p in RAG.rglob("*.py") if p != HOME and INDEPENDENT not in p.parents]
    assert len(scanned) > 40  # the scan reaches the package, not an empty folder
    offenders = [f"{p.relative_to(RAG.parent)}:{line}: {why}" for p in scanned for line, why in _offenders(p)]
    assert offenders == [], "use rag.text.markers instead:\n" + "\n".join(offenders)


def test_the_scan_catches_a_copied_pattern(tmp_path):
    # The check above must be able to fail: a module with the copies this issue removed.
    copy = tmp_path / "copy.py"
    copy.write_text('"""Doc: [REDACTED_IP] is fine here."""\nimport re\n'
                    'A = re.compile(r"\\[REDACTED_[A-Z_]+\\]|\\[图片\\]")\n'
                    'B = re.compile(r"\\[图片\\]")\n'
                    'C = re.compile(r"^(您好|你好)")\n'
                    'D = re.compile(r"^(hello|hi)", re.I)\n', encoding="utf-8")
    assert sorted(_offenders(copy)) == [(3, "a redaction token"), (4, "the image marker"),
                                        (5, "a Chinese greeting"), (6, "a greeting pattern")]


def test_score_keeps_its_own_patterns():
    # The exception above is real: nothing under rag/score/ reads the home module.
    for p in INDEPENDENT.rglob("*.py"):
        assert "text.markers" not in p.read_text(encoding="utf-8"), p


def test_the_home_module_imports_nothing_of_the_package():
    # rag.corpus.parse imports it; anything downstream imported here would turn the flow around.
    tree = ast.parse(HOME.read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "re"}


_KIND = st.from_regex(r"[A-Z]+(_[A-Z]+){0,2}", fullmatch=True)
_TEXT = st.text(alphabet="证书域名abcXYZ_[]图片您好 ，。!REDACT", max_size=30)


@given(_KIND, _TEXT, _TEXT)
def test_every_written_token_is_read_back_as_one_token(kind, before, after):
    token = dm.redaction_token(kind)
    assert token == f"[REDACTED_{kind}]"
    assert dm.REDACTION_TOKEN.fullmatch(token)
    assert dm.REDACTION_TOKEN_AT_END.search(before + token)
    assert token in [m.group(0) for m in dm.REDACTION_TOKEN.finditer(before + token + after)]
    assert dm.REDACTION_PREFIX in token and dm.REDACTION_WORD in token
    # The lexical index sees neither the token nor the image marker.
    cleaned = dm.PLACEHOLDERS.sub(" ", f"{before} {token} {dm.IMAGE_MARKER} {after}")
    assert token not in cleaned.replace(before, "").replace(after, "")


@pytest.mark.parametrize("kind", ["", "email", "EMAIL]", "A__B", "_A", "A B", "邮箱"])
def test_a_malformed_kind_is_refused_naming_it(kind):
    with pytest.raises(ValueError, match="redaction kind"):
        dm.redaction_token(kind)


@pytest.mark.parametrize("text, rest", [
    ("您好，亲，证书过期了", "证书过期了"),
    ("  Hello! 您好。请刷新缓存", "请刷新缓存"),
    ("hi 这边看一下", "这边看一下"),
    ("证书您好", "证书您好"),          # only at the start
])
def test_an_answer_loses_every_leading_greeting(text, rest):
    assert dm.ANSWER_GREETING.sub("", text) == rest


@pytest.mark.parametrize("text, rest", [
    ("您好，证书过期了", "证书过期了"),
    ("亲，证书过期了", "亲，证书过期了"),    # "亲" is the agents' word: a ticket keeps it (measured without)
    ("您好，您好，证书", "您好，证书"),       # one greeting, as the query rewrite was measured
])
def test_a_ticket_loses_one_leading_greeting(text, rest):
    assert dm.TICKET_GREETING.sub("", text) == rest


def test_thanks_and_the_image_marker():
    assert dm.THANKS_PHRASE.sub("", "谢谢！！麻烦了。辛苦了") == ""
    assert dm.strip_image_markers(f"截图{dm.IMAGE_MARKER}如下{dm.IMAGE_MARKER}") == "截图如下"
    assert dm.IMAGE.fullmatch("[图片]") and not dm.IMAGE.search("图片")
    assert dm.REPLY_GREETING.startswith(dm.POLITE_GREETING)


@given(st.text(alphabet="您好你好亲hiHELLO，,！!。 证书abc", max_size=25))
def test_greeting_patterns_only_ever_cut_a_prefix(text):
    for pattern in (dm.ANSWER_GREETING, dm.TICKET_GREETING):
        rest = pattern.sub("", text, count=1)
        assert text.endswith(rest)
