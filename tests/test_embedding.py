"""Embedding backends (torch, ONNX fp32, ONNX int8), the backend agreement gate on an index, and chunks kept
within the model's token limit."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from rag.chunking import chunk_document
from rag.embedding.base import usable_cores
from rag.embedding.factory import bundled_model_path, make_embedder
from rag.embedding.onnx import exported_model
from rag.errors import IndexMismatchError
from rag.library import Library
from rag.models import Document
from rag.settings import ChunkingSettings, EmbeddingSettings, Settings
from tests.conftest import SEEDS


def embedder_for(backend: str):
    return make_embedder(EmbeddingSettings(backend=backend))


@pytest.fixture(scope="module")
def chunk_texts(embedder) -> list[str]:
    texts = [p.read_text() for p in sorted(SEEDS.glob("*.txt"))]
    return [c.text for i, t in enumerate(texts) for c in chunk_document(Document(id=str(i), text=t),
                                                                          ChunkingSettings())]


@pytest.mark.slow
@pytest.mark.parametrize("backend, floor", [("onnx", 0.9999), ("onnx-int8", 0.98)])
def test_onnx_vectors_agree_with_torch(backend: str, floor: float, chunk_texts: list[str]) -> None:
    reference = embedder_for("torch").embed_batch(chunk_texts)
    vectors = embedder_for(backend).embed_batch(chunk_texts)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() >= floor - 0.01 and cosine.mean() >= floor
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)


def test_document_threads_session_gives_the_same_vectors(chunk_texts: list[str], embedder) -> None:
    """Documents may run on their own, smaller session (what `rag serve` does); the vectors must not change, and
    queries keep the full one."""
    capped = make_embedder(EmbeddingSettings(document_threads=1))
    assert capped is not embedder
    assert (capped.document_session is not capped.session) == (usable_cores() > 1)
    calls: list[str] = []

    class Counted:
        def __init__(self, session, name: str) -> None:
            self.session, self.name = session, name

        def run(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            calls.append(self.name)
            return self.session.run(*args, **kwargs)

    sessions = capped.session, capped.document_session
    capped.session, capped.document_session = Counted(sessions[0], "query"), Counted(sessions[1], "document")
    try:
        assert np.allclose(capped.embed_batch(chunk_texts[:6]), embedder.embed_batch(chunk_texts[:6]), atol=1e-5)
        assert set(calls) == {"document"}
        calls.clear()
        assert np.allclose(capped.embed_query("Q4 revenue?"), embedder.embed_query("Q4 revenue?"), atol=1e-5)
        assert np.allclose(capped.embed_for_query(chunk_texts[:2]), embedder.embed_batch(chunk_texts[:2]), atol=1e-5)
        assert set(calls) == {"query"}
    finally:
        capped.session, capped.document_session = sessions
    # More threads than cores are all of them: one session.
    oversized = make_embedder(EmbeddingSettings(document_threads=64))
    assert oversized.document_session is oversized.session


def test_server_leaves_a_core_to_queries_unless_configured() -> None:
    from rag.api.app import serving

    assert serving(Settings()).embedding.document_threads == max(1, usable_cores() - 1)
    assert serving(Settings(embedding=EmbeddingSettings(document_threads=2))).embedding.document_threads == 2


@pytest.mark.slow
def test_export_is_cached_and_reused(tmp_path) -> None:
    first = exported_model(bundled_model_path(), tmp_path, quantize=False)
    mtime = first.stat().st_mtime_ns
    assert exported_model(bundled_model_path(), tmp_path, quantize=False) == first
    assert first.stat().st_mtime_ns == mtime and not list(tmp_path.glob(".export-*"))


def test_index_records_its_backend_and_gates_others_by_agreement(tmp_path) -> None:
    torch_settings = Settings(index_dir=tmp_path / "index", embedding=EmbeddingSettings(backend="torch"))
    built = Library(torch_settings)
    assert built.add_paths([SEEDS]).ok
    assert built.snapshot().manifest.embedding_backend == "torch"
    # int8 reproduces the stored vectors closely enough: allowed, and search works.
    int8 = Library(torch_settings.model_copy(update={"embedding": EmbeddingSettings(backend="onnx-int8")}))
    assert int8.search("Calix Q4 revenue", k=3)
    # Demanding near-identical vectors refuses the same index, with the measured agreement in the message.
    strict = Library(torch_settings.model_copy(update={"embedding": EmbeddingSettings(
        backend="onnx-int8", backend_tolerance=0.9999)}))
    with pytest.raises(IndexMismatchError, match="mean cosine 0.9"):
        strict.search("Calix Q4 revenue")


def test_chunks_stay_within_the_model_token_limit(embedder) -> None:
    # Number-dense text: ~1000 characters make far more than 256 word pieces.
    text = " ".join(f"Segment {i}: 1,234.5; 2,345.6; 3,456.7; 4,567.8; 5,678.9; 6,789.0." for i in range(40))
    doc = Document(id="dense", text=text)
    settings = ChunkingSettings(target_chars=1000, max_chars=1000, overlap_chars=0)
    plain = chunk_document(doc, settings)
    assert max(embedder.count_tokens([c.text for c in plain])) > 256  # what char-only chunking would embed
    fitted = chunk_document(doc, settings, embedder.count_tokens)
    assert max(embedder.count_tokens([c.text for c in fitted])) <= 256
    assert all(text[c.start:c.end] == c.text for c in fitted) and fitted[-1].end == len(text)


def test_exact_numpy_search_matches_faiss_and_hnsw_agrees(tmp_path, embedder) -> None:
    from rag.models import SearchFilters
    from rag.settings import AnnSettings, RetrievalSettings

    hnsw_settings = Settings(index_dir=tmp_path / "index", retrieval=RetrievalSettings(
        ann=AnnSettings(method="hnsw", hnsw_min_chunks=1)))
    lib = Library(hnsw_settings, embedder=embedder)
    assert lib.add_paths([SEEDS]).ok
    snap = lib.snapshot()
    assert snap.hnsw is not None and snap.hnsw.ntotal == snap.segments[0].vectors.shape[0] == snap.chunk_count
    flat = faiss.IndexFlatIP(snap.manifest.dim)
    flat.add(np.ascontiguousarray(snap.segments[0].vectors))
    exact = Library(hnsw_settings.model_copy(update={"retrieval": RetrievalSettings()}), embedder=embedder)
    assert exact.snapshot().hnsw is None
    query = embedder.embed_query("SmartMDU deployments")
    faiss_scores, positions = flat.search(query.reshape(1, -1), 10)
    faiss_ids = snap.segments[0].rowids[positions]
    numpy_hits = exact.snapshot().dense_search(query, 10, None)
    assert [i for i, _ in numpy_hits] == list(faiss_ids[0])
    assert np.allclose([s for _, s in numpy_hits], faiss_scores[0], atol=1e-5)
    # A graph this small is searched exhaustively: HNSW returns the exact top 10.
    assert [i for i, _ in snap.dense_search(query, 10, None)] == list(faiss_ids[0])
    allowed = snap.allowed_rowids(SearchFilters(doc_ids=["001_bbe1c96cf602746c"]))
    hits = snap.dense_search(query, 5, allowed)
    assert hits and all(i in set(allowed.tolist()) for i, _ in hits)
