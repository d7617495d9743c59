import multiprocessing
import shutil
from pathlib import Path

import pytest

from rag.cases import CaseRepository
from rag.configs import EmbeddingConfig, IngestConfig, StoreConfig
from rag.embed import make_embedder
from rag.errors import EmbeddingMismatchError, StoreLockedError
from rag.ingest import ingest
from rag.store import ChunkStore, acquire, ingest_lock

TEST_DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.usefixtures("without_index_probe")  # the probe child is tested in test_store_reload.py


def _store(settings):
    return ChunkStore(StoreConfig.from_settings(settings), make_embedder(EmbeddingConfig.from_settings(settings)).name, create=False)


def test_reingest_is_idempotent(make_settings, dataset):
    s = make_settings()
    e = make_embedder(EmbeddingConfig.from_settings(s))
    first = ingest([dataset], IngestConfig.from_settings(s), e)
    assert (first.cases, first.added, first.deleted) == (3, first.chunks, 0)
    before = {c.id: (c.text, c.metadata) for c in _store(s).all_chunks()}
    second = ingest([dataset], IngestConfig.from_settings(s), e)
    assert (second.added, second.deleted, second.unchanged) == (0, 0, first.chunks)
    after = {c.id: (c.text, c.metadata) for c in _store(s).all_chunks()}
    assert after == before


def test_changed_case_replaces_its_chunks_without_orphans(make_settings, dataset):
    s = make_settings()
    e = make_embedder(EmbeddingConfig.from_settings(s))
    ingest([dataset], IngestConfig.from_settings(s), e)
    old_ids = _store(s).ids()
    f = dataset / "part1.md"
    f.write_text(f.read_text(encoding="utf-8").replace("一般5-10分钟生效", "一般10分钟左右生效"), encoding="utf-8")
    summary = ingest([dataset], IngestConfig.from_settings(s), e)
    new = _store(s)
    assert summary.deleted == 3 and summary.added == 3  # the refresh case: one case chunk, two exchanges
    texts = [c.text for c in new.all_chunks()]
    assert not any("一般5-10分钟生效" in t for t in texts)
    assert any("一般10分钟左右生效" in t for t in texts)
    assert new.count() == len(old_ids)
    assert len(CaseRepository.from_store(new)) == 3


def test_removed_case_and_pruned_file(make_settings, dataset):
    s = make_settings()
    e = make_embedder(EmbeddingConfig.from_settings(s))
    shutil.copy(TEST_DATA / "small.md", dataset / "part2.md")
    ingest([dataset], IngestConfig.from_settings(s), e)
    assert len({c.source for c in CaseRepository.from_store(_store(s))}) == 2
    (dataset / "part2.md").unlink()
    kept = ingest([dataset], IngestConfig.from_settings(s), e)  # without --prune a vanished file's cases stay
    assert kept.deleted == 0
    pruned = ingest([dataset], IngestConfig.from_settings(s), e, prune=True)
    assert pruned.deleted > 0
    assert {c.source for c in CaseRepository.from_store(_store(s))} == {"part1.md"}


def test_a_second_ingest_is_refused_while_one_holds_the_lock(make_settings, dataset):
    s = make_settings()
    lock = ingest_lock(StoreConfig.from_settings(s))
    acquire(lock)
    try:
        with pytest.raises(StoreLockedError, match="another ingest"):
            ingest([dataset], IngestConfig.from_settings(s), make_embedder(EmbeddingConfig.from_settings(s)))
    finally:
        lock.release()
    assert ingest([dataset], IngestConfig.from_settings(s), make_embedder(EmbeddingConfig.from_settings(s))).cases == 3


def _ingest_in_process(settings, dataset, queue):
    from rag.configs import EmbeddingConfig as Config, IngestConfig
    from rag.embed import make_embedder as mk
    from rag.ingest import ingest as run

    try:
        summary = run([dataset], IngestConfig.from_settings(settings), mk(Config.from_settings(settings)), wait_for_lock=120)
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
    ingest([dataset], IngestConfig.from_settings(s), make_embedder(EmbeddingConfig.from_settings(s)))
    with pytest.raises(EmbeddingMismatchError, match="was built with embedding model"):
        ChunkStore(StoreConfig.from_settings(s), "openai/text-embedding-3-small")


def test_metadata_round_trips_flat(make_settings, dataset):
    s = make_settings()
    ingest([dataset], IngestConfig.from_settings(s), make_embedder(EmbeddingConfig.from_settings(s)))
    case = next(c for c in CaseRepository.from_store(_store(s)) if c.title == "证书过期怎么办")
    assert case.root_cause == "证书过期，需要重新申请或上传新证书"
    assert case.has_links is True
    assert case.scenarios == ("CDN", "SSL证书")
    assert all(isinstance(v, (str, int, float, bool)) for c in _store(s).all_chunks() for v in c.metadata.values())


def test_an_unreadable_file_never_loses_its_stored_cases(make_settings, dataset):
    s = make_settings()
    e = make_embedder(EmbeddingConfig.from_settings(s))
    first = ingest([dataset], IngestConfig.from_settings(s), e)
    f = dataset / "part1.md"
    f.write_bytes(f.read_bytes() + "\n## 坏\n".encode("gbk"))  # the whole file is now not UTF-8
    summary = ingest([dataset], IngestConfig.from_settings(s), e, prune=True)
    assert summary.skipped == 1 and "not valid UTF-8" in summary.warnings[0]
    assert summary.deleted == 0
    assert _store(s).count() == first.chunks


def test_a_retriever_built_before_a_new_ingest_keeps_working(make_settings, dataset):
    from rag.retrieve import CaseRetriever

    s = make_settings()
    e = make_embedder(EmbeddingConfig.from_settings(s))
    ingest([dataset], IngestConfig.from_settings(s), e)
    retriever = CaseRetriever(_store(s), e)
    new = dataset / "part2.md"
    new.write_text((TEST_DATA / "small.md").read_text(encoding="utf-8").replace("发票怎么开", "退款怎么申请"), encoding="utf-8")
    ingest([dataset], IngestConfig.from_settings(s), e)
    hits = retriever.retrieve("退款怎么申请", k=5).hits
    assert hits and all(h.title for h in hits)


def test_rebuild_drops_and_refills_the_collection(make_settings, dataset):
    s = make_settings()
    e = make_embedder(EmbeddingConfig.from_settings(s))
    first = ingest([dataset], IngestConfig.from_settings(s), e)
    rebuilt = ingest([dataset], IngestConfig.from_settings(s), e, rebuild=True)
    assert rebuilt.added == first.chunks and rebuilt.deleted == 0
    assert _store(s).count() == first.chunks
