"""A read-only view of one generation: its segments minus their tombstones, searched and read as one index."""

from __future__ import annotations

import bisect
import json
import sqlite3
from collections.abc import Collection, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.entities import EntityIndex, entity_words
from rag.entities import build as build_entities
from rag.errors import IndexDamagedError, NotFoundError
from rag.index.lexical import Corpus
from rag.index.manifest import Manifest, segment_dir
from rag.index.segment import DocumentFacts, Segment, index_texts
from rag.models import Chunk, Document, DocumentInfo, SearchFilters
from rag.periods import PeriodIndex
from rag.settings import AnnSettings
from rag.text import tokenize


def _doc_from_row(row: sqlite3.Row) -> Document:
    return Document(
        id=row["id"], text=row["text"], title=row["title"], tickers=json.loads(row["tickers"]),
        date=row["date"], source_url=row["source_url"], doc_type=row["doc_type"], path=row["path"],
        pages=json.loads(row["pages"]), metadata=json.loads(row["metadata"]),
    )


def _where(filters: SearchFilters | None) -> tuple[str, list[object]]:
    if filters is None or filters.is_empty():
        return "", []
    clauses: list[str] = []
    params: list[object] = []
    if filters.tickers:
        marks = ",".join("?" * len(filters.tickers))
        clauses.append(f"EXISTS (SELECT 1 FROM json_each(d.tickers) WHERE upper(value) IN ({marks}))")
        params.extend(t.upper() for t in filters.tickers)
    if filters.doc_types:
        clauses.append(f"d.doc_type IN ({','.join('?' * len(filters.doc_types))})")
        params.extend(filters.doc_types)
    if filters.doc_ids:
        clauses.append(f"d.id IN ({','.join('?' * len(filters.doc_ids))})")
        params.extend(filters.doc_ids)
    if filters.date_from:
        clauses.append("d.date >= ?")
        params.append(filters.date_from.isoformat())
    if filters.date_to:
        clauses.append("d.date <= ?")
        params.append(filters.date_to.isoformat())
    return "WHERE " + " AND ".join(clauses), params


def _top(hits: list[tuple[int, float]], n: int) -> list[tuple[int, float]]:
    return sorted(hits, key=lambda h: -h[1])[:n]


class Snapshot:
    """One generation; safe to share between threads. Every segment's store opens at once; vectors and postings
    load on first search, so reads of documents stay cheap."""

    def __init__(self, root: Path, manifest: Manifest, ann: AnnSettings | None = None,
                 previous: Snapshot | None = None) -> None:
        self.root = root
        self.manifest = manifest
        self.generation = manifest.generation
        # Set when a file turns out damaged (possibly only at first search, since vectors and postings load
        # lazily); Library then falls back to an older intact generation.
        self.damaged: str | None = None
        # Set on a snapshot served instead of a damaged newer generation: what readers are missing.
        self.fallback_note: str | None = None
        self.segments: list[Segment] = []
        # A reader that follows a writer reuses the segments it already has open: a write then costs it one new
        # small segment to load, not the whole index again.
        known = {s.info.name: s for s in previous.segments} if previous is not None and not previous.damaged else {}
        try:
            for info in manifest.segments:
                reused = known[info.name].reuse(info) if info.name in known else None
                self.segments.append(reused or Segment(segment_dir(root, info.name), info, manifest.dim, ann))
        except IndexDamagedError:
            self.close(keep=set(map(id, known.values())))
            raise
        with_chunks = [s for s in self.segments if s.info.min_rowid is not None]
        self._by_rowid = with_chunks
        self._starts = [s.info.min_rowid for s in with_chunks]

    def close(self, keep: Collection[int] = ()) -> None:
        """Close the segments' stores, except those (by id) lent by another snapshot."""
        for segment in self.segments:
            if id(segment) not in keep:
                segment.close()

    def _guard(self, error: IndexDamagedError) -> IndexDamagedError:
        self.damaged = str(error)
        return error

    def _each(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Segment, list[sqlite3.Row]]]:
        try:
            return [(s, s.query(sql, params)) for s in self.segments]
        except IndexDamagedError as exc:
            raise self._guard(exc) from None

    def load(self) -> None:
        """Load every segment's vectors and postings now (the server does this at start)."""
        try:
            for segment in self.segments:
                _ = segment.vectors, segment.postings, segment.live, segment.hnsw
            _ = self._lexical
        except IndexDamagedError as exc:
            raise self._guard(exc) from None

    def _segment_of(self, rowid: int) -> Segment:
        return self._by_rowid[bisect.bisect_right(self._starts, rowid) - 1]

    def _group(self, rowids: Sequence[int]) -> dict[int, tuple[Segment, list[int]]]:
        groups: dict[int, tuple[Segment, list[int]]] = {}
        for rowid in rowids:
            segment = self._segment_of(int(rowid))
            groups.setdefault(id(segment), (segment, []))[1].append(int(rowid))
        return groups

    # ---- counts and documents -------------------------------------------------------------------
    @property
    def chunk_count(self) -> int:
        return sum(s.info.live_chunks for s in self.segments)

    def counts(self) -> dict[str, int]:
        return {"documents": sum(s.info.live_documents for s in self.segments), "chunks": self.chunk_count}

    def content_hashes(self) -> dict[str, str]:
        return {r["id"]: r["content_hash"] for s, rows in self._each("SELECT id, content_hash FROM documents")
                for r in rows if r["id"] not in s.deleted}

    def _live_rows(self, sql: str, doc_id: str, *params: object) -> tuple[Segment, list[sqlite3.Row]] | None:
        for segment, rows in self._each(sql, (doc_id, *params)):
            if rows and doc_id not in segment.deleted:
                return segment, rows
        return None

    def segment_of_document(self, doc_id: str) -> Segment | None:
        found = self._live_rows("SELECT 1 FROM documents WHERE id = ?", doc_id)
        return found[0] if found else None

    def get_document(self, doc_id: str) -> Document:
        found = self._live_rows("SELECT * FROM documents WHERE id = ?", doc_id)
        if found is None:
            raise NotFoundError(f"no document with id {doc_id!r}")
        return _doc_from_row(found[1][0])

    def reading_span(self, doc_id: str, chunk_id: str, neighbours: int) -> tuple[int, int, str] | None:
        """A chunk with up to `neighbours` chunks of its document on each side, on the same page (a citation's page
        stays exact): start, end and text of that span of the document (None if the chunk is not in the index)."""
        # GROUP BY: without it, an aggregate over no rows (a segment without the chunk) is one row of NULLs.
        found = self._live_rows(
            """SELECT min(c.start) AS start, max(c."end") AS "end",
                      substr(d.text, min(c.start) + 1, max(c."end") - min(c.start)) AS text
               FROM chunks me
               JOIN chunks c ON c.doc_id = me.doc_id AND c.page IS me.page
                    AND c.ordinal BETWEEN me.ordinal - ?3 AND me.ordinal + ?3
               JOIN documents d ON d.id = me.doc_id
               WHERE me.doc_id = ?1 AND me.id = ?2 GROUP BY me.id""", doc_id, chunk_id, neighbours)
        if found is None:
            return None
        row = found[1][0]
        return row["start"], row["end"], row["text"]

    def list_documents(self, filters: SearchFilters | None = None) -> list[DocumentInfo]:
        where, params = _where(filters)
        found = self._each(
            f"""SELECT d.id, d.title, d.tickers, d.date, d.source_url, d.doc_type, d.path, d.content_hash,
                   d.ingested_at, length(d.text) n_chars,
                   (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) n_chunks
                FROM documents d {where}""", params)
        rows = sorted((r for s, rows in found for r in rows if r["id"] not in s.deleted), key=lambda r: r["id"])
        return [DocumentInfo(**{**dict(r), "tickers": json.loads(r["tickers"])}) for r in rows]

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        found = self._live_rows("SELECT * FROM chunks WHERE doc_id = ? ORDER BY ordinal", doc_id)
        return [Chunk(**{k: r[k] for k in r.keys() if k != "rowid"}) for r in (found[1] if found else [])]

    def _live_facts(self) -> list[tuple[Segment, DocumentFacts]]:
        try:
            return [(s, f) for s in self.segments for f in s.document_facts if f.id not in s.deleted]
        except IndexDamagedError as exc:
            raise self._guard(exc) from None

    @cached_property
    def entities(self) -> EntityIndex:
        """Companies of this generation's documents and the names that link a question to them. Built from each
        segment's remembered facts and word lookups, so a new generation costs its new segment, not a re-read of
        every document (at 100k chunks that was ~50 ms on the first search after each write)."""
        documents = [(f.id, f.company, list(f.tickers)) for _, f in self._live_facts()]
        docs_containing: dict[str, set[str]] = {}
        words = entity_words(documents)
        try:
            for segment in self.segments:
                for word in words:
                    found = segment.documents_with_word(word)
                    if found:
                        docs_containing.setdefault(word, set()).update(found - segment.deleted)
        except IndexDamagedError as exc:
            raise self._guard(exc) from None
        return build_entities(documents, docs_containing)

    def documents_with_tickers(self, tickers: Sequence[str]) -> frozenset[str]:
        """Live documents carrying any of `tickers` (case-insensitive, as the tickers filter matches)."""
        wanted = {t.upper() for t in tickers}
        return frozenset(f.id for _, f in self._live_facts() if wanted & {t.upper() for t in f.tickers})

    @cached_property
    def periods(self) -> PeriodIndex:
        """The fiscal periods of this generation's documents, from their metadata or titles (rag.periods)."""
        return PeriodIndex({f.id: f.periods for _, f in self._live_facts()})

    def sample_vectors(self, n: int) -> tuple[list[str], np.ndarray]:
        """Texts and stored vectors of up to n chunks spread over the index (backend agreement checks)."""
        try:
            live = np.concatenate([s.rowids[s.live] for s in self.segments] or [np.zeros(0, dtype=np.int64)])
            picked = live[::max(1, len(live) // n)][:n]
            texts: list[str] = []
            vectors: list[np.ndarray] = []
            for segment, rowids in self._group(picked.tolist()).values():
                marks = ",".join("?" * len(rowids))
                with segment._lock:
                    rows = index_texts(segment._db, f"WHERE c.rowid IN ({marks})", rowids)
                texts += [r[1] for r in rows]
                vectors.append(segment.vectors[segment.positions(np.array([r[0] for r in rows], dtype=np.int64))])
        except IndexDamagedError as exc:
            raise self._guard(exc) from None
        return texts, np.concatenate(vectors) if vectors else np.zeros((0, self.manifest.dim), dtype=np.float32)

    # ---- retrieval ------------------------------------------------------------------------------
    def allowed_rowids(self, filters: SearchFilters | None) -> np.ndarray | None:
        """Live chunk rowids passing the filters, or None when there is no filter."""
        if filters is None or filters.is_empty():
            return None
        where, params = _where(filters)
        found = self._each(f"SELECT c.rowid, c.doc_id FROM chunks c JOIN documents d ON d.id = c.doc_id {where}",
                           params)
        rowids = [r[0] for s, rows in found for r in rows if r[1] not in s.deleted]
        return np.sort(np.array(rowids, dtype=np.int64))

    def _split(self, allowed: np.ndarray | None) -> list[tuple[Segment, np.ndarray | None]]:
        """Each segment with the allowed rowids that fall in it (None: no filter)."""
        if allowed is None:
            return [(s, None) for s in self._by_rowid]
        parts = []
        for segment in self._by_rowid:
            lo, hi = np.searchsorted(allowed, [segment.info.min_rowid, segment.info.max_rowid + 1])
            if hi > lo:
                parts.append((segment, allowed[lo:hi]))
        return parts

    @cached_property
    def _lexical(self) -> Corpus:
        """Statistics over every live chunk (not only the filtered ones: a filter never changed BM25 before)."""
        return Corpus([(s.postings, s.live) for s in self._by_rowid])

    def vector_of(self, rowid: int) -> np.ndarray:
        segment = self._segment_of(rowid)
        try:
            return segment.vectors[segment.positions(np.array([rowid], dtype=np.int64))[0]]
        except IndexDamagedError as exc:
            raise self._guard(exc) from None

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        if allowed is not None and len(allowed) == 0:
            return []
        try:
            hits = [h for segment, rows in self._split(allowed) for h in segment.dense_search(vector, n, rows)]
        except IndexDamagedError as exc:
            raise self._guard(exc) from None
        return _top(hits, n)

    def bm25_search(self, query: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        tokens = tokenize(query)
        if not tokens:
            return []
        try:
            parts = []
            for segment, rows in self._split(allowed):
                keep = None  # tombstoned chunks already score 0; only a filter needs a mask
                if rows is not None:
                    keep = np.zeros(segment.info.chunks, dtype=bool)
                    keep[segment.positions(rows)] = True
                parts.append((segment, keep))
            scores = dict(zip([id(s) for s in self._by_rowid], self._lexical.scores(tokens), strict=True))
        except IndexDamagedError as exc:
            raise self._guard(exc) from None
        hits: list[tuple[int, float]] = []
        for segment, keep in parts:
            seg_scores = scores[id(segment)] if keep is None else np.where(keep, scores[id(segment)], 0)
            top = np.flatnonzero(seg_scores > 0)
            if len(top) > n:
                top = top[np.argpartition(-seg_scores[top], n - 1)[:n]]
            hits += [(int(segment.rowids[p]), float(seg_scores[p])) for p in top]
        return _top(hits, n)

    def doc_ids_of(self, rowids: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for segment, rows in self._group(rowids).values():
            marks = ",".join("?" * len(rows))
            out.update({r[0]: r[1] for r in self._query(segment, f"SELECT rowid, doc_id FROM chunks WHERE rowid IN "
                                                                 f"({marks})", rows)})
        return out

    def chunk_rows(self, rowids: Sequence[int]) -> dict[int, sqlite3.Row]:
        out: dict[int, Any] = {}
        for segment, rows in self._group(rowids).values():
            marks = ",".join("?" * len(rows))
            found = self._query(segment, f"""SELECT c.rowid AS rowid, c.id, c.doc_id, c.start, c."end", c.page, c.text,
                       d.title, d.source_url, d.tickers, d.doc_type, d.date,
                       json_extract(d.metadata, '$.company') AS company
                FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.rowid IN ({marks})""", rows)
            out.update({r["rowid"]: r for r in found})
        return out

    def _query(self, segment: Segment, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        try:
            return segment.query(sql, params)
        except IndexDamagedError as exc:
            raise self._guard(exc) from None

    # ---- for tests and benchmarks ---------------------------------------------------------------
    @property
    def hnsw(self) -> Any:
        """The HNSW graph of the largest segment, if it has one."""
        largest = max(self.segments, key=lambda s: s.info.chunks, default=None)
        return largest.hnsw if largest is not None else None
