"""Other customers' wordings of a case (``<dataset>.asked.jsonl``): read beside the dataset, chunked as ``asked``,
matched and never shown, and bad lines named by file and line without losing the dataset's cases."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from rag.corpus.asked import sidecar
from rag.corpus.chunk import chunk_case
from rag.corpus.parse import parse_paths
from rag.errors import ParseError
from rag.records import Turn, Wording
from rag.retrieve.hits import hit
from rag.settings import PROJECT_ROOT
from rag.store.cases import CaseRepository, decode_chunk, encode_chunk
from rag.store.chroma import ChunkStore
from rag.store.embed import make_embedder
from rag.store.ingest import ingest

TEST_DATA = Path(__file__).parent / "data"


def _dataset(tmp_path: Path) -> tuple[Path, list]:
    """A dataset folder with the three small cases, and those cases as parsed there (their ids name the file)."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(TEST_DATA / "small.md", data / "part1.md")
    return data, parse_paths([data])[0]


def _write(data: Path, lines: list[str]) -> None:
    (data / "part1.asked.jsonl").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _line(case_id: str, text: str) -> str:
    return json.dumps({"case": case_id, "text": text, "source": "test"}, ensure_ascii=False)


def test_the_sidecar_sits_beside_its_dataset_and_is_never_read_as_one(tmp_path):
    assert sidecar(Path("data/part15.md")) == Path("data/part15.asked.jsonl")
    data, cases = _dataset(tmp_path)
    _write(data, [_line(cases[0].id, "证书到期")])
    again, report = parse_paths([data])
    assert [c.id for c in again] == [c.id for c in cases] and report.files == 1


def test_wordings_become_asked_chunks_of_their_case(tmp_path):
    data, (cert, *_) = _dataset(tmp_path)
    _write(data, [_line(cert.id, "ssl证书到期了 怎么续？"), _line(cert.id, "Certificate expired, how to renew?"),
                  _line(cert.id, "ssl证书到期了 怎么续？")])  # a repeated line counts once
    cases, report = parse_paths([data])
    first = cases[0]
    assert first.id == cert.id and first.asked == (Wording("ssl证书到期了 怎么续？"), Wording("Certificate expired, how to renew?"))
    assert report.warnings == () and all(c.asked == () for c in cases[1:])
    asked = [c for c in chunk_case(first) if c.kind == "asked"]
    assert [(c.text, c.key_text, c.case_id, c.case) for c in asked] == [
        ("ssl证书到期了 怎么续？", "ssl证书到期了 怎么续？", cert.id, None),
        ("Certificate expired, how to renew?", "Certificate expired, how to renew?", cert.id, None)]
    for chunk in asked:
        assert decode_chunk(chunk.id, chunk.text, encode_chunk(chunk)) == chunk  # stored, it reads back the same
    # An edited wording is another chunk: its vector is never kept under the old id.
    edited = [c for c in chunk_case(replace(first, asked=(Wording("ssl证书到期了 怎么续费？"),))) if c.kind == "asked"]
    assert edited[0].id not in {c.id for c in asked}


def test_bad_lines_are_named_and_skipped_and_strict_stops_on_the_first(tmp_path):
    data, (cert, *_) = _dataset(tmp_path)
    _write(data, [_line(cert.id, "证书过期"), "{not json", json.dumps({"case": cert.id}), _line("0000000000000000", "刷新缓存"),
                  "[1, 2]", json.dumps({"case": cert.id, "text": "证书", "turn": "2"})])
    cases, report = parse_paths([data])
    assert len(cases) == 3 and cases[0].asked == (Wording("证书过期"),)  # the dataset and the good line are kept
    assert [w.split(":")[:2] for w in report.warnings] == [["part1.asked.jsonl", str(n)] for n in (2, 3, 4, 5, 6)]
    assert "turn must be a customer turn's number" in report.warnings[4]
    assert "not valid JSON" in report.warnings[0] and "'0000000000000000' is not in the dataset" in report.warnings[2]
    assert all(w.endswith("(line skipped)") for w in report.warnings)
    with pytest.raises(ParseError) as err:
        parse_paths([data], strict=True)
    assert (err.value.source, err.value.line) == ("part1.asked.jsonl", 2)


def test_a_sidecar_that_is_not_utf8_leaves_the_cases_as_they_are(tmp_path):
    data, _ = _dataset(tmp_path)
    (data / "part1.asked.jsonl").write_bytes(b'{"case": "x", "text": "\xff"}\n')
    cases, report = parse_paths([data])
    assert len(cases) == 3 and all(c.asked == () for c in cases)
    assert report.warnings[0].startswith("part1.asked.jsonl:1: not valid UTF-8")


def test_a_hit_on_a_wording_shows_the_case_never_the_wording(tmp_path):
    data, (cert, *_) = _dataset(tmp_path)
    _write(data, [_line(cert.id, "域名 img.example-shop.cn 的证书到期了")])
    parsed, _ = parse_paths([data])
    chunks = [c for case in parsed for c in chunk_case(case)]
    repo = CaseRepository(chunks)
    wording = next(c for c in chunks if c.kind == "asked")
    h = hit(repo, cert.id, wording.id, 0.9, {})
    assert h.chunk_id == f"{cert.id}:case" and h.chunk_text.startswith("证书过期怎么办")
    assert "example-shop" not in h.chunk_text


def test_ingest_adds_a_changed_wording_and_drops_the_old_one(make_settings, tmp_path):
    s = make_settings()
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    data, cases = _dataset(tmp_path)
    _write(data, [_line(cases[0].id, "证书到期怎么续")])
    first = ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    store = ChunkStore(s.store, e.name, create=False)
    assert [c.text for c in store.all_chunks() if c.metadata["kind"] == "asked"] == ["证书到期怎么续"]
    _write(data, [_line(cases[0].id, "证书到期了怎么重新弄")])
    second = ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    assert (second.added, second.deleted, second.chunks) == (1, 1, first.chunks)
    store = ChunkStore(s.store, e.name, create=False)
    assert [c.text for c in store.all_chunks() if c.metadata["kind"] == "asked"] == ["证书到期了怎么重新弄"]
    repo = CaseRepository.from_store(store)
    assert len(repo) == 3 and [c.kind for c in repo.chunks].count("asked") == 1


def test_a_wording_that_names_its_turn_points_the_answer_at_that_turn():
    """「不是一年吗。怎么3个月啦」 shares too few characters with 「为啥免费证书只有90天」 to be picked; a wording of that turn
    (「免费证书怎么有效期只有90天？之前是一年的」) shares many: the agent's answer to it joins what the ticket gets."""
    from rag.draft.resolution import resolve, threads
    from rag.records import CaseRecord, Dialogue

    turns = (Turn("customer", "免费证书怎么操作"), Turn("agent", "您好，在域名管理中开启免费证书即可。"),
             Turn("customer", "好的", is_filler=True), Turn("customer", "不是一年吗。怎么3个月啦"),
             Turn("agent", "CA机构目前给的免费证书只有三个月了。"))
    record = CaseRecord(id="c", title="免费证书怎么操作", product="CDN", subcategory="", scenarios=(), root_cause=None,
                        source="t.md", line=1, question="免费证书怎么操作", answer="",
                        dialogue=Dialogue("免费证书怎么操作", turns, ()))
    ticket = "为啥现在免费证书只有90天了？去年申请的时候明明是一年的"
    assert "域名管理" in resolve(record, ticket, []).text  # by its own words the first question wins
    wordings = (Wording("免费证书怎么有效期只有90天？之前记得是一年的", turn=2), Wording("证书在哪开", turn=0),
                Wording("第九个问题", turn=9))
    with_wordings = replace(record, asked=wordings)
    assert [t.asked for t in threads(record.question, turns, wordings)] == [(), (wordings[0].text,)]  # 0 and 9: nowhere
    assert "只有三个月" in resolve(with_wordings, ticket, []).text
    # Added to what the past customer's own words pick, never in place of it.
    assert "域名管理" in resolve(with_wordings, ticket, []).text
    # A short ticket naming only the product shares its few words with every wording about it: no stray thread.
    assert "三个月" not in resolve(with_wordings, "免费证书怎么手动申请？", []).text
