"""The public API. The CLI and the HTTP service are thin shells over `Library`."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from rag import llm
from rag.answer import abstention, answer_messages, check_answer, format_history
from rag.chunking import chunk_document
from rag.embedding import Embedder
from rag.errors import BadInputError, IndexMismatchError, IndexMissingError, NotFoundError, RagError
from rag.index import DocumentUpsert, IndexStore, Snapshot
from rag.loaders import LoadFailure, iter_files, load_file
from rag.models import Answer, Chunk, Document, DocumentInfo, Passage, SearchFilters, Turn, sha256_hex
from rag.prompts import PromptTemplate, load_prompt
from rag.rescore import RateLimiter, RescoreRequest, RescoreRun, Scorer, new_job
from rag.retrieve import Mode, retrieve
from rag.sentiment import DocumentSentiment, TickerSentiment, rollup
from rag.sentiment_store import JobStatus, SentimentStore
from rag.settings import Settings

ProgressCallback = Callable[[int, int], None]
EMBED_BATCH_CHUNKS = 512
AGREEMENT_SAMPLE = 64
log = logging.getLogger("rag")


class IngestReport(BaseModel):
    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    failed: list[LoadFailure] = Field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0
    generation: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


class Library:
    """One index directory plus the models that read and write it."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings()
        self._embedder = embedder
        self._snapshot: Snapshot | None = None
        self._snapshot_key: tuple[int, int] | None = None
        self._snapshot_lock = threading.Lock()
        self._sentiment_store: SentimentStore | None = None
        self._agreed_backends: set[str] = set()

    # ---- plumbing -------------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self.settings.make_embedder()
        return self._embedder

    @property
    def store(self) -> IndexStore:
        return IndexStore(self.settings.index_dir, self.embedder.name, self.embedder.dim, self.embedder.backend,
                          self.settings.retrieval.ann)

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
            if self._snapshot is None or key != self._snapshot_key:
                snapshot = self.store.open()
                self._check_backend(snapshot)
                self._snapshot = snapshot
                self._snapshot_key = key
            return self._snapshot

    def _check_backend(self, snapshot: Snapshot) -> None:
        """An index built by another backend of the same model is used only if the vectors agree: a sample of
        its chunks is re-embedded and compared with the stored vectors."""
        built_with = snapshot.manifest.embedding_backend
        if built_with == self.embedder.backend or built_with in self._agreed_backends:
            return
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

    def exists(self) -> bool:
        return self.store.manifest_path.exists()

    # ---- writing --------------------------------------------------------------------------------
    def add_paths(self, paths: Sequence[Path], progress: ProgressCallback | None = None) -> IngestReport:
        """Load files/folders and index them; bad files are reported, the rest still go in."""
        report = IngestReport()
        documents: list[Document] = []
        files = list(iter_files([Path(p) for p in paths]))
        if not files:
            raise BadInputError("no files found under " + ", ".join(str(p) for p in paths))
        for path in files:
            try:
                documents.extend(load_file(path, self.settings.max_file_bytes))
            except BadInputError as exc:
                report.failed.append(LoadFailure(path=str(path), error=str(exc)))
            except OSError as exc:
                report.failed.append(LoadFailure(path=str(path), error=f"{path}: {exc.strerror}"))
        seen: dict[str, str] = {}
        unique: list[Document] = []
        for doc in documents:
            if doc.id in seen:
                report.failed.append(LoadFailure(
                    path=doc.path or doc.id, error=f"duplicate document id {doc.id!r} (also in {seen[doc.id]})"))
                continue
            seen[doc.id] = doc.path or ""
            unique.append(doc)
        return self.add_documents(unique, progress=progress, report=report)

    def add_upload(self, filename: str, data: bytes, meta: dict[str, Any] | None = None) -> IngestReport:
        """Index uploaded bytes; the file name picks the format and is the default id."""
        name = Path(filename).name
        if not name or name in (".", ".."):
            raise BadInputError("an uploaded file needs a file name with an extension, e.g. note.txt")
        return self.add_documents(load_file(Path(name), self.settings.max_file_bytes, data=data, meta=meta))

    def add_text(self, text: str, doc_id: str | None = None, **meta: Any) -> IngestReport:
        """Index one document given as text; without an id, one is derived from its content."""
        doc_id = doc_id or f"doc-{sha256_hex(text)[:16]}"
        try:
            document = Document(id=doc_id, text=text, title=meta.pop("title", None) or text.strip()[:80], **meta)
        except ValidationError as exc:
            raise BadInputError(f"bad document: {exc.errors()[0]['msg']}") from exc
        if not text.strip():
            raise BadInputError("document text is empty")
        return self.add_documents([document])

    def add_documents(self, documents: Iterable[Document], progress: ProgressCallback | None = None,
                      report: IngestReport | None = None) -> IngestReport:
        started = time.perf_counter()
        report = report or IngestReport()
        documents = list(documents)
        existing = self.snapshot().content_hashes() if self.exists() else {}
        upserts: list[DocumentUpsert] = []
        pending: list[tuple[Document, list[Chunk]]] = []
        pending_chunks = 0

        def flush() -> None:
            nonlocal pending_chunks
            # One encode call across many documents keeps batches full; sorting by length keeps padding low.
            texts = [c.text for _, chunks in pending for c in chunks]
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            vectors = np.empty((len(texts), self.embedder.dim), dtype=np.float32)
            if texts:
                vectors[order] = self.embedder.embed_batch([texts[i] for i in order])
            offset = 0
            for doc, chunks in pending:
                rows = vectors[offset:offset + len(chunks)]
                upserts.append(DocumentUpsert(document=doc, chunks=chunks, vectors=rows))
                offset += len(chunks)
            pending.clear()
            pending_chunks = 0

        for done, doc in enumerate(documents, start=1):
            if existing.get(doc.id) == doc.content_hash:
                report.unchanged.append(doc.id)
            else:
                chunks = chunk_document(doc, self.settings.chunking, self.embedder.count_tokens)
                pending.append((doc, chunks))
                pending_chunks += len(chunks)
                (report.updated if doc.id in existing else report.added).append(doc.id)
                report.chunks += len(chunks)
                if pending_chunks >= EMBED_BATCH_CHUNKS:
                    flush()
            if progress:
                progress(done, len(documents))
        flush()
        if upserts or not self.exists():
            report.generation = self.store.write(upserts)
        report.seconds = time.perf_counter() - started
        return report

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
        return {**snap.counts(), "generation": snap.generation, "embedding_model": snap.manifest.embedding_model,
                "dim": snap.manifest.dim}

    def search(self, query: str, k: int | None = None, filters: SearchFilters | None = None,
               mode: Mode = "hybrid") -> list[Passage]:
        if not query.strip():
            raise BadInputError("query is empty")
        return retrieve(self.snapshot(), self.embedder, query, self.settings.retrieval, k=k, filters=filters,
                        mode=mode)

    # ---- answering ------------------------------------------------------------------------------
    def _check_question(self, question: str) -> str:
        question = question.strip()
        if not question:
            raise BadInputError("question is empty")
        if len(question) > self.settings.server.max_question_chars:
            raise BadInputError(f"question is longer than {self.settings.server.max_question_chars} characters")
        return question

    def _prepare(self, question: str, history: Sequence[Turn], model: str | None
                 ) -> tuple[str, str, PromptTemplate, list[dict[str, str]] | None]:
        """Checked question, model, answer template, and the rewrite prompt when there is history."""
        question = self._check_question(question)
        model = llm.check_model(model or self.settings.llm.model)
        if llm.is_local(model):
            llm.configure_local_provider(self.embedder.embed_batch)
        template = load_prompt(self.settings.prompts_dir, self.settings.llm.answer_prompt)
        rewrite = None
        if history:
            rewrite = load_prompt(self.settings.prompts_dir, self.settings.llm.rewrite_prompt).messages(
                history=format_history(list(history)), question=question)
        return question, model, template, rewrite

    def _retrieve_for_answer(self, standalone: str, k: int | None, filters: SearchFilters | None,
                             timings: dict[str, float]) -> list[Passage] | None:
        """Passages to answer from, or None when nothing relevant enough was found (abstain)."""
        started = time.perf_counter()
        passages = self.search(standalone, k=k, filters=filters)
        timings["retrieve"] = _ms(started)
        best = max((p.dense_score or 0.0 for p in passages), default=0.0)
        return passages if passages and best >= self.settings.retrieval.min_dense_score else None

    def ask(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
            filters: SearchFilters | None = None, model: str | None = None) -> Answer:
        """A cited answer from the indexed documents (or an abstention)."""
        question, model, template, rewrite = self._prepare(question, history, model)
        timings: dict[str, float] = {}
        standalone = question
        if rewrite:
            started = time.perf_counter()
            standalone = llm.complete(rewrite, self.settings.llm, model).strip() or question
            timings["rewrite"] = _ms(started)
        passages = self._retrieve_for_answer(standalone, k, filters, timings)
        if passages is None:
            return abstention(question, standalone, [], model, template, timings)
        started = time.perf_counter()
        raw = llm.complete(answer_messages(template, standalone, passages), self.settings.llm, model)
        timings["llm"] = _ms(started)
        return check_answer(question, standalone, raw, passages, model, template, timings)

    async def aask(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
                   filters: SearchFilters | None = None, model: str | None = None) -> Answer:
        """`ask` for event loops: retrieval runs in a worker thread, the model call is awaited."""
        events = [e async for e in self.astream_ask(question, history, k, filters, model, stream=False)]
        answer = events[-1]
        assert isinstance(answer, Answer)
        return answer

    async def astream_ask(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
                          filters: SearchFilters | None = None, model: str | None = None,
                          stream: bool = True) -> AsyncIterator[str | Answer]:
        """Yields answer text deltas as the model produces them, then the checked Answer. The deltas are
        raw model output: markers are only validated in the final Answer."""
        question, model, template, rewrite = self._prepare(question, history, model)
        timings: dict[str, float] = {}
        standalone = question
        if rewrite:
            started = time.perf_counter()
            standalone = (await llm.acomplete(rewrite, self.settings.llm, model)).strip() or question
            timings["rewrite"] = _ms(started)
        passages = await asyncio.to_thread(self._retrieve_for_answer, standalone, k, filters, timings)
        if passages is None:
            yield abstention(question, standalone, [], model, template, timings)
            return
        started = time.perf_counter()
        messages = answer_messages(template, standalone, passages)
        if stream:
            parts: list[str] = []
            async for delta in llm.astream(messages, self.settings.llm, model):
                parts.append(delta)
                yield delta
            raw = "".join(parts)
        else:
            raw = await llm.acomplete(messages, self.settings.llm, model)
        timings["llm"] = _ms(started)
        yield check_answer(question, standalone, raw, passages, model, template, timings)


    # ---- sentiment ------------------------------------------------------------------------------
    @property
    def sentiment_store(self) -> SentimentStore:
        if self._sentiment_store is None:
            self._sentiment_store = SentimentStore(Path(self.settings.index_dir) / "sentiment.sqlite")
        return self._sentiment_store

    def _scorer(self, model: str | None, prompt: str | None) -> Scorer:
        model = llm.check_model(model or self.settings.sentiment.resolved_model(self.settings.llm.model))
        if llm.is_local(model):
            llm.configure_local_provider(self.embedder.embed_batch)
        template = load_prompt(self.settings.prompts_dir, prompt or self.settings.sentiment.prompt)
        return Scorer(self.settings, self.sentiment_store, self.snapshot(), model, template)

    def prepare_rescore(self, request: RescoreRequest) -> RescoreRun:
        """Select the documents and journal a new job; `await run.run()` does the work."""
        scorer = self._scorer(request.model, request.prompt)
        docs = scorer.snapshot.list_documents(request.filters)
        if not docs:
            raise BadInputError("no documents match the filters")
        job = new_job(scorer.model, scorer.template, request.filters, len(docs))
        self.sentiment_store.save_job(job)
        configured = self.settings.sentiment
        return RescoreRun(scorer=scorer, docs=docs, job=job, concurrency=request.concurrency or configured.concurrency,
                          limiter=RateLimiter(request.requests_per_second or configured.requests_per_second))

    async def _scores(self, scorer: Scorer, docs: list[DocumentInfo]) -> list[DocumentSentiment]:
        """Stored scores, computing (and storing) the missing ones."""
        limiter = RateLimiter(self.settings.sentiment.requests_per_second)
        gate = asyncio.Semaphore(self.settings.sentiment.concurrency)

        async def one(info: DocumentInfo) -> DocumentSentiment:
            found = scorer.cached(info)
            if found is None:
                async with gate:
                    found = await scorer.score(info, limiter)
                self.sentiment_store.put(found)
            return found

        return list(await asyncio.gather(*(one(info) for info in docs)))

    async def adocument_sentiment(self, doc_id: str, model: str | None = None,
                                  prompt: str | None = None) -> DocumentSentiment:
        """The document's score for this model + prompt, computed on first request and stored."""
        scorer = self._scorer(model, prompt)
        docs = scorer.snapshot.list_documents(SearchFilters(doc_ids=[doc_id]))
        if not docs:
            raise NotFoundError(f"no document with id {doc_id!r}")
        return (await self._scores(scorer, docs))[0]

    async def aticker_sentiment(self, ticker: str, model: str | None = None,
                                prompt: str | None = None) -> TickerSentiment:
        """Roll-up over the ticker's current documents (each scored on first request)."""
        ticker = ticker.strip().upper()
        if not ticker:
            raise BadInputError("ticker is empty")
        scorer = self._scorer(model, prompt)
        docs = scorer.snapshot.list_documents(SearchFilters(tickers=[ticker]))
        if not docs:
            raise NotFoundError(f"no documents for ticker {ticker}")
        return rollup(ticker, await self._scores(scorer, docs), self.settings.sentiment.half_life_days)

    def job(self, job_id: str) -> JobStatus:
        return self.sentiment_store.get_job(job_id)

    def sentiment_history(self, doc_id: str | None = None, ticker: str | None = None) -> list[DocumentSentiment]:
        return self.sentiment_store.history(doc_id=doc_id, ticker=ticker)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


__all__ = ["IngestReport", "Library", "RagError"]
