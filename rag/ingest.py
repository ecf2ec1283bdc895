"""The ingest pipeline: files, uploads or text -> Documents -> chunks -> vectors -> index segments, committed in
batches. Unchanged documents (same content hash) are skipped, so a rerun after a crash resumes; bad files are
reported and the rest still go in."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from rag.chunking import chunk_document, context_line, index_text
from rag.errors import BadInputError, DocumentTooLargeError
from rag.index import DocumentUpsert, IndexStore
from rag.loaders import LoadFailure, iter_files, load_file
from rag.models import DOC_ID_PATTERN, Chunk, Document, is_safe_id, sha256_hex
from rag.settings import Settings
from rag.url_fetch import fetch_documents, is_url

if TYPE_CHECKING:
    from rag.embedding import Embedder

ProgressCallback = Callable[[int, int], None]
EMBED_BATCH_CHUNKS = 512


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


class Ingestor:
    def __init__(self, settings: Settings, store: IndexStore, embedder: Callable[[], Embedder],
                 existing: Callable[[], dict[str, str]]) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.existing = existing  # doc id -> content hash of what the index holds now

    def add_paths(self, paths: Sequence[Path | str], progress: ProgressCallback | None = None) -> IngestReport:
        """Load files/folders, and fetch http(s) URLs given as strings, and index them (committed in batches); bad files
        and unreachable URLs are reported, the rest still go in."""
        report = IngestReport()
        documents: list[Document] = []
        urls = [p for p in paths if isinstance(p, str) and is_url(p)]
        files = list(iter_files([Path(p) for p in paths if p not in urls]))
        if not files and not urls:
            raise BadInputError("no files found under " + ", ".join(str(p) for p in paths))
        for url in urls:
            try:
                documents.extend(fetch_documents(url, self.settings))
            except BadInputError as exc:
                report.failed.append(LoadFailure(path=url, error=str(exc)))
        for path in files:
            try:
                documents.extend(load_file(path, self.settings.max_file_bytes))
            except BadInputError as exc:
                report.failed.append(LoadFailure(path=str(path), error=str(exc)))
            except OSError as exc:
                report.failed.append(LoadFailure(path=str(path), error=f"{path}: {exc.strerror}"))
            except Exception as exc:  # noqa: BLE001  # one bad file must not abort the rest of the folder
                report.failed.append(LoadFailure(path=str(path), error=f"{path}: unreadable ({type(exc).__name__})"))
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

    def add_upload(self, filename: str, data: bytes, meta: dict[str, Any] | None = None,
                   max_chunks: int | None = None) -> IngestReport:
        """Index uploaded bytes; the file name picks the format and is the default id."""
        name = Path(filename).name
        if not name or name in (".", ".."):
            raise BadInputError("an uploaded file needs a file name with an extension, e.g. note.txt")
        return self.add_documents(load_file(Path(name), self.settings.max_file_bytes, data=data, meta=meta),
                                  max_chunks=max_chunks)

    def add_url(self, url: str, meta: dict[str, Any] | None = None, allow_private: bool = False,
                max_chunks: int | None = None) -> IngestReport:
        """Fetch one URL and index what it holds; unreachable or unreadable is a BadInputError (HTTP uploads)."""
        return self.add_documents(fetch_documents(url, self.settings, meta, allow_private), max_chunks=max_chunks)

    def add_text(self, text: str, doc_id: str | None = None, max_chunks: int | None = None,
                 **meta: Any) -> IngestReport:
        """Index one document given as text; without an id, one is derived from its content."""
        doc_id = doc_id or f"doc-{sha256_hex(text)[:16]}"
        if not is_safe_id(doc_id):
            raise BadInputError(f"id must match {DOC_ID_PATTERN} (letters, digits, . _ : -), got {doc_id[:80]!r}")
        try:
            document = Document(id=doc_id, text=text, title=meta.pop("title", None) or text.strip()[:80], **meta)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise BadInputError(f"bad document: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        if not text.strip():
            raise BadInputError("document text is empty")
        return self.add_documents([document], max_chunks=max_chunks)

    def add_documents(self, documents: Iterable[Document], progress: ProgressCallback | None = None,
                      report: IngestReport | None = None, max_chunks: int | None = None) -> IngestReport:
        """`max_chunks` bounds the work of one call (HTTP uploads): over it, DocumentTooLargeError before any
        embedding."""
        started = time.perf_counter()
        report = report or IngestReport()
        documents = list(documents)
        if max_chunks is not None:
            # A cheap bound first: chunks hold at least target_chars - overlap_chars new characters each (a chunk
            # ends at a sentence, so a bit less; 2x margin), so far longer texts need not even be chunked.
            stride = max(1, self.settings.chunking.target_chars - self.settings.chunking.overlap_chars)
            if sum(len(d.text) for d in documents) > 2 * max_chunks * stride:
                raise DocumentTooLargeError(
                    f"document is too long for one upload (over {max_chunks} chunks, RAG_SERVER__MAX_INGEST_CHUNKS)")
        existing = self.existing()
        embedder = self.embedder()
        # Nothing to write, no generation: in particular a first ingest where every file failed leaves no empty
        # index behind (which would hide the "run rag ingest" hint).
        todo: list[tuple[Document, list[Chunk], str]] = []
        for doc in documents:
            if existing.get(doc.id) == doc.content_hash:
                report.unchanged.append(doc.id)
                continue
            context = context_line(doc.title, doc.tickers, doc.metadata)
            reserved = embedder.count_tokens([context])[0] if context else 0
            chunks = chunk_document(doc, self.settings.chunking, embedder.count_tokens, reserved)
            if max_chunks is not None and report.chunks + len(chunks) > max_chunks:
                raise DocumentTooLargeError(f"document makes {report.chunks + len(chunks)} chunks; one upload "
                                            f"may make {max_chunks} (RAG_SERVER__MAX_INGEST_CHUNKS)")
            todo.append((doc, chunks, context))
            (report.updated if doc.id in existing else report.added).append(doc.id)
            report.chunks += len(chunks)
        self._embed_and_commit(todo, report, embedder, progress)
        report.seconds = time.perf_counter() - started
        return report

    def _embed_and_commit(self, todo: list[tuple[Document, list[Chunk], str]], report: IngestReport,
                          embedder: Embedder, progress: ProgressCallback | None) -> None:
        """Embed in batches of up to EMBED_BATCH_CHUNKS chunks across documents (full batches; sorting by length
        keeps padding low) and publish a segment every `commit_documents` documents or `commit_seconds`, so a
        killed run keeps what it committed and a rerun skips it (same content hash). Progress counts chunks."""
        limits = self.settings.ingest
        total = sum(len(chunks) for _, chunks, _ in todo)
        embedded = 0
        batch: list[DocumentUpsert] = []
        last_commit = time.monotonic()
        if progress and total:
            progress(0, total)
        i = 0
        while i < len(todo):
            group: list[tuple[Document, list[Chunk], str]] = []
            size = 0
            while (i < len(todo) and len(batch) + len(group) < limits.commit_documents
                   and (not group or size + len(todo[i][1]) <= EMBED_BATCH_CHUNKS)):
                group.append(todo[i])
                size += len(todo[i][1])
                i += 1
            texts = [index_text(context, c.text) for _, chunks, context in group for c in chunks]
            order = sorted(range(len(texts)), key=lambda j: len(texts[j]))
            vectors = np.empty((len(texts), embedder.dim), dtype=np.float32)
            if texts:
                vectors[order] = embedder.embed_batch([texts[j] for j in order])
            offset = 0
            for doc, chunks, _ in group:
                batch.append(DocumentUpsert(document=doc, chunks=chunks, vectors=vectors[offset:offset + len(chunks)]))
                offset += len(chunks)
            embedded += size
            if progress:
                progress(embedded, total)
            if (len(batch) >= limits.commit_documents or time.monotonic() - last_commit >= limits.commit_seconds
                    or i == len(todo)):
                report.generation = self.store.write(batch, dim=embedder.dim, backend=embedder.backend)
                batch = []
                last_commit = time.monotonic()
