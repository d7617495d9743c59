from pathlib import Path

from rag.store.cases import decode_chunk, encode_chunk
from rag.corpus.chunk import chunk_case, chunk_cases
from rag.corpus.parse import parse_file, parse_paths
from rag.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "data"
TEST_DATA = Path(__file__).parent / "data"


def test_one_case_chunk_plus_one_per_exchange():
    cert, refresh, invoice = parse_file(TEST_DATA / "small.md")
    kinds = [c.kind for c in chunk_case(cert)]
    assert kinds == ["case", "exchange"]  # the second customer turn ("好的谢谢") is answered only by filler
    assert [c.kind for c in chunk_case(refresh)] == ["case", "exchange", "exchange"]
    assert [c.kind for c in chunk_case(invoice)] == ["case"]  # single exchange: the case chunk covers it


def test_chunk_text_and_metadata():
    refresh = parse_file(TEST_DATA / "small.md")[1]
    case_chunk, first, second = chunk_case(refresh)
    assert case_chunk.text.startswith("如何刷新CDN缓存\n更新了文件但是访问还是旧的")
    assert "[图片]" not in case_chunk.text
    assert "cache-refresh Tip" in case_chunk.text  # the glued word is separated from the link
    assert second.text == "刷新了多久生效\n一般5-10分钟生效"
    assert second.key_text == "如何刷新CDN缓存\n刷新了多久生效"
    case = case_chunk.case
    assert case is not None and case.id == refresh.id and case.product == "CDN" and case.subcategory == "刷新缓存问题"
    assert case.scenarios == ("CDN",) and case.root_cause is None and case.has_links is True
    assert case.source == "small.md"
    # Exchange chunks refer to their case and copy none of its fields.
    assert [(c.case_id, c.exchange, c.case) for c in (first, second)] == [(refresh.id, 1, None), (refresh.id, 2, None)]
    for chunk in (case_chunk, first, second):
        meta = encode_chunk(chunk)
        assert all(isinstance(v, (str, int, float, bool)) for v in meta.values())
        assert decode_chunk(chunk.id, chunk.text, meta) == chunk  # what is stored reads back as the same chunk
    assert len({case_chunk.id, first.id, second.id}) == 3


def test_corpus_chunk_ids_unique():
    cases, _ = parse_paths([DATA_DIR])
    chunks = chunk_cases(cases)
    assert len({c.id for c in chunks}) == len(chunks) > len(cases)
    assert {c.case_id for c in chunks} == {c.id for c in cases}
