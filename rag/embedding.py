"""Embedder seam: normalised float32 vectors from one of three backends of the same model, and a query cache.

- torch: sentence-transformers on the bundled folder (the reference).
- onnx: the same weights exported to ONNX (fused attention), run by onnxruntime; identical vectors, much faster
  single queries.
- onnx-int8: that graph with dynamically quantised int8 weights; faster still, vectors within ~0.99 cosine.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from rag.settings import EmbeddingSettings


class Embedder(Protocol):
    name: str
    dim: int
    backend: str

    def embed_batch(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...


class CachedEmbedder:
    """What every backend shares: empty input, the LRU cache of query vectors."""

    def __init__(self, name: str, dim: int, backend: str, query_cache_size: int) -> None:
        self.name = name
        self.dim = dim
        self.backend = backend
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = query_cache_size
        self._cache_lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def count_tokens(self, texts: list[str]) -> list[int]:
        raise NotImplementedError

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(self._encode(texts), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        with self._cache_lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        vector = self.embed_batch([text])[0]
        if self._cache_size:
            with self._cache_lock:
                self._cache[text] = vector
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return vector


class SentenceTransformerEmbedder(CachedEmbedder):
    def __init__(self, model_path: str, name: str, batch_size: int = 64, query_cache_size: int = 1024) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the per-load weight bar is noise in CLI output and logs
        self.model = SentenceTransformer(model_path, device="cpu")
        super().__init__(name, int(self.model.get_embedding_dimension()), "torch", query_cache_size)
        self.batch_size = batch_size
        # torch inference is not guaranteed thread-safe on one module; serialise encode calls.
        self._lock = threading.Lock()

    def count_tokens(self, texts: list[str]) -> list[int]:
        encoded = self.model.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)


_shared: dict[tuple[object, ...], CachedEmbedder] = {}
_shared_lock = threading.Lock()


def _single_threaded_blas() -> None:
    """numpy's BLAS threads spin after each call and starve the model's own threads on a small machine: a
    2000x384 matrix-vector product took 1.8 ms instead of 0.15 and the next query embedding 7 ms instead of 2
    (measured, 2 cores). The model is where parallelism pays, so BLAS gets one thread."""
    import threadpoolctl

    threadpoolctl.threadpool_limits(1, user_api="blas")


def shared_embedder(settings: EmbeddingSettings) -> CachedEmbedder:
    """Loading a model costs seconds; every Library in the process reuses one instance per configuration."""
    if not _shared:
        _single_threaded_blas()
    key = (settings.backend, settings.resolved_path(), settings.model_name, settings.batch_size,
           settings.query_cache_size)
    with _shared_lock:
        if key not in _shared:
            if settings.backend == "torch":
                _shared[key] = SentenceTransformerEmbedder(settings.resolved_path(), settings.model_name,
                                                           settings.batch_size, settings.query_cache_size)
            else:
                from rag.onnx_embedding import OnnxEmbedder

                _shared[key] = OnnxEmbedder.from_settings(settings)
        return _shared[key]
