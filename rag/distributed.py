"""Sentiment scoring as Ray tasks (`rag rescore --ray [--ray-address ADDRESS]`, the optional extra `ray`).

The job stays where it was: this process selects the documents, reads them from the index, skips cached scores,
applies the rate limit and journals every result as it comes back (rag.sentiment.batch), so a killed run
resumes and nothing is scored twice. Only `score_document` runs on the cluster, one Ray task per document;
offline models load the embedding model once per Ray worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rag.embedding.ray import connect
from rag.models import Chunk, Document
from rag.prompts import PromptTemplate
from rag.sentiment.scoring import DocumentSentiment, score_document
from rag.settings import EmbeddingSettings, LLMSettings, SentimentSettings


def _score(doc: Document, chunks: list[Chunk], template: PromptTemplate, model: str, version: str,
           llm_settings: LLMSettings, settings: SentimentSettings, job_id: str | None,
           embedding: EmbeddingSettings | None) -> DocumentSentiment:
    """Runs in a Ray worker."""
    from rag.process import prepare_process

    prepare_process()
    embedder = None
    if embedding is not None:
        import ray

        from rag.embedding.factory import make_embedder
        from rag.embedding.ray import actor_settings

        # Once per worker process (the factory shares it), with the CPUs Ray gave the task.
        assigned = ray.get_runtime_context().get_assigned_resources()
        embedder = make_embedder(actor_settings(embedding, assigned))
    return asyncio.run(score_document(doc, chunks, template, model, version, llm_settings, settings,
                                      job_id=job_id, embedder=embedder))


class RayScoring:
    """A rag.sentiment.batch.ScoreExecutor: `await executor(doc, chunks, ...)` scores on the cluster."""

    def __init__(self, embedding: EmbeddingSettings, address: str | None = None) -> None:
        self.ray = connect(address)
        self.embedding = embedding
        self.task = self.ray.remote(num_cpus=1, max_retries=0)(_score)

    async def __call__(self, doc: Document, chunks: list[Chunk], template: PromptTemplate, model: str, version: str,
                       llm_settings: LLMSettings, settings: SentimentSettings, job_id: str | None = None,
                       offline: bool = False) -> DocumentSentiment:
        ref = self.task.remote(doc, chunks, template, model, version, llm_settings, settings, job_id,
                               self.embedding if offline else None)
        try:
            return await ref
        except self.ray.exceptions.RayTaskError as exc:
            # The task's own error (ProviderError, MalformedOutputError...), so the job records it as it would
            # locally; anything else (a lost worker) stays a Ray error and fails the job.
            cause: Any = exc.cause
            if isinstance(cause, Exception):
                raise cause from None
            raise
