"""The case repository, sources named by their path relative to the ingested root, the schema 1 migration,
and the retrievers' one filter value (lexical, dense and hybrid agree with ``Filters.allows``)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from rag.store.cases import SCHEMA, CaseRepository, StoreTooOldError, decode_case, encode_chunk
from rag.corpus.catalog import Catalog
from rag.corpus.chunk import chunk_case
from rag.configs import RetrievalConfig
from rag.store.embed import make_embedder
from rag.store.ingest import ingest
from rag.corpus.parse import parse_file, parse_paths
from rag.records import CaseRecord, Chunk, Dialogue, Turn
from rag.pipeline import build_retriever
from rag.retrieve import Filters, HybridRetriever
from rag.retrieve.fusion import RRF, Passthrough
from rag.retrieve.sources.dense import DenseSource
from rag.retrieve.sources.lexical import LexicalSource
from rag.store.chroma import ChunkStore

TEST_DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.usefixtures("without_index_probe")  # the probe child is tested in test_store_reload.py


@pytest.fixture
def two_folders(tmp_path):
    """Two files named part1.md in different folders: the same cases, one edited."""
    root = tmp_path / "data"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
    shutil.copy(TEST_DATA / "small.md", root / "a" / "part1.md")
    text = (TEST_DATA / "small.md").read_text(encoding="utf-8")
    (root / "b" / "part1.md").write_text(text.replace("发票怎么开", "退款怎么申请"), encoding="utf-8")
    return root


def _store(settings):
    return ChunkStore(settings.store, make_embedder(settings.embedding, cache_dir=settings.store.cache_dir).name,
                      create=False)


def test_sources_are_paths_relative_to_the_root(two_folders, tmp_path):
    cases, report = parse_paths([two_folders])
    assert report.sources == ("a/part1.md", "b/part1.md")
    assert {c.source for c in cases} == {"a/part1.md", "b/part1.md"}
    assert len({c.id for c in cases}) == 6  # the same case in two files is two cases
    # A folder inside the root keeps the root-relative names; a file outside it is named by its file name.
    assert {c.source for c in parse_paths([two_folders / "a"], root=two_folders)[0]} == {"a/part1.md"}
    loose = tmp_path / "loose.md"
    shutil.copy(TEST_DATA / "small.md", loose)
    assert {c.source for c in parse_paths([loose], root=two_folders)[0]} == {"loose.md"}
    # A file directly in the root is named as before: the corpus's case ids (and the labels) do not move.
    assert [c.id for c in parse_paths([TEST_DATA / "small.md"], root=TEST_DATA)[0]] == [
        c.id for c in parse_file(TEST_DATA / "small.md")]


def test_two_same_named_files_keep_each_others_cases(make_settings, two_folders):
    s = make_settings(ingest={"data_dir": two_folders})
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    first = ingest([two_folders], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    assert first.cases == 6 and first.deleted == 0
    assert {c.source for c in CaseRepository.from_store(_store(s))} == {"a/part1.md", "b/part1.md"}
    # Ingesting one folder again reconciles only its own file: b's cases stay.
    again = ingest([two_folders / "a"], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    assert (again.added, again.deleted) == (0, 0)
    cases = CaseRepository.from_store(_store(s))
    assert len(cases) == 6 and sum(c.title == "退款怎么申请" for c in cases) == 1
    # An edited case in b replaces only b's chunks.
    f = two_folders / "b" / "part1.md"
    f.write_text(f.read_text(encoding="utf-8").replace("退款怎么申请", "退款多久到账"), encoding="utf-8")
    changed = ingest([two_folders / "b"], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    assert changed.deleted == changed.added == 1  # the one-turn case: one case chunk
    titles = sorted(c.title for c in CaseRepository.from_store(_store(s)))
    assert titles.count("证书过期怎么办") == 2 and "退款多久到账" in titles and "退款怎么申请" not in titles


def _as_schema1(store: ChunkStore) -> None:
    """Rewrite a store the way the previous version wrote it: file names as sources, exchange chunks copying
    their case's fields, no schema key."""
    metas = store.metadata()
    case_meta = {m["case_id"]: m for m in metas.values() if m["kind"] == "case"}
    col = store._col
    ids, new = [], []
    for chunk_id, m in metas.items():
        case = dict(case_meta[m["case_id"]])
        case["source"] = str(case["source"]).rsplit("/", 1)[-1]
        old = {**case, "kind": m["kind"], "exchange": m["exchange"], "key_text": m["key_text"], "schema": None,
               "dialogue": None}
        if m["kind"] == "exchange":
            old.pop("answer"), old.pop("question")
        ids.append(chunk_id)
        new.append(old)
    col.update(ids=ids, metadatas=new)


def test_a_schema1_store_is_read_and_one_reingest_migrates_it(make_settings, two_folders, monkeypatch):
    s = make_settings(ingest={"data_dir": two_folders})
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    (two_folders / "b" / "part1.md").unlink()
    shutil.copy(TEST_DATA / "small.md", two_folders / "top.md")
    with monkeypatch.context() as m:  # the previous version: a source (and so a case id) was the file name
        m.setattr("rag.corpus.parse.source_name", lambda file, base: file.name)
        ingest([two_folders], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    current = CaseRepository.from_store(_store(s))
    _as_schema1(_store(s))
    legacy = CaseRepository.from_store(_store(s))
    # Read as it is: the same cases, except that the subfolder file is known by its file name.
    assert [(c.id, c.title, c.answer) for c in legacy] == [(c.id, c.title, c.answer) for c in current]
    assert {c.source for c in legacy} == {"part1.md", "top.md"}
    assert _retriever(_store(s), e).retrieve("证书过期", k=1).hits[0].title == "证书过期怎么办"
    # One re-ingest: a/part1.md's cases are new ids (the id hashes the source), the old ones go; top.md's
    # chunks keep their ids and vectors and get this version's metadata.
    migrated = ingest([two_folders], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    top_chunks = len([c for case in parse_file(two_folders / "top.md") for c in chunk_case(case)])
    assert migrated.migrated == top_chunks and migrated.added == migrated.deleted == migrated.chunks - top_chunks
    after = CaseRepository.from_store(_store(s))
    assert {c.source for c in after} == {"a/part1.md", "top.md"} and len(after) == 6
    assert all(m.get("schema") == SCHEMA for m in _store(s).metadata().values())
    assert all("title" not in m for m in _store(s).metadata().values() if m["kind"] == "exchange")
    assert ingest([two_folders], s.ingest, s.store, e,
                  batch_size=s.embedding.batch_size).migrated == 0  # nothing left to migrate


def test_repository_answers_every_face(make_settings, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(TEST_DATA / "small.md", data / "part1.md")
    s = make_settings()
    ingest([data], s.ingest, s.store, make_embedder(s.embedding, cache_dir=s.store.cache_dir),
           batch_size=s.embedding.batch_size)
    cases = CaseRepository.from_store(_store(s))
    parsed = parse_file(data / "part1.md")
    assert [c.id for c in cases.all()] == [c.id for c in parsed] and len(cases) == 3
    cert = cases.get(parsed[0].id)
    assert cert is not None and cert.title == "证书过期怎么办" and cert.scenarios == ("CDN", "SSL证书")
    assert cert.line == parsed[0].line and cert.source == "part1.md" and "免费证书申请" in cert.answer
    assert cases.get("0" * 16) is None
    assert "https://portal.qiniu.com/certificate/apply" in cases.known_links
    assert cases.catalog == Catalog(products=("CDN", "账户与财务"), scenarios=("CDN", "SSL证书", "财务"))
    assert len(cases.chunks) == _store(s).count()


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_turns = st.lists(st.builds(Turn, role=st.sampled_from(["customer", "agent"]), text=_text, line=st.integers(0, 10**6),
                            is_filler=st.booleans(), has_image=st.booleans()), max_size=5)
_dialogues = st.one_of(st.none(), st.builds(Dialogue, question=_text, turns=_turns.map(tuple),
                                            links=st.lists(_text, max_size=3).map(tuple)))


@given(title=_text, product=_text, scenarios=st.lists(_text.filter(lambda x: x and "|" not in x), max_size=3),
       root_cause=st.one_of(st.none(), _text.filter(bool)), line=st.integers(0, 10**6), has_links=st.booleans(),
       dialogue=_dialogues)
def test_case_records_round_trip(title, product, scenarios, root_cause, line, has_links, dialogue):
    record = CaseRecord(id="0123456789abcdef", title=title, product=product, subcategory="x", scenarios=tuple(scenarios),
                        root_cause=root_cause, source="a/b.md", line=line, question="q", answer="a", has_links=has_links,
                        dialogue=dialogue)
    meta = encode_chunk(Chunk("0123456789abcdef:case", record.id, "case", "t", "k", case=record))
    assert all(isinstance(v, (str, int, float, bool)) for v in meta.values())
    assert decode_case(meta) == record


def test_only_the_case_chunk_carries_the_dialogue():
    """Issue 12 keeps a dialogue's chunks linear in its length: the turns are stored once, not per exchange."""
    case = parse_file(TEST_DATA / "small.md")[1]
    chunks = chunk_case(case)
    metas = [encode_chunk(c) for c in chunks]
    assert len(chunks) > 1 and "dialogue" in metas[0] and all("dialogue" not in m for m in metas[1:])


def _as_schema2(store: ChunkStore) -> None:
    """Rewrite a store the way schema 2 wrote it: no dialogue on the case chunk."""
    metas = store.metadata()
    store._col.update(ids=list(metas), metadatas=[{**m, "schema": 2, "dialogue": None} for m in metas.values()])


def test_a_schema2_store_is_refused_by_evaluation_and_one_reingest_migrates_it(make_settings, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(TEST_DATA / "small.md", data / "part1.md")
    s = make_settings(ingest={"data_dir": data})
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    _as_schema2(_store(s))
    old = CaseRepository.from_store(_store(s))
    assert len(old) == 3 and all(c.dialogue is None for c in old)  # still served: drafts need no dialogue
    with pytest.raises(StoreTooOldError, match=r"3 of the store's 3 cases .* run `rag ingest`"):
        old.replay_cases()
    migrated = ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    assert migrated.added == migrated.deleted == 0 and migrated.migrated == migrated.chunks  # no re-embedding
    assert CaseRepository.from_store(_store(s)).replay_cases() == tuple(parse_paths([data], root=data)[0])
    assert ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size).migrated == 0


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    from rag.settings import load_settings

    root = tmp_path_factory.mktemp("filters")
    data = root / "data"
    data.mkdir()
    shutil.copy(TEST_DATA / "small.md", data / "part1.md")
    text = (TEST_DATA / "small.md").read_text(encoding="utf-8")
    (data / "part2.md").write_text(text.replace("CDN｜", "对象存储｜").replace("证书", "空间"), encoding="utf-8")
    s = load_settings(home=root, store={"store_path": root / "chroma", "cache_dir": root / "cache", "collection": "filters"})
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    return ChunkStore(s.store, e.name, create=False), e


@pytest.mark.parametrize("filters", [
    Filters(product="CDN"), Filters(product="对象存储"), Filters(scenarios=("SSL证书",)),
    Filters(product="账户与财务", scenarios=("财务",)), Filters(product="CDN", scenarios=("财务",)), Filters(exclude=frozenset()), Filters(product="不存在"),
])
def test_every_backend_applies_the_same_filters(small_store, filters):
    store, embedder = small_store
    cases = CaseRepository.from_store(store)
    allowed = {c.id for c in cases if filters.allows(c)}
    excluded = Filters(product=filters.product, scenarios=filters.scenarios, exclude=frozenset(sorted(allowed)[:1]))
    for f, expected in ((filters, allowed), (excluded, allowed - excluded.exclude)):
        lexical, dense = LexicalSource(cases), DenseSource(cases, store, embedder)
        for mode, sources in (("lexical", [lexical]), ("dense", [dense]), ("fused", [lexical, dense])):
            r = HybridRetriever(cases, sources, RRF(5) if len(sources) > 1 else Passthrough())
            got = set(r.retrieve("证书 空间 缓存 发票 怎么办", f, 20).case_ids)
            assert got <= expected, (mode, f)
            if mode == "dense":  # the dense index ranks every allowed case
                assert got == expected, (mode, f)


def test_each_retrieval_carries_its_own_timing(small_store):
    store, embedder = small_store
    r = _retriever(store, embedder)
    first = r.retrieve("证书过期怎么办", k=2)
    second = r.retrieve("发票怎么开", Filters(product="账户与财务"), 2)
    assert first.timing is not second.timing and first.timing.dense_ms > 0 and second.timing.match_ms > 0
    assert not hasattr(r, "last_timing")
    with pytest.raises(AttributeError):
        first.timing.dense_ms = 0.0  # type: ignore[misc]  # the assignment mypy refuses is the point


def _retriever(store: ChunkStore, embedder) -> HybridRetriever:
    return build_retriever(CaseRepository.from_store(store), store, embedder)


def test_dense_search_is_exact_over_the_stores_vectors_and_its_matrix_is_kept_on_disk(small_store, tmp_path):
    """The dense source searches the store's own vectors in process (no HNSW): its order is numpy's cosine order
    over them, and the matrix is saved, keyed by the chunks, and mapped from disk by the next process."""
    import numpy as np
    from rag.retrieve.base import Query

    store, embedder = small_store
    cases = CaseRepository.from_store(store)
    ids = [c.id for c in cases.chunks]
    stored = store.vectors(ids)
    first = DenseSource(cases, store, embedder, cache_dir=tmp_path / "dense")
    q = Query.of("证书过期怎么办")
    v = first.vector(q)[0]
    expected = sorted(ids, key=lambda i: -float(stored[i] @ v / np.linalg.norm(stored[i]) / np.linalg.norm(v)))
    got = [ids[r] for r in np.argsort(-first.similarities(q), kind="stable")]
    assert got[:5] == expected[:5]
    ranked = first.rank(Query.of("证书过期怎么办"), 3)
    assert ranked.ranked[0].chunk_id == expected[0]
    saved = list((tmp_path / "dense").glob("*.npy"))
    assert len(saved) == 1
    again = DenseSource(cases, store, embedder, cache_dir=tmp_path / "dense")
    assert isinstance(again.matrix, np.memmap) and np.array_equal(np.asarray(again.matrix), first.matrix)
    saved[0].write_bytes(b"not a matrix")  # a damaged entry is read again from the store, never trusted
    third = DenseSource(cases, store, embedder, cache_dir=tmp_path / "dense")
    assert np.allclose(third.matrix, first.matrix)
    fewer = CaseRepository([c for c in cases.chunks if c.case_id != cases.chunks[0].case_id])
    DenseSource(fewer, store, embedder, cache_dir=tmp_path / "dense").matrix  # other chunks: another key
    assert len(list((tmp_path / "dense").glob("*.npy"))) == 2


def test_a_replica_starts_from_a_local_copy_of_exactly_the_contents_it_was_made_from(tmp_path, dataset):
    """The cases' snapshot is keyed by the collection's content stamp: a second reader maps the copy, any write
    makes a new stamp (the old copy is never served), and a planted or damaged copy is refused."""
    import pickle

    import numpy as np
    from rag.settings import load_settings
    from rag.store import snapshot

    s = load_settings(store={"store_path": tmp_path / "chroma", "cache_dir": tmp_path / "cache", "collection": "snap"})
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    store = ChunkStore(s.store, e.name, create=False)
    folder = tmp_path / "cases"
    first = CaseRepository.from_store(store, snapshots=folder)
    copies = list(folder.glob("*.pickle"))
    assert len(copies) == 1 and store.stamp() is not None
    second = CaseRepository.from_store(store, snapshots=folder)
    assert [c.id for c in second.chunks] == [c.id for c in first.chunks] and second.all() == first.all()

    base = next(c for c in first.chunks if c.case is not None)
    extra = replace(base, id="zz:case", case_id="zz", case=replace(base.case, id="zz"))
    store.upsert([extra], np.ones((1, len(store.vectors([first.chunks[0].id])[first.chunks[0].id])), np.float32))
    third = CaseRepository.from_store(store, snapshots=folder)
    assert "zz:case" in {c.id for c in third.chunks}  # the write changed the stamp: read from the store again

    path = snapshot.snapshot_path(folder, store.active.collection, store.stamp(), 3)
    path.write_bytes(pickle.dumps(__import__("os").system))  # a planted file: refused, never run
    assert snapshot.load(path) is None
    path.write_bytes(b"\x80\x05damaged")
    assert {c.id for c in CaseRepository.from_store(store, snapshots=folder).chunks} == {c.id for c in third.chunks}
