"""The embedder seam: normalised float32 vectors and an LRU cache of query vectors, shared by every backend."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Protocol

import numpy as np


def usable_cores() -> int:
    """CPUs this process may run on (a container's or taskset's limit, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Embedder(Protocol):
    name: str
    dim: int
    backend: str

    def embed_batch(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def embed_for_query(self, texts: list[str]) -> np.ndarray: ...

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

    def _encode(self, texts: list[str], query: bool = False) -> np.ndarray:
        raise NotImplementedError

    def count_tokens(self, texts: list[str]) -> list[int]:
        raise NotImplementedError

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Documents: bulk work, on the document threads."""
        return self._vectors(texts, query=False)

    def embed_for_query(self, texts: list[str]) -> np.ndarray:
        """Texts embedded while a question waits (e.g. sentences of retrieved passages), on the query threads;
        not cached."""
        return self._vectors(texts, query=True)

    def _vectors(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(self._encode(texts, query), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        with self._cache_lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        vector = self.embed_for_query([text])[0]
        if self._cache_size:
            with self._cache_lock:
                self._cache[text] = vector
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return vector
