"""The reference backend: sentence-transformers (PyTorch) on the bundled model folder."""

from __future__ import annotations

import threading

import numpy as np

from rag.embedding.base import CachedEmbedder


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

    def _encode(self, texts: list[str], query: bool = False) -> np.ndarray:
        # One module, one thread pool (torch's is process-wide): queries and documents share it.
        with self._lock:
            return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
