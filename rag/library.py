"""The public API: a thin facade over one index directory. The CLI, the HTTP service and the eval harness call
`Library`; the work lives in rag.ingest, rag.qa, rag.retrieve and rag.sentiment.

Reads that need no model (listing, getting, deleting, "no index here") load none: the index is opened by the
configured model's name, and the embedder is built only when a query or a write needs vectors."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from rag import index_check
from rag.embedding import Embedder
from rag.errors import BadInputError, IndexDamagedError, IndexMismatchError, IndexMissingError
from rag.index import IndexStore, Snapshot
from rag.index_check import IndexCheck, RepairReport
from rag.ingest import Ingestor, IngestReport, ProgressCallback
from rag.models import Answer, Document, DocumentInfo, Passage, SearchFilters, Turn
from rag.qa import QuestionAnswerer
from rag.retrieve import Mode, Retrieval, retrieve, widen
from rag.sentiment.batch import RescoreRequest, RescoreRun
from rag.sentiment.relative import Baseline, RelativeTickerSentiment, TrendPoint
from rag.sentiment.scoring import DocumentSentiment
from rag.sentiment.service import SentimentService
from rag.sentiment.store import RescoreJob
from rag.settings import Settings

AGREEMENT_SAMPLE = 64
log = logging.getLogger("rag")


class Library:
    """One index directory plus the models that read and write it."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings()
        self._embedder = embedder
        self.store = IndexStore(self.settings.index_dir, self.settings.embedding.model_name,
                                self.settings.retrieval.ann, self.settings.index)
        self._snapshot: Snapshot | None = None
        self._snapshot_key: tuple[int, int] | None = None
        self._snapshot_lock = threading.Lock()
        self._damaged: dict[int, str] = {}  # generation -> why, once seen damaged by this process
        self._agreed_backends: set[str] = set()
        self.ingestor = Ingestor(self.settings, self.store, lambda: self.embedder,
                                 lambda: self.snapshot().content_hashes() if self.exists() else {})
        self.qa = QuestionAnswerer(self.settings, self._to_read, lambda: self.embedder,
                                   self.snapshot)
        self.sentiment = SentimentService(self.settings, self.snapshot, lambda: self.embedder)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from rag.embedding.factory import make_embedder

            self._embedder = make_embedder(self.settings.embedding)
        return self._embedder

    # ---- the index ------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.store.manifest_path.exists()

    def snapshot(self) -> Snapshot:
        """The current generation; reopened when another process or thread has published a new one."""
        try:
            st = os.stat(self.store.manifest_path)
        except FileNotFoundError:
            raise IndexMissingError(
                f"no index at {self.settings.index_dir}: run `rag ingest PATH` first"
            ) from None
        key = (st.st_ino, st.st_mtime_ns)
        with self._snapshot_lock:
            if key != self._snapshot_key:
                # A new manifest (a repair, then a write) may reuse a generation number seen damaged before.
                self._damaged.clear()
            if self._snapshot is not None and self._snapshot.damaged:
                self._damaged[self._snapshot.generation] = self._snapshot.damaged
            if self._snapshot is None or key != self._snapshot_key or self._snapshot.damaged:
                self._snapshot = self._open()
                self._snapshot_key = key
            return self._snapshot

    def load_index(self) -> Snapshot:
        """Open the current generation and load its vectors and BM25 state now rather than at the first search
        (the server does this at start). Damage found here falls back as it would at search time."""
        for _ in range(2):
            snapshot = self.snapshot()
            try:
                snapshot.load()
                return snapshot
            except IndexDamagedError:
                continue  # the snapshot marked itself damaged; the next snapshot() is the fallback
        return self.snapshot()

    def _open(self) -> Snapshot:
        """The current generation, or, when it (or the manifest) is damaged, the newest intact older one with a
        `fallback_note` saying what is missing. IndexDamagedError when no generation is intact."""
        try:
            snapshot = self.store.open(previous=self._snapshot)
        except IndexDamagedError as exc:
            manifest_gen = None
            reason = str(exc)
        else:
            if snapshot.generation not in self._damaged:
                return snapshot
            manifest_gen, reason = snapshot.generation, self._damaged[snapshot.generation]
        if manifest_gen is None and "manifest" not in reason:
            manifest_gen = self.store.read_manifest().generation  # type: ignore[union-attr]  # it was readable
        return index_check.fallback_snapshot(self.store, manifest_gen, reason)

    def _searchable(self) -> Snapshot:
        """The snapshot, once the configured backend is known to reproduce its vectors: an index built by another
        backend of the same model is used only if re-embedding a sample of its chunks agrees."""
        snapshot = self.snapshot()
        built_with = snapshot.manifest.embedding_backend
        if built_with == self.embedder.backend or built_with in self._agreed_backends:
            return snapshot
        texts, stored = snapshot.sample_vectors(AGREEMENT_SAMPLE)
        agreement = float((self.embedder.embed_batch(texts) * stored).sum(axis=1).mean()) if texts else 1.0
        tolerance = self.settings.embedding.backend_tolerance
        if agreement < tolerance:
            raise IndexMismatchError(
                f"index at {self.settings.index_dir} was built with the {built_with} backend; the configured "
                f"{self.embedder.backend} backend reproduces its vectors with mean cosine {agreement:.4f} < "
                f"{tolerance} (RAG_EMBEDDING__BACKEND_TOLERANCE): use RAG_EMBEDDING__BACKEND={built_with} or "
                "re-ingest")
        log.info("index built with %s, querying with %s: mean cosine %.4f on %d chunks", built_with,
                 self.embedder.backend, agreement, len(texts))
        self._agreed_backends.add(built_with)
        return snapshot

    # ---- writing --------------------------------------------------------------------------------
    def add_paths(self, paths: Sequence[Path | str], progress: ProgressCallback | None = None) -> IngestReport:
        """Files, folders, and http(s) URLs given as strings."""
        return self.ingestor.add_paths(paths, progress)

    def add_url(self, url: str, meta: dict[str, Any] | None = None, allow_private: bool = False,
                max_chunks: int | None = None) -> IngestReport:
        return self.ingestor.add_url(url, meta, allow_private, max_chunks=max_chunks)

    def add_upload(self, filename: str, data: bytes, meta: dict[str, Any] | None = None,
                   max_chunks: int | None = None) -> IngestReport:
        return self.ingestor.add_upload(filename, data, meta, max_chunks=max_chunks)

    def add_text(self, text: str, doc_id: str | None = None, max_chunks: int | None = None,
                 **meta: Any) -> IngestReport:
        return self.ingestor.add_text(text, doc_id, max_chunks=max_chunks, **meta)

    def add_documents(self, documents: Sequence[Document], progress: ProgressCallback | None = None) -> IngestReport:
        return self.ingestor.add_documents(documents, progress)

    def delete(self, doc_id: str) -> None:
        self.snapshot().get_document(doc_id)  # raises NotFoundError
        self.store.write([], deletes=[doc_id])

    # ---- reading --------------------------------------------------------------------------------
    def list_documents(self, filters: SearchFilters | None = None) -> list[DocumentInfo]:
        return self.snapshot().list_documents(filters)

    def get_document(self, doc_id: str) -> Document:
        return self.snapshot().get_document(doc_id)

    def stats(self) -> dict[str, object]:
        snap = self.snapshot()
        return {**snap.counts(), "segments": len(snap.segments), "generation": snap.generation,
                "embedding_model": snap.manifest.embedding_model,
                "dim": snap.manifest.dim, "fallback": snap.fallback_note}

    def check_index(self) -> IndexCheck:
        """Verify every segment of every kept generation (counts agree across SQLite, FAISS and BM25 postings)."""
        return index_check.check_index(self.store)

    def repair_index(self) -> RepairReport:
        """Point the index back at the newest intact generation if the current one is damaged."""
        report = index_check.repair_index(self.store)
        self._damaged.clear()
        return report

    def compact_index(self) -> int:
        """Merge every segment into one and drop tombstones; returns the generation now current."""
        return self.store.compact()

    def migrate_index(self) -> int:
        """Convert a format-2 index (whole copies per generation) to segments in place; returns the generation."""
        return self.store.migrate()

    def search(self, query: str, k: int | None = None, filters: SearchFilters | None = None,
               mode: Mode = "hybrid") -> list[Passage]:
        return self.retrieve(query, k, filters, mode).passages

    def retrieve(self, query: str, k: int | None = None, filters: SearchFilters | None = None,
                 mode: Mode = "hybrid", neighbours: int = 0, each_company: int | None = None) -> Retrieval:
        """Passages plus what the query was understood to be about (linked companies, unknown names). With
        `neighbours`, each passage is its chunk widened by that many chunks of its document on each side; with
        `each_company`, each company of a comparison gets that many passages instead of a share of k."""
        if not query.strip():
            raise BadInputError("query is empty")
        if len(query) > self.settings.max_question_chars:
            raise BadInputError(f"query is longer than {self.settings.max_question_chars} characters "
                                "(RAG_MAX_QUESTION_CHARS)")
        def run() -> Retrieval:
            snapshot = self._searchable()
            found = retrieve(snapshot, self.embedder, query, self.settings.retrieval, k=k, filters=filters, mode=mode,
                             each_company=each_company)
            found.passages = widen(snapshot, found.passages, neighbours)
            return found

        try:
            return run()
        except IndexDamagedError:
            # Vectors and BM25 load on first search, so damage can surface only now; the snapshot marked itself
            # damaged, and one retry runs on the fallback generation (or raises the damage again).
            return run()

    def _to_read(self, query: str, k: int | None, filters: SearchFilters | None) -> Retrieval:
        """What a model answers from: the retrieved chunks with their neighbours, and for a comparison k passages of
        each company (each side of a long call is as hard to find as a single company's answer: with 5 of the 10
        a side, a probe of 20 comparisons answered 23 of 40 sides, with 10 each 25)."""
        return self.retrieve(query, k, filters, neighbours=self.settings.retrieval.read_neighbours, each_company=k)

    # ---- answering ------------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
            filters: SearchFilters | None = None, model: str | None = None) -> Answer:
        """A cited answer from the indexed documents (or an abstention)."""
        return self.qa.ask(question, history, k, filters, model)

    async def aask(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
                   filters: SearchFilters | None = None, model: str | None = None) -> Answer:
        return await self.qa.aask(question, history, k, filters, model)

    def astream_ask(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
                    filters: SearchFilters | None = None, model: str | None = None) -> AsyncIterator[str | Answer]:
        """Answer text deltas as the model produces them, then the checked Answer."""
        return self.qa.astream(question, history, k, filters, model)

    # ---- sentiment ------------------------------------------------------------------------------
    async def adocument_sentiment(self, doc_id: str, model: str | None = None,
                                  prompt: str | None = None) -> DocumentSentiment:
        """The document's score for this model + prompt, computed on first request and stored."""
        return await self.sentiment.adocument(doc_id, model, prompt)

    async def aticker_sentiment(self, ticker: str, model: str | None = None, prompt: str | None = None,
                                baseline: Baseline = "corpus") -> RelativeTickerSentiment:
        """Roll-up over the ticker's current documents (each scored on first request), with the newest document
        against the ticker's own history and the corpus's (or its sector's) documents, and the trend."""
        return await self.sentiment.aticker(ticker, model, prompt, baseline)

    def sentiment_trend(self, ticker: str, model: str | None = None, prompt: str | None = None) -> list[TrendPoint]:
        """The ticker's stored scores by one model + prompt in time order, with changes and percentiles."""
        return self.sentiment.trend(ticker, model, prompt)

    def prepare_rescore(self, request: RescoreRequest) -> RescoreRun:
        return self.sentiment.prepare_rescore(request)

    def job(self, job_id: str) -> RescoreJob:
        return self.sentiment.job(job_id)

    def sentiment_history(self, doc_id: str | None = None, ticker: str | None = None) -> list[DocumentSentiment]:
        return self.sentiment.history(doc_id=doc_id, ticker=ticker)


__all__ = ["IngestReport", "Library"]
