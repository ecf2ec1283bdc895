"""Embedding on a Ray cluster (`rag ingest --ray [--ray-address ADDRESS]`, the optional extra `ray`).

An Embedder like the others, so ingest does not change: chunking counts tokens with a local copy of the model,
and each `embed_batch` call is split into one shard per Ray actor; every actor loads the model once and embeds
its shard with the same backend and settings. The vectors come back to this process, which writes them as
segments of the one index (one writer), so a killed run resumes exactly as a local one does. Queries are
embedded locally: one text is not worth a round trip.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rag.embedding.base import CachedEmbedder
from rag.errors import ConfigError
from rag.settings import EmbeddingSettings


def actor_settings(settings: EmbeddingSettings, assigned: dict[str, float]) -> EmbeddingSettings:
    """The embedding settings of one Ray actor or task: it embeds with the CPUs Ray gave it, not every core of its
    machine (N actors each running N threads on one N-core machine would oversubscribe it N times), in one onnx
    session (queries and documents alike), and never with more threads than the settings ask for."""
    cpus = max(1, int(assigned.get("CPU", 1)))
    threads = min(cpus, settings.document_threads or cpus, settings.query_threads or cpus)
    return settings.model_copy(update={"document_threads": threads, "query_threads": threads})


class _Worker:
    """One model per Ray worker process."""

    def __init__(self, settings_json: str) -> None:
        import ray

        from rag.embedding.factory import make_embedder
        from rag.process import prepare_process

        prepare_process()
        assigned = ray.get_runtime_context().get_assigned_resources()
        self.embedder = make_embedder(actor_settings(EmbeddingSettings.model_validate_json(settings_json), assigned))

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed_batch(texts)


def connect(address: str | None) -> Any:
    """`ray.init` once per process: None or "local" starts a local cluster in this process, anything else is
    passed to Ray as the cluster's address ("auto", "ray://head:10001")."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'rag[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=None if address in (None, "local") else address, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    return ray


class RayEmbedder:
    """Embeds batches on `workers` Ray actors (default: one per CPU the cluster has)."""

    def __init__(self, settings: EmbeddingSettings, local: CachedEmbedder, address: str | None = None,
                 workers: int | None = None) -> None:
        self.ray = connect(address)
        self.local = local
        self.name, self.dim, self.backend = local.name, local.dim, local.backend
        count = workers or max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        worker = self.ray.remote(num_cpus=1)(_Worker)
        self.actors = [worker.remote(settings.model_dump_json()) for _ in range(count)]

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        shards = [s for s in np.array_split(np.arange(len(texts)), len(self.actors)) if len(s)]
        refs = [actor.embed.remote([texts[i] for i in shard]) for actor, shard in zip(self.actors, shards,
                                                                                       strict=False)]
        return np.ascontiguousarray(np.concatenate(self.ray.get(refs)), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.local.embed_query(text)

    def embed_for_query(self, texts: list[str]) -> np.ndarray:
        return self.local.embed_for_query(texts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.local.count_tokens(texts)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
