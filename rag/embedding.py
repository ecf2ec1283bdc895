"""Embedder seam over sentence-transformers: batching, normalised float32 vectors, query cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import ClassVar, Protocol

import numpy as np


class Embedder(Protocol):
    name: str
    dim: int

    def embed_batch(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """Loads a local sentence-transformers folder; one instance per (path, name) per process."""

    _shared: ClassVar[dict[tuple[str, str, int, int], SentenceTransformerEmbedder]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model_path: str, name: str, batch_size: int = 64, query_cache_size: int = 1024) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the per-load weight bar is noise in CLI output and logs
        self.model = SentenceTransformer(model_path, device="cpu")
        self.name = name
        self.dim = int(self.model.get_embedding_dimension())
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = query_cache_size
        # torch inference is not guaranteed thread-safe on one module; serialise encode calls.
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, model_path: str, name: str, batch_size: int, query_cache_size: int) -> SentenceTransformerEmbedder:
        """Loading the model costs seconds; every Library in the process reuses one instance."""
        key = (model_path, name, batch_size, query_cache_size)
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(model_path, name, batch_size, query_cache_size)
            return cls._shared[key]

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        vector = self.embed_batch([text])[0]
        if self._cache_size:
            self._cache[text] = vector
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vector
