"""Batch sentiment scoring: many documents at once through litellm, with a concurrency bound, a rate limit,
backoff on transient errors (in rag.sentiment.score_document), a journal that makes a killed run resumable, and
a cache that makes an unchanged rerun free."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from rag.errors import ConfigError, RagError
from rag.index import Snapshot
from rag.models import DocumentInfo, SearchFilters
from rag.prompts import PromptTemplate
from rag.sentiment.scoring import DocumentSentiment, score_document, scorer_version
from rag.sentiment.store import RescoreJob, SentimentStore, now
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.embedding import Embedder

Progress = Callable[[RescoreJob], None]
# Runs score_document somewhere else (rag.distributed: Ray tasks): same arguments, same result or error.
ScoreExecutor = Callable[..., Awaitable[DocumentSentiment]]


class RescoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="litellm model; default: the configured sentiment model.")
    prompt: str | None = Field(None, description="Prompt template name, e.g. sentiment.v2; default: configured.")
    filters: SearchFilters = Field(default_factory=SearchFilters, description="Which documents (default: all).")
    concurrency: int | None = Field(None, ge=1, le=256, description="Documents in flight at once.")
    requests_per_second: float | None = Field(None, gt=0, description="Rate limit on model calls.")


class RateLimiter:
    """Spaces calls at least 1/rate apart (no bursts), shared by all workers of a job."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            wait = self._next - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next = max(self._next, time.monotonic()) + self.interval


class Scorer:
    """Scores documents of one snapshot with one model + prompt, journaling into one store."""

    def __init__(self, settings: Settings, store: SentimentStore, snapshot: Snapshot, model: str,
                 template: PromptTemplate, embedder: Callable[[], Embedder] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.snapshot = snapshot
        self.model = model
        self.template = template
        self.embedder = embedder  # for offline models only; loaded on the first real call, not for cached scores
        self.version = scorer_version(model)
        self.executor: ScoreExecutor | None = None  # None: score in this process

    def cached(self, info: DocumentInfo) -> DocumentSentiment | None:
        return self.store.lookup(info.id, info.content_hash, self.model, self.template.hash, self.version)

    async def score(self, info: DocumentInfo, limiter: RateLimiter | None = None,
                    job: RescoreJob | None = None) -> DocumentSentiment:
        doc = await asyncio.to_thread(self.snapshot.get_document, info.id)
        chunks = await asyncio.to_thread(self.snapshot.chunks_of, info.id)
        if self.executor is not None:
            if limiter:
                await limiter.acquire()  # the limiter lives here: one call per document is budgeted here
            return await self.executor(doc, chunks, self.template, self.model, self.version, self.settings.llm,
                                       self.settings.sentiment, job_id=job.id if job else None,
                                       offline=self.embedder is not None)
        return await score_document(doc, chunks, self.template, self.model, self.version, self.settings.llm,
                                    self.settings.sentiment, before_call=limiter.acquire if limiter else None,
                                    job_id=job.id if job else None,
                                    embedder=self.embedder() if self.embedder else None)

    async def run(self, docs: list[DocumentInfo], job: RescoreJob, concurrency: int, limiter: RateLimiter,
                  progress: Progress | None = None, journal: bool = True) -> RescoreJob:
        """Score every document without a cached score; each score is stored at once (with the job's progress
        when `journal`; on-demand scoring of a few documents keeps its job in memory only). Failures are
        recorded, never raised; `job.failures` names them."""
        pending: asyncio.Queue[DocumentInfo] = asyncio.Queue()
        for info in docs:
            if self.cached(info) is not None:
                job.cached += 1
            else:
                pending.put_nowait(info)
        journaled = job if journal else None

        def save() -> None:
            if journal:
                self.store.save_job(job)

        save()
        if progress:
            progress(job)

        async def worker() -> None:
            while True:
                try:
                    info = pending.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    record = await self.score(info, limiter, job)
                except ConfigError:
                    raise  # no key, unknown model...: every other document would fail the same way; stop the job
                except RagError as exc:  # provider down after retries, malformed output, document gone
                    job.failed += 1
                    if len(job.failures) < 20:
                        job.failures.append({"doc_id": info.id, "error": str(exc)})
                    self.store.put_failure(info.id, info.content_hash, self.model, self.template.hash, str(exc),
                                           journaled)
                else:
                    job.scored += 1
                    self.store.put(record, journaled)
                if progress:
                    progress(job)

        workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, max(1, pending.qsize())))]
        try:
            await asyncio.gather(*workers)
        except BaseException as exc:
            for task in workers:
                task.cancel()
            job.status = "interrupted" if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt) else "failed"
            job.error = f"{type(exc).__name__}: {exc}"
            job.finished_at = now()
            save()
            raise
        job.status = "done"
        job.finished_at = now()
        save()
        if progress:
            progress(job)
        return job


def new_job(model: str, template: PromptTemplate, filters: SearchFilters, total: int) -> RescoreJob:
    stamp = now()
    return RescoreJob(id=f"job-{uuid.uuid4().hex[:12]}", status="running", model=model, prompt=template.name,
                     prompt_hash=template.hash, filters=filters.model_dump(mode="json", exclude_none=True),
                     total=total, created_at=stamp, updated_at=stamp)


class RescoreRun(BaseModel):
    """A prepared job: its row is already in the journal, so its id can be reported before it runs."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    scorer: Scorer
    docs: list[DocumentInfo]
    job: RescoreJob
    concurrency: int
    limiter: RateLimiter

    async def run(self, progress: Progress | None = None) -> RescoreJob:
        return await self.scorer.run(self.docs, self.job, self.concurrency, self.limiter, progress)
