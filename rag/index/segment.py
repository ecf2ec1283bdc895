"""One immutable segment: a batch of documents with their chunks, vectors and lexical postings.

    segments/seg-000007/
        store.sqlite        documents and chunks; chunk rowid == the chunk's id everywhere (global, never reused)
        rowids.npy          chunk rowids in storage order (ascending): row p of the vectors and postings
        vectors.npy         normalised float32 vectors, memory-mapped when read (aligned, so BLAS runs on them: a
                            FAISS IndexFlat file mapped with IO_FLAG_MMAP_IFC gave unaligned rows, 3x slower)
        vectors.hnsw.faiss  a FAISS HNSW graph over the same rows, only for large merged segments
        postings.npz        term frequencies and chunk lengths (rag.index.lexical)

A segment is written into a staging folder, fsynced, then renamed into place; it is never changed afterwards
(deletes are tombstones in the manifest), so readers can share it and a copy of it is never needed.
"""

from __future__ import annotations

import copy
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import context_line, index_text
from rag.errors import IndexDamagedError
from rag.index.lexical import Postings
from rag.index.manifest import SegmentInfo, crc32_of, damaged, fsync_tree
from rag.periods import Periods, document_periods
from rag.settings import AnnSettings
from rag.text import TOKENIZER_VERSION, tokenize

log = logging.getLogger("rag")

SCHEMA = """
CREATE TABLE documents (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, tickers TEXT NOT NULL, date TEXT, source_url TEXT,
    doc_type TEXT, path TEXT, content_hash TEXT NOT NULL, text TEXT NOT NULL, pages TEXT NOT NULL,
    metadata TEXT NOT NULL, ingested_at TEXT NOT NULL
);
CREATE TABLE chunks (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL,
    doc_id TEXT NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER, text TEXT NOT NULL
);
CREATE INDEX chunks_doc ON chunks(doc_id);
"""


def index_texts(db: sqlite3.Connection, where: str = "", params: Sequence[object] = ()) -> list[tuple[int, str]]:
    """(rowid, text as embedded and BM25-indexed) of chunks, in rowid order."""
    rows = db.execute('SELECT c.rowid, c.text, d.title, d.tickers, d.metadata FROM chunks c '
                      f'JOIN documents d ON d.id = c.doc_id {where} ORDER BY c.rowid', params).fetchall()
    return [(r[0], index_text(context_line(r[2], json.loads(r[3]), json.loads(r[4])), r[1])) for r in rows]


def flat_view(index: Any, dim: int) -> np.ndarray:
    """The (n, dim) float32 vectors of an IndexFlat in storage order, without copying them."""
    import faiss

    n = index.ntotal
    if not n:
        return np.zeros((0, dim), dtype=np.float32)
    return faiss.rev_swig_ptr(faiss.downcast_index(index).get_xb(), n * dim).reshape(n, dim)


def build_segment(folder: Path, name: str, fill: Callable[[sqlite3.Connection], None], vectors: np.ndarray,
                  postings: Postings, dim: int, ann: AnnSettings | None) -> SegmentInfo:
    """Write a segment into `folder` (a staging folder: the caller renames it into place). `fill` inserts the
    documents and chunks (BEGIN/COMMIT its own); `vectors` and `postings` rows follow the chunks' rowid order, and
    `postings` come from this rag's tokenizer."""
    import faiss

    folder.mkdir(parents=True)
    db = sqlite3.connect(folder / "store.sqlite", isolation_level=None)
    try:
        # No journal and no syncs of SQLite's own: the file is new, and the whole segment is fsynced before the
        # manifest can name it (a crash before that leaves a staging folder, removed by the next writer).
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.executescript(SCHEMA)
        fill(db)  # in autocommit mode: it runs its own transactions (ATTACH cannot run inside one)
        documents = db.execute("SELECT count(*) FROM documents").fetchone()[0]
        rowids = np.array([r[0] for r in db.execute("SELECT rowid FROM chunks ORDER BY rowid")], dtype=np.int64)
    finally:
        db.close()
    if not (len(rowids) == len(vectors) == len(postings.doc_len)):
        raise ValueError(f"segment {name}: {len(rowids)} chunks, {len(vectors)} vectors, "
                         f"{len(postings.doc_len)} postings rows")
    np.save(folder / "rowids.npy", rowids)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(rowids), dim)
    hnsw = bool(ann and ann.method == "hnsw" and len(rowids) >= ann.hnsw_min_chunks)
    if hnsw:
        assert ann is not None
        graph = faiss.IndexHNSWFlat(dim, ann.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = ann.ef_construction
        graph.add(vectors)
        faiss.write_index(graph, str(folder / "vectors.hnsw.faiss"))
    np.save(folder / "vectors.npy", vectors)
    postings.save(folder / "postings.npz")
    fsync_tree(folder)
    return SegmentInfo(
        name=name, documents=documents, chunks=len(rowids),
        min_rowid=int(rowids[0]) if len(rowids) else None, max_rowid=int(rowids[-1]) if len(rowids) else None,
        files={p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()},
        crc32={p.name: crc32_of(p) for p in sorted(folder.iterdir()) if p.is_file()}, hnsw=hnsw,
        tokenizer_version=TOKENIZER_VERSION)


@dataclass(frozen=True)
class DocumentFacts:
    """What question linking reads of a document (rag.entities, rag.periods)."""

    id: str
    company: str | None
    tickers: tuple[str, ...]
    periods: Periods


class Segment:
    """A read-only segment; safe to share between threads. The store opens at once (after checking every file's
    size against the manifest, which catches truncated and emptied files without reading them); vectors and
    postings load on first search. The vectors are memory-mapped, so opening a large index reads nothing."""

    def __init__(self, folder: Path, info: SegmentInfo, dim: int, ann: AnnSettings | None = None) -> None:
        self.folder = folder
        self.info = info
        self.dim = dim
        self._ann = ann
        self.where = f"segment {info.name}"
        self.deleted = frozenset(info.deleted)
        self._lock = threading.Lock()
        self._load_lock = threading.RLock()
        self._word_documents: dict[str, frozenset[str]] = {}  # shared with reused copies: the segment never changes
        self.check_sizes()
        try:
            self._db = sqlite3.connect(f"file:{folder / 'store.sqlite'}?mode=ro", uri=True, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("SELECT count(*) FROM documents").fetchone()  # fails fast on a broken header/schema
        except sqlite3.Error as exc:
            raise damaged(self.where, "store.sqlite is unreadable", exc) from None

    def reuse(self, info: SegmentInfo) -> Segment | None:
        """This segment as listed by a newer manifest, sharing its open store and whatever it has loaded, or None
        when `info` describes other files (a name reused after a repair). Only the tombstones may differ."""
        if info.name != self.info.name or info.files != self.info.files or info.crc32 != self.info.crc32:
            return None
        self.check_sizes()
        if info.deleted == self.info.deleted:
            return self
        clone = copy.copy(self)  # the connection, the locks and the loaded arrays are shared, not copied
        clone.info = info
        clone.deleted = frozenset(info.deleted)
        clone.__dict__.pop("live", None)
        clone.__dict__.pop("live_count", None)
        return clone

    def check_sizes(self) -> None:
        for name, size in self.info.files.items():
            try:
                actual = (self.folder / name).stat().st_size
            except OSError:
                raise damaged(self.where, f"{name} is missing") from None
            if actual != size:
                raise damaged(self.where, f"{name} is {'empty' if not actual else 'truncated or changed'} "
                              f"({actual} of {size} bytes)")

    def close(self) -> None:
        self._db.close()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                # A damaged page passes the open-time check and fails on the first read of it.
                raise damaged(self.where, "store.sqlite is unreadable", exc) from None

    def _load(self, what: str, load: Callable[[], Any]) -> Any:
        with self._load_lock:
            try:
                self.check_sizes()
                return load()
            except IndexDamagedError:
                raise
            except Exception as exc:  # noqa: BLE001  # faiss RuntimeError, numpy ValueError/EOFError, zip errors
                raise damaged(self.where, f"{what} is unreadable", exc) from None

    @cached_property
    def rowids(self) -> np.ndarray:
        rowids = self._load("rowids.npy", lambda: np.load(self.folder / "rowids.npy", allow_pickle=False))
        if rowids.ndim != 1 or len(rowids) != self.info.chunks:
            raise damaged(self.where, f"rowids.npy lists {rowids.size} chunks, the segment {self.info.chunks}")
        return rowids

    @cached_property
    def live(self) -> np.ndarray:
        """Which rows are not tombstoned."""
        live = np.ones(len(self.rowids), dtype=bool)
        if self.deleted:
            dead = self.rowids_of_documents(sorted(self.deleted))
            live[np.searchsorted(self.rowids, dead)] = False
        return live

    @cached_property
    def doc_of_row(self) -> list[str]:
        """Document id of each row (position)."""
        return [r[0] for r in self.query("SELECT doc_id FROM chunks ORDER BY rowid")]

    @cached_property
    def document_facts(self) -> list[DocumentFacts]:
        """Each document's company, tickers and periods, tombstoned ones included. Read once per segment, not once
        per generation: a generation after a write reuses it, and the query reads past every document's text."""
        rows = self.query("""SELECT id, title, tickers, json_extract(metadata, '$.company') AS company,
                                    coalesce(json_extract(metadata, '$.period'),
                                             json_extract(metadata, '$.quarter')) AS period FROM documents""")
        return [DocumentFacts(r["id"], r["company"], tuple(json.loads(r["tickers"])),
                              document_periods(r["title"], r["period"] and str(r["period"]))) for r in rows]

    def documents_with_word(self, word: str) -> frozenset[str]:
        """Documents (tombstoned ones included) whose chunks hold the folded `word`; remembered per segment."""
        found = self._word_documents.get(word)
        if found is None:
            hit = self.postings.lookup(word)
            doc_of = self.doc_of_row
            found = frozenset(doc_of[p] for p in hit[0]) if hit is not None else frozenset()
            self._word_documents[word] = found
        return found

    def rowids_of_documents(self, doc_ids: Sequence[str]) -> np.ndarray:
        rows: list[int] = []
        for start in range(0, len(doc_ids), 500):  # SQLite caps bound parameters
            part = doc_ids[start:start + 500]
            rows += [r[0] for r in self.query(f"SELECT rowid FROM chunks WHERE doc_id IN ({','.join('?' * len(part))})",
                                              part)]
        return np.sort(np.array(rows, dtype=np.int64))

    @cached_property
    def vectors(self) -> np.ndarray:
        # A plain ndarray view of the mapping (np.memmap's subclass hooks cost on every product).
        vectors = self._load("vectors.npy", lambda: np.asarray(np.load(self.folder / "vectors.npy", mmap_mode="r",
                                                                       allow_pickle=False)))
        if vectors.shape != (self.info.chunks, self.dim) or vectors.dtype != np.float32:
            raise damaged(self.where, f"vectors.npy holds {vectors.shape} {vectors.dtype} vectors for "
                          f"{self.info.chunks} chunks")
        return vectors

    @cached_property
    def hnsw(self) -> Any:
        if not (self.info.hnsw and self._ann is not None and self._ann.method == "hnsw"):
            return None

        def load() -> Any:
            import faiss

            graph = faiss.read_index(str(self.folder / "vectors.hnsw.faiss"))
            if graph.ntotal != self.info.chunks:
                raise damaged(self.where, "vectors.hnsw.faiss holds another number of vectors than the store")
            graph.hnsw.efSearch = self._ann.ef_search
            return graph

        return self._load("vectors.hnsw.faiss", load)

    @cached_property
    def postings(self) -> Postings:
        if self.info.tokenizer_version != TOKENIZER_VERSION:
            return self._load("store.sqlite", self._retokenised)
        return self.stored_postings()

    def stored_postings(self) -> Postings:
        """postings.npz as written (what `rag index check` verifies), whatever tokenizer wrote it."""
        postings = self._load("postings.npz", lambda: Postings.load(self.folder / "postings.npz"))
        if len(postings.doc_len) != self.info.chunks:
            raise damaged(self.where, f"postings.npz indexes {len(postings.doc_len)} chunks, the segment "
                          f"{self.info.chunks}")
        return postings

    def _retokenised(self) -> Postings:
        """Postings rebuilt from the stored chunk texts by this rag's tokenizer, for a segment written by another
        (an index built before an upgrade, ~0.5 ms per chunk). Held in memory; `rag index compact` writes them."""
        log.warning("%s was BM25-indexed by tokenizer version %s, this rag tokenises as version %s: re-tokenising "
                    "its %d chunks in memory; run `rag index compact` once to store the result", self.where,
                    self.info.tokenizer_version, TOKENIZER_VERSION, self.info.chunks)
        with self._lock:
            texts = index_texts(self._db)
        if len(texts) != self.info.chunks:
            raise damaged(self.where, f"store.sqlite holds {len(texts)} chunks, the segment {self.info.chunks}")
        return Postings.from_tokens([tokenize(text) for _, text in texts])

    def positions(self, rowids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.rowids, rowids)

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """Top n (rowid, cosine) among live rows (and `allowed` rowids of this segment, when given)."""
        candidates = None if allowed is None else self.positions(allowed)
        if candidates is not None and self.deleted:
            candidates = candidates[self.live[candidates]]
        total = self.live_count if candidates is None else len(candidates)
        if not total:
            return []
        n = min(n, total)
        if self.hnsw is not None:
            import faiss

            params = None
            if candidates is not None:
                params = faiss.SearchParametersHNSW(sel=faiss.IDSelectorBatch(candidates),
                                                    efSearch=self.hnsw.hnsw.efSearch)
            elif self.deleted:
                dead = faiss.IDSelectorBatch(np.flatnonzero(~self.live))
                params = faiss.SearchParametersHNSW(sel=faiss.IDSelectorNot(dead), efSearch=self.hnsw.hnsw.efSearch)
            scores, pos = self.hnsw.search(vector.reshape(1, -1), n, params=params)
            return [(int(self.rowids[p]), float(s)) for p, s in zip(pos[0], scores[0], strict=True) if p >= 0]
        # A matrix-vector product on the memory-mapped rows beats IndexFlatIP's per-call overhead for single
        # queries (issue #8 measured 7.1 vs 14.4 ms at 100k x 384); the tests check both agree. Tombstoned rows
        # are scored and then masked: gathering the live rows would copy the whole matrix per query.
        if candidates is None:
            scores = self.vectors @ vector
            if self.deleted:
                scores[~self.live] = -np.inf
        else:
            scores = self.vectors[candidates] @ vector
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        pos = top if candidates is None else candidates[top]
        return [(int(self.rowids[p]), float(scores[t])) for p, t in zip(pos, top, strict=True)]

    @cached_property
    def live_count(self) -> int:
        return int(self.live.sum()) if self.deleted else self.info.chunks

    def verify(self, dim: int | None, files: dict[str, int], crc32: dict[str, int]) -> list[str]:
        """Every problem found by reading every file in full (`rag index check`); `files` and `crc32`: the sizes
        and checksums the manifest recorded."""
        problems: list[str] = []
        for name, size in files.items():
            path = self.folder / name
            actual = path.stat().st_size if path.is_file() else None
            if actual != size:
                problems.append(f"{name}: {'missing' if actual is None else 'empty' if not actual else 'truncated'} "
                                f"({actual or 0} of {size} bytes)")
            elif name in crc32 and crc32_of(path) != crc32[name]:
                problems.append(f"{name}: changed on disk (checksum mismatch)")
        try:
            verdict = self.query("PRAGMA quick_check")[0][0]
            if verdict != "ok":
                problems.append(f"store.sqlite: integrity check failed ({verdict[:80]})")
            stored = np.array([r[0] for r in self.query("SELECT rowid FROM chunks ORDER BY rowid")], dtype=np.int64)
            documents = self.query("SELECT count(*) FROM documents")[0][0]
            if documents != self.info.documents or len(stored) != self.info.chunks:
                problems.append(f"store.sqlite: {documents} documents and {len(stored)} chunks, the segment holds "
                                f"{self.info.documents} and {self.info.chunks}")
        except IndexDamagedError as exc:
            problems.append(f"store.sqlite: unreadable ({str(exc).split('(')[-1].split(')')[0]})")
            stored = None
        checks: list[tuple[str, Callable[[], object]]] = [
            ("rowids.npy", lambda: stored is None or np.array_equal(self.rowids, stored) or "do not match the store"),
            ("vectors.npy", lambda: bool(np.isfinite(self.vectors).all()) or "holds non-finite values"),
            ("postings.npz", lambda: self.stored_postings() is not None),
        ]
        if "vectors.hnsw.faiss" in files:
            checks.append(("vectors.hnsw.faiss", lambda: self._hnsw_count() == self.info.chunks
                           or "another number of vectors than the store"))
        for name, check in checks:
            if any(p.startswith(name) for p in problems):
                continue
            try:
                verdict = check()
            except IndexDamagedError as exc:
                cause = str(exc).split("; run")[0].split(": ", 1)[-1]
                problems.append(f"{name}: {cause}")
                continue
            if verdict is not True:
                problems.append(f"{name}: {verdict}")
        return problems

    def _hnsw_count(self) -> int:
        import faiss

        return self._load("vectors.hnsw.faiss",
                          lambda: faiss.read_index(str(self.folder / "vectors.hnsw.faiss")).ntotal)
