import multiprocessing
import shutil
from pathlib import Path

import pytest

from rag.store.cases import CaseRepository
from rag.store.embed import make_embedder
from rag.errors import EmbeddingMismatchError, StoreLockedError
from rag.store.ingest import ingest
from rag.store.chroma import ChunkStore, acquire, ingest_lock

TEST_DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.usefixtures("without_index_probe")  # the probe child is tested in test_store_reload.py


def _store(settings):
    return ChunkStore(settings.store, make_embedder(settings.embedding, cache_dir=settings.store.cache_dir).name,
                      create=False)


def test_reingest_is_idempotent(make_settings, dataset):
    s = make_settings()
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    first = ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    assert (first.cases, first.added, first.deleted) == (3, first.chunks, 0)
    before = {c.id: (c.text, c.metadata) for c in _store(s).all_chunks()}
    second = ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    assert (second.added, second.deleted, second.unchanged) == (0, 0, first.chunks)
    after = {c.id: (c.text, c.metadata) for c in _store(s).all_chunks()}
    assert after == before


def test_changed_case_replaces_its_chunks_without_orphans(make_settings, dataset):
    s = make_settings()
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    old_ids = _store(s).ids()
    f = dataset / "part1.md"
    f.write_text(f.read_text(encoding="utf-8").replace("一般5-10分钟生效", "一般10分钟左右生效"), encoding="utf-8")
    summary = ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    new = _store(s)
    assert summary.deleted == 3 and summary.added == 3  # the refresh case: one case chunk, two exchanges
    texts = [c.text for c in new.all_chunks()]
    assert not any("一般5-10分钟生效" in t for t in texts)
    assert any("一般10分钟左右生效" in t for t in texts)
    assert new.count() == len(old_ids)
    assert len(CaseRepository.from_store(new)) == 3


def test_removed_case_and_pruned_file(make_settings, dataset):
    s = make_settings()
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    shutil.copy(TEST_DATA / "small.md", dataset / "part2.md")
    ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    assert len({c.source for c in CaseRepository.from_store(_store(s))}) == 2
    (dataset / "part2.md").unlink()
    kept = ingest([dataset], s.ingest, s.store, e,
                  batch_size=s.embedding.batch_size)  # without --prune a vanished file's cases stay
    assert kept.deleted == 0
    pruned = ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size, prune=True)
    assert pruned.deleted > 0
    assert {c.source for c in CaseRepository.from_store(_store(s))} == {"part1.md"}


def test_a_second_ingest_is_refused_while_one_holds_the_lock(make_settings, dataset):
    s = make_settings()
    lock = ingest_lock(s.store)
    acquire(lock)
    try:
        with pytest.raises(StoreLockedError, match="another ingest"):
            ingest([dataset], s.ingest, s.store, make_embedder(s.embedding, cache_dir=s.store.cache_dir),
                   batch_size=s.embedding.batch_size)
    finally:
        lock.release()
    assert ingest([dataset], s.ingest, s.store, make_embedder(s.embedding, cache_dir=s.store.cache_dir),
                  batch_size=s.embedding.batch_size).cases == 3


def _ingest_in_process(settings, dataset, queue):
    from rag.store.embed import make_embedder as mk
    from rag.store.ingest import ingest as run

    try:
        summary = run([dataset], settings.ingest, settings.store, mk(settings.embedding, cache_dir=settings.store.cache_dir),
                      batch_size=settings.embedding.batch_size, wait_for_lock=120)
        queue.put(("ok", summary.added))
    except Exception as exc:  # report, don't hang the parent
        queue.put(("error", repr(exc)))


@pytest.mark.e2e  # two spawned interpreters, each importing the whole stack
def test_two_concurrent_ingests_leave_a_consistent_store(make_settings, dataset):
    s = make_settings()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ingest_in_process, args=(s, dataset, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    results = sorted(queue.get(timeout=5) for _ in procs)
    assert [r[0] for r in results] == ["ok", "ok"], results
    store = _store(s)
    assert sorted(r[1] for r in results)[0] == 0  # the second one found everything already there
    assert store.count() == sum(r[1] for r in results)


def test_store_refuses_another_embedding_model(make_settings, dataset):
    s = make_settings()
    ingest([dataset], s.ingest, s.store, make_embedder(s.embedding, cache_dir=s.store.cache_dir),
           batch_size=s.embedding.batch_size)
    with pytest.raises(EmbeddingMismatchError, match="was built with embedding model"):
        ChunkStore(s.store, "openai/text-embedding-3-small")


def test_metadata_round_trips_flat(make_settings, dataset):
    s = make_settings()
    ingest([dataset], s.ingest, s.store, make_embedder(s.embedding, cache_dir=s.store.cache_dir),
           batch_size=s.embedding.batch_size)
    case = next(c for c in CaseRepository.from_store(_store(s)) if c.title == "证书过期怎么办")
    assert case.root_cause == "证书过期，需要重新申请或上传新证书"
    assert case.has_links is True
    assert case.scenarios == ("CDN", "SSL证书")
    assert all(isinstance(v, (str, int, float, bool)) for c in _store(s).all_chunks() for v in c.metadata.values())


def test_an_unreadable_file_never_loses_its_stored_cases(make_settings, dataset):
    s = make_settings()
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    first = ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    f = dataset / "part1.md"
    f.write_bytes(f.read_bytes() + "\n## 坏\n".encode("gbk"))  # the whole file is now not UTF-8
    summary = ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size, prune=True)
    assert summary.skipped == 1 and "not valid UTF-8" in summary.warnings[0]
    assert summary.deleted == 0
    assert _store(s).count() == first.chunks


def test_a_retriever_built_before_a_new_ingest_keeps_working(make_settings, dataset):
    from rag.pipeline import build_retriever
    from rag.store.cases import CaseRepository

    s = make_settings()
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    retriever = build_retriever(CaseRepository.from_store(_store(s)), _store(s), e)
    new = dataset / "part2.md"
    new.write_text((TEST_DATA / "small.md").read_text(encoding="utf-8").replace("发票怎么开", "退款怎么申请"), encoding="utf-8")
    ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    hits = retriever.retrieve("退款怎么申请", k=5).hits
    assert hits and all(h.title for h in hits)


def test_rebuild_drops_and_refills_the_collection(make_settings, dataset):
    s = make_settings()
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    first = ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    rebuilt = ingest([dataset], s.ingest, s.store, e, batch_size=s.embedding.batch_size, rebuild=True)
    assert rebuilt.added == first.chunks and rebuilt.deleted == 0
    assert _store(s).count() == first.chunks
