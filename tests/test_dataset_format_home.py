"""The dataset's Markdown format has one home, ``rag/corpus/format.py``: no other module in ``rag/`` spells a
section name, a field marker, a turn marker, the placeholder root cause or a category separator."""

import ast
import re
from pathlib import Path

import pytest

from rag.corpus import format as fmt

RAG = Path(__file__).resolve().parents[1] / "rag"
HOME = RAG / "corpus" / "format.py"
# (module, function) -> why a literal that looks like the format is something else there.
NOT_THE_FORMAT = {
    ("rag/evaluation/report.py", "_cell"): "a Markdown table cell's '|' written as '｜' so the table keeps its columns",
    ("rag/settings.py", "_cell"): "a Markdown table cell's '|' escaped so docs/configuration.md keeps its columns",
    ("rag/draft/writers/llm.py", "format_cases"): "the prompt's case header (编号｜产品｜子类), which the model reads, not a file",
}

_SECTION_NAMES = (fmt.QUESTION_SECTION, fmt.DIALOGUE_SECTION, fmt.ROOT_CAUSE_SECTION)
_FIELD_NAMES = "|".join((fmt.CATEGORY_FIELD, fmt.SCENARIOS_FIELD, fmt.PROVENANCE_FIELD))
# A field or turn name written as the format's marker ("**问题分类**:", r"\*\*客服", "客户**："); the bare
# words are also prose (the CLI's help names 适用场景 for the user), which is not format knowledge.
_NAMES = f"{_FIELD_NAMES}|{'|'.join(fmt.ROLES)}"
_MARKER = re.compile(rf"(?:\\?\*){{2}}\s*\(?(?:\?:)?(?:{_NAMES})|(?:{_NAMES})\)?\s*(?:\\?\*){{2}}")
# The ASCII separator is also the store's own list encoding ("|".join / .split("|")) and regex alternation;
# the copies this check removed handled the category with .partition and .replace.
_SEPARATOR_CALLS = {"partition", "rpartition", "replace"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _format_literal(text: str) -> str | None:
    """Why ``text`` belongs in the home module, or None."""
    if any(name in text for name in _SECTION_NAMES):
        return "a section name"
    if _MARKER.search(text):
        return "a field or turn marker"
    if fmt.GENERIC_ROOT_CAUSE[:8] in text:
        return "the placeholder root cause"
    if fmt.CATEGORY_SEPARATORS[0] in text:
        return "the category separator"
    return None


def _functions(tree: ast.AST) -> dict[int, str]:
    """id(node) -> the name of the innermost function holding it."""
    owner: dict[int, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else name
            owner[id(child)] = inner
            visit(child, inner)

    visit(tree, "")
    return owner


def _offenders(path: Path, module: str = "") -> list[tuple[int, str]]:
    """(line, why) for every format literal in ``path`` outside docstrings and the listed exceptions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _docstrings(tree)
    owner = _functions(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            why = _format_literal(node.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _SEPARATOR_CALLS
              and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in fmt.CATEGORY_SEPARATORS):
            why = f"a category separator handled by .{node.func.attr}"
        else:
            continue
        if why and (module, owner.get(id(node), "")) not in NOT_THE_FORMAT:
            found.append((node.lineno, why))
    return sorted(set(found))


def test_format_literals_live_only_in_the_home_module():
    scanned = [p for p in RAG.rglob("*.py") if p != HOME]
    assert len(scanned) > 40  # the scan reaches the package, not an empty folder
    offenders = [f"{p.relative_to(RAG.parent)}:{line}: {why}" for p in scanned
                 for line, why in _offenders(p, p.relative_to(RAG.parent).as_posix())]
    assert offenders == [], "use rag.corpus.format instead:\n" + "\n".join(offenders)


def test_every_exception_still_names_a_function_that_exists():
    for module, function in NOT_THE_FORMAT:
        tree = ast.parse((RAG.parent / module).read_text(encoding="utf-8"))
        assert function in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}, (module, function)


def test_the_scan_catches_the_copies_it_replaced(tmp_path):
    # The check above must be able to fail: the lines parse.py and feedback_export.py held before.
    copy = tmp_path / "copy.py"
    copy.write_text(
        '"""Doc: ### 客服解答 and 产品｜子类 are fine here."""\n'
        'def build(category, fields, sections, item):\n'
        '    product, sep, subcategory = category.partition("｜")\n'
        '    product, sep, subcategory = category.partition("|")\n'
        '    question = sections.get("问题描述", [])\n'
        '    raise ValueError("dialogue text before the first \'**客户**：\' turn")\n'
        '    name = item.product.replace("｜", " ").replace("|", " ")\n'
        '    line = r"^\\*\\*(问题分类|适用场景)\\*\\*"\n'
        '    root = "需要根据具体情况分析，建议查看文档"\n'
        '    ok = "|".join(fields) + "适用场景".strip()  # prose and the store\'s encoding are not the format\n'
        'def _cell(text):\n'
        '    return text.replace("|", "｜")\n',
        encoding="utf-8")
    assert _offenders(copy) == [
        (3, "a category separator handled by .partition"), (3, "the category separator"),
        (4, "a category separator handled by .partition"), (5, "a section name"), (6, "a field or turn marker"),
        (7, "a category separator handled by .replace"), (7, "the category separator"), (8, "a field or turn marker"),
        (9, "the placeholder root cause"), (12, "a category separator handled by .replace"),
        (12, "the category separator"),
    ]
    assert _offenders(copy, "rag/evaluation/report.py")[-1][0] == 9  # the listed exception is that function only


@pytest.mark.parametrize("value, parts", [
    ("对象存储｜上传", ("对象存储", "上传")),
    (" CDN | 缓存 ", ("CDN", "缓存")),
    ("a|b｜c", ("a|b", "c")),          # the full-width separator wins wherever it is
    ("a｜b｜c", ("a", "b｜c")),         # only the first splits
    ("账户与财务", ("账户与财务", "")),
    ("｜子类", ("", "子类")),
])
def test_a_category_splits_into_product_and_subcategory(value, parts):
    assert fmt.split_category(value) == parts


def test_the_writer_s_category_and_names_read_back():
    assert fmt.split_category(fmt.format_category("对象存储", "上传")) == ("对象存储", "上传")
    name = fmt.without_category_separators(fmt.unstructured_line("## **CDN｜加速|x**\n  y"))
    assert name == "CDN 加速 x** y" and fmt.split_category(name) == (name, "")
    assert fmt.valid_category_name("CDN (海外) & 直播") and not fmt.valid_category_name("a，b")
    assert not fmt.valid_category_name("x" * 31) and not fmt.valid_category_name("a*b")
