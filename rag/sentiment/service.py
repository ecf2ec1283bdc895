"""Sentiment as the library offers it: one document's score or a ticker's roll-up (missing scores computed on
request through the same `Scorer.run` that batch rescoring uses), stored history, and rescoring jobs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rag import llm
from rag.errors import BadInputError, NotFoundError, ProviderError
from rag.index import Snapshot
from rag.models import DocumentInfo, SearchFilters
from rag.prompts import load_prompt
from rag.sentiment.batch import RateLimiter, RescoreRequest, RescoreRun, Scorer, new_job
from rag.sentiment.relative import Baseline, RelativeTickerSentiment, TrendPoint, trend, with_baselines
from rag.sentiment.scoring import DocumentSentiment, rollup
from rag.sentiment.store import RescoreJob, SentimentStore
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.embedding import Embedder


def sentiment_model(settings: Settings, model: str | None = None) -> str:
    """The model that scores: the caller's, else RAG_LLM__SENTIMENT__MODEL (or its old alias
    RAG_SENTIMENT__MODEL), else RAG_LLM__MODEL when it can score, else the offline classifier (the default answer
    model, local/extractive, cannot)."""
    return llm.resolve(settings.llm, "sentiment", model).model


class SentimentService:
    def __init__(self, settings: Settings, snapshot: Callable[[], Snapshot],
                 embedder: Callable[[], Embedder]) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.embedder = embedder
        self._store: SentimentStore | None = None

    @property
    def store(self) -> SentimentStore:
        if self._store is None:
            self._store = SentimentStore(Path(self.settings.index_dir) / "sentiment.sqlite")
        return self._store

    def scorer(self, model: str | None, prompt: str | None) -> Scorer:
        model = llm.prepare(self.settings.llm, "sentiment", model).model
        template = load_prompt(self.settings.prompts_dir, prompt or self.settings.sentiment.prompt)
        return Scorer(self.settings, self.store, self.snapshot(), model, template,
                      self.embedder if llm.is_offline(model) else None)

    def prepare_rescore(self, request: RescoreRequest) -> RescoreRun:
        """Select the documents and journal a new job; `await run.run()` does the work."""
        scorer = self.scorer(request.model, request.prompt)
        docs = scorer.snapshot.list_documents(request.filters)
        if not docs:
            raise BadInputError("no documents match the filters")
        job = new_job(scorer.model, scorer.template, request.filters, len(docs))
        self.store.save_job(job)
        configured = self.settings.sentiment
        return RescoreRun(scorer=scorer, docs=docs, job=job, concurrency=request.concurrency or configured.concurrency,
                          limiter=RateLimiter(request.requests_per_second or configured.requests_per_second))

    async def _scores(self, scorer: Scorer, docs: list[DocumentInfo]) -> list[DocumentSentiment]:
        """Stored scores, computing (and storing) the missing ones; a failure names its documents."""
        job = new_job(scorer.model, scorer.template, SearchFilters(), len(docs))
        configured = self.settings.sentiment
        job = await scorer.run(docs, job, configured.concurrency, RateLimiter(configured.requests_per_second),
                               journal=False)
        if job.failures:
            named = "; ".join(f"{f['doc_id']}: {f['error']}" for f in job.failures[:3])
            more = f" (and {job.failed - 3} more)" if job.failed > 3 else ""
            raise ProviderError(f"{job.failed} of {len(docs)} documents could not be scored with {scorer.model}: "
                                f"{named}{more}")
        scores = [scorer.cached(info) for info in docs]
        return [s for s in scores if s is not None]

    async def adocument(self, doc_id: str, model: str | None = None, prompt: str | None = None) -> DocumentSentiment:
        scorer = self.scorer(model, prompt)
        docs = scorer.snapshot.list_documents(SearchFilters(doc_ids=[doc_id]))
        if not docs:
            raise NotFoundError(f"no document with id {doc_id!r}")
        return (await self._scores(scorer, docs))[0]

    async def aticker(self, ticker: str, model: str | None = None, prompt: str | None = None,
                      baseline: Baseline = "corpus") -> RelativeTickerSentiment:
        """The roll-up, with the newest document against the ticker's own history and its peers (the corpus's
        documents already scored by the same model + prompt: `rag rescore` scores them all), and the trend."""
        ticker = ticker.strip().upper()
        if not ticker:
            raise BadInputError("ticker is empty")
        if baseline not in ("corpus", "sector"):
            raise BadInputError(f"baseline must be corpus or sector, not {baseline!r}")
        scorer = self.scorer(model, prompt)
        docs = scorer.snapshot.list_documents(SearchFilters(tickers=[ticker]))
        if not docs:
            raise NotFoundError(f"no documents for ticker {ticker}")
        scores = await self._scores(scorer, docs)
        rolled = rollup(ticker, scores, self.settings.sentiment.half_life_days)
        try:
            return with_baselines(rolled, scores, self.peers(scorer), baseline)
        except ValueError as exc:  # a sector baseline for a document without a sector
            raise BadInputError(str(exc)) from exc

    def peers(self, scorer: Scorer) -> list[DocumentSentiment]:
        """The current score of every document in the index scored by this model + prompt + scorer version (a
        deleted document, or an old version of a changed one, is no peer)."""
        current = {d.id: d.content_hash for d in scorer.snapshot.list_documents(SearchFilters())}
        latest: dict[str, DocumentSentiment] = {}
        for record in self.store.scores_by(scorer.model, scorer.template.hash, scorer.version):
            if current.get(record.doc_id) == record.content_hash:
                latest[record.doc_id] = record
        return list(latest.values())

    def trend(self, ticker: str, model: str | None = None, prompt: str | None = None) -> list[TrendPoint]:
        """The ticker's documents in time order from their stored scores by one scorer (none computed): score,
        change vs the previous document, corpus percentile."""
        scorer = self.scorer(model, prompt)
        docs = scorer.snapshot.list_documents(SearchFilters(tickers=[ticker.strip().upper()]))
        return trend([s for s in (scorer.cached(d) for d in docs) if s is not None], self.peers(scorer))

    def job(self, job_id: str) -> RescoreJob:
        return self.store.get_job(job_id)

    def history(self, doc_id: str | None = None, ticker: str | None = None) -> list[DocumentSentiment]:
        return self.store.history(doc_id=doc_id, ticker=ticker)
