"""On-disk index: FAISS (dense) + BM25 (lexical) + SQLite (documents, chunks) in generations.

Layout of an index directory:
    manifest.json        format version, embedding model + dim, current generation (atomically replaced)
    gen-000007/          one complete, immutable generation
        store.sqlite     documents and chunks; chunk rowid == FAISS id
        vectors.faiss    IndexIDMap2(IndexFlatIP) of normalised vectors
        bm25/            bm25s state, plus bm25_rowids.npy (BM25 position -> chunk rowid)
    .write.lock          serialises writers across processes

A write copies the current generation, applies the change, fsyncs, and only then points the manifest at
the new generation. A crash at any point leaves the manifest on the last complete generation, and readers
hold the generation they opened, so nobody ever sees a half-written index.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from rag.chunking import context_line, index_text
from rag.entities import EntityIndex, entity_words
from rag.entities import build as build_entities
from rag.errors import IndexDamagedError, IndexMismatchError, IndexMissingError, NotFoundError, StorageFullError
from rag.models import Chunk, Document, DocumentInfo, SearchFilters
from rag.settings import AnnSettings
from rag.text import tokenize

if TYPE_CHECKING:
    import faiss

# faiss and bm25s (which pulls in scipy) cost ~0.5 s to import; listing, getting and deleting documents need
# neither, so they are imported where vectors or BM25 state are first touched.

log = logging.getLogger("rag")

# 2: each chunk is embedded and BM25-indexed with its document's context line (rag.chunking.context_line).
FORMAT_VERSION = 2
KEEP_GENERATIONS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, tickers TEXT NOT NULL, date TEXT, source_url TEXT,
    doc_type TEXT, path TEXT, content_hash TEXT NOT NULL, text TEXT NOT NULL, pages TEXT NOT NULL,
    metadata TEXT NOT NULL, ingested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
"""


class Manifest(BaseModel):
    format_version: int = FORMAT_VERSION
    embedding_model: str
    embedding_backend: str = Field("torch", description="Backend that built the index (torch, onnx, onnx-int8).")
    dim: int
    generation: int
    updated_at: str


class DocumentUpsert(BaseModel):
    """A document with its chunks and their vectors (rows aligned with chunks)."""

    model_config = {"arbitrary_types_allowed": True}

    document: Document
    chunks: list[Chunk]
    vectors: np.ndarray


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for child in path.rglob("*"):
        if child.is_file():
            with open(child, "rb") as fh:
                os.fsync(fh.fileno())
    for folder in [path, *[p for p in path.rglob("*") if p.is_dir()]]:
        _fsync_dir(folder)


def _flat_view(vectors: faiss.IndexIDMap2, dim: int) -> np.ndarray:
    """The (n, dim) float32 vectors of an IndexIDMap2(IndexFlat) in storage order, without copying them."""
    import faiss

    n = vectors.ntotal
    if not n:
        return np.zeros((0, dim), dtype=np.float32)
    return faiss.rev_swig_ptr(faiss.downcast_index(vectors.index).get_xb(), n * dim).reshape(n, dim)


def _index_texts(db: sqlite3.Connection) -> list[tuple[int, str]]:
    """(rowid, text as embedded and BM25-indexed) of every chunk, in rowid order."""
    rows = db.execute('SELECT c.rowid, c.text, d.title, d.tickers, d.metadata FROM chunks c '
                      'JOIN documents d ON d.id = c.doc_id ORDER BY c.rowid').fetchall()
    return [(r[0], index_text(context_line(r[2], json.loads(r[3]), json.loads(r[4])), r[1])) for r in rows]


def _gen_dir(root: Path, generation: int) -> Path:
    return root / f"gen-{generation:06d}"


def generation_numbers(root: Path) -> list[int]:
    """Generation folders on disk, newest first."""
    numbers = []
    for folder in root.glob("gen-*"):
        suffix = folder.name.removeprefix("gen-")
        if suffix.isdigit() and folder.is_dir():
            numbers.append(int(suffix))
    return sorted(numbers, reverse=True)


def damaged(generation: int, what: str, exc: BaseException | None = None) -> IndexDamagedError:
    """A damage error naming the generation and file but no absolute path (messages reach HTTP callers), nor the
    library's own message (faiss puts its source paths in it)."""
    cause = f" ({type(exc).__name__})" if exc is not None else ""
    return IndexDamagedError(f"index generation {generation} is damaged: {what}{cause}; run `rag index check` "
                             "and `rag index repair`")


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    # faiss reports write failures as RuntimeError with strerror text; SQLite as "database or disk is full".
    return isinstance(exc, RuntimeError | sqlite3.Error) and ("No space left" in text or "disk is full" in text)


def _doc_from_row(row: sqlite3.Row) -> Document:
    return Document(
        id=row["id"], text=row["text"], title=row["title"], tickers=json.loads(row["tickers"]),
        date=row["date"], source_url=row["source_url"], doc_type=row["doc_type"], path=row["path"],
        pages=json.loads(row["pages"]), metadata=json.loads(row["metadata"]),
    )


class Snapshot:
    """A read-only view of one generation; safe to share between threads. The SQLite store opens at once; the
    vectors and the BM25 state load on first search (under a lock), so reads of documents stay cheap."""

    def __init__(self, root: Path, manifest: Manifest, ann: AnnSettings | None = None) -> None:
        self.manifest = manifest
        self.generation = manifest.generation
        self.folder = _gen_dir(root, manifest.generation)
        self._ann = ann
        # Set when a file of this generation turns out damaged (possibly only at first search, since vectors and
        # BM25 load lazily); Library then falls back to an older intact generation.
        self.damaged: str | None = None
        # Set on a snapshot served instead of a damaged newer generation: what readers are missing.
        self.fallback_note: str | None = None
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        store = self.folder / "store.sqlite"
        try:
            if not store.is_file() or store.stat().st_size == 0:
                raise damaged(self.generation, "store.sqlite is missing or empty")
            self._db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("SELECT count(*) FROM documents").fetchone()  # fails fast on a broken header/schema
        except sqlite3.Error as exc:
            raise damaged(self.generation, "store.sqlite is unreadable", exc) from None

    def _mark_damaged(self, error: IndexDamagedError) -> IndexDamagedError:
        self.damaged = str(error)
        return error

    @cached_property
    def _dense(self) -> dict[str, Any]:
        try:
            return self._load_dense()
        except IndexDamagedError as exc:
            raise self._mark_damaged(exc) from None
        except Exception as exc:  # noqa: BLE001  # faiss raises RuntimeError, numpy ValueError/EOFError...
            raise self._mark_damaged(damaged(self.generation, "vectors.faiss is unreadable", exc)) from None

    def _load_dense(self) -> dict[str, Any]:
        import faiss

        with self._load_lock:
            index = faiss.read_index(str(self.folder / "vectors.faiss"))
            if index.ntotal != self.counts()["chunks"] or index.d != self.manifest.dim:
                raise damaged(self.generation, f"vectors.faiss holds {index.ntotal} {index.d}-d vectors for "
                              f"{self.counts()['chunks']} chunks")
            ids = faiss.vector_to_array(index.id_map).astype(np.int64)
            order = np.argsort(ids)
            hnsw = None
            hnsw_path = self.folder / "vectors.hnsw.faiss"
            if self._ann is not None and self._ann.method == "hnsw" and hnsw_path.exists():
                hnsw = faiss.read_index(str(hnsw_path))
                hnsw.hnsw.efSearch = self._ann.ef_search
            # Exact search runs on a zero-copy numpy view of the flat vectors: one matrix-vector product beats
            # IndexFlatIP's per-call overhead for single queries (issue #8 measured 7.1 vs 14.4 ms at 100k x 384).
            return {"index": index, "vectors": _flat_view(index, self.manifest.dim), "ids": ids, "order": order,
                    "sorted_ids": ids[order], "hnsw": hnsw}

    @cached_property
    def _lexical(self) -> tuple[np.ndarray, Any]:
        try:
            return self._load_lexical()
        except IndexDamagedError as exc:
            raise self._mark_damaged(exc) from None
        except Exception as exc:  # noqa: BLE001  # np.load: ValueError/EOFError; bm25s: json/numpy errors
            raise self._mark_damaged(damaged(self.generation, "the BM25 state is unreadable", exc)) from None

    def _load_lexical(self) -> tuple[np.ndarray, Any]:
        with self._load_lock:
            rowids = np.load(self.folder / "bm25_rowids.npy", allow_pickle=False)
            chunks = self.counts()["chunks"]
            if rowids.ndim != 1 or len(rowids) != chunks:
                raise damaged(self.generation, f"bm25_rowids.npy lists {rowids.size} chunks, the store {chunks}")
            if not len(rowids):
                return rowids, None
            import bm25s

            bm25 = bm25s.BM25.load(str(self.folder / "bm25"))
            if int(bm25.scores.get("num_docs", len(rowids))) != len(rowids):
                raise damaged(self.generation, "bm25/ indexes another number of chunks than the store")
            return rowids, bm25

    @cached_property
    def entities(self) -> EntityIndex:
        """Companies of this generation's documents and the names that link a question to them."""
        rows = self._query("SELECT id, json_extract(metadata, '$.company') AS company, tickers FROM documents")
        documents = [(r["id"], r["company"], json.loads(r["tickers"])) for r in rows]
        rowids, bm25 = self._lexical
        docs_containing: dict[str, set[str]] = {}
        if bm25 is not None:
            doc_of = {r[0]: r[1] for r in self._query("SELECT rowid, doc_id FROM chunks")}
            indptr, indices = bm25.scores["indptr"], bm25.scores["indices"]
            for word in entity_words(documents):
                column = bm25.vocab_dict.get(word)
                if column is not None:
                    positions = indices[indptr[column]:indptr[column + 1]]
                    docs_containing[word] = {doc_of[int(rowids[i])] for i in positions}
        return build_entities(documents, docs_containing)

    @property
    def faiss_index(self) -> faiss.IndexIDMap2:
        return self._dense["index"]

    @property
    def vectors(self) -> np.ndarray:
        return self._dense["vectors"]

    @property
    def ids(self) -> np.ndarray:
        return self._dense["ids"]

    @property
    def hnsw(self) -> Any:
        return self._dense["hnsw"]

    @property
    def bm25_rowids(self) -> np.ndarray:
        return self._lexical[0]

    @property
    def bm25(self) -> Any:
        return self._lexical[1]

    def close(self) -> None:
        self._db.close()

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                # A truncated file passes the open-time check and fails on the first page it lacks.
                raise self._mark_damaged(damaged(self.generation, "store.sqlite is unreadable", exc)) from None

    def sample_vectors(self, n: int) -> tuple[list[str], np.ndarray]:
        """Texts and stored vectors of up to n chunks spread over the index (backend agreement checks)."""
        with self._lock:
            rows = _index_texts(self._db)
        step = max(1, len(rows) // n)
        picked = rows[::step][:n]
        vectors = self.vectors[self.positions(np.array([r[0] for r in picked], dtype=np.int64))]
        return [r[1] for r in picked], vectors

    # ---- counts and documents -------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        row = self._query("SELECT (SELECT count(*) FROM documents) d, (SELECT count(*) FROM chunks) c")[0]
        return {"documents": row["d"], "chunks": row["c"]}

    def content_hashes(self) -> dict[str, str]:
        return {r["id"]: r["content_hash"] for r in self._query("SELECT id, content_hash FROM documents")}

    def get_document(self, doc_id: str) -> Document:
        rows = self._query("SELECT * FROM documents WHERE id = ?", (doc_id,))
        if not rows:
            raise NotFoundError(f"no document with id {doc_id!r}")
        return _doc_from_row(rows[0])

    def list_documents(self, filters: SearchFilters | None = None) -> list[DocumentInfo]:
        where, params = self._where(filters)
        rows = self._query(
            f"""SELECT d.id, d.title, d.tickers, d.date, d.source_url, d.doc_type, d.path, d.content_hash,
                   d.ingested_at, length(d.text) n_chars,
                   (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) n_chunks
                FROM documents d {where} ORDER BY d.id""",
            params,
        )
        return [
            DocumentInfo(**{**dict(r), "tickers": json.loads(r["tickers"])}) for r in rows
        ]

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        rows = self._query('SELECT * FROM chunks WHERE doc_id = ? ORDER BY ordinal', (doc_id,))
        return [Chunk(**{k: r[k] for k in r.keys() if k != "rowid"}) for r in rows]

    # ---- retrieval ------------------------------------------------------------------------------
    @staticmethod
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

    def allowed_rowids(self, filters: SearchFilters | None) -> np.ndarray | None:
        """Chunk rowids passing the filters, or None when there is no filter."""
        if filters is None or filters.is_empty():
            return None
        where, params = self._where(filters)
        rows = self._query(f"SELECT c.rowid FROM chunks c JOIN documents d ON d.id = c.doc_id {where}", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def positions(self, rowids: np.ndarray) -> np.ndarray:
        """Row positions in `matrix` of chunk rowids (all of which must exist)."""
        return self._dense["order"][np.searchsorted(self._dense["sorted_ids"], rowids)]

    def vector_of(self, rowid: int) -> np.ndarray:
        return self.vectors[self.positions(np.array([rowid], dtype=np.int64))[0]]

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        if self.faiss_index.ntotal == 0 or (allowed is not None and len(allowed) == 0):
            return []
        if self.hnsw is not None:
            import faiss

            selector = None if allowed is None else faiss.IDSelectorBatch(self.positions(allowed))
            params = None if selector is None else faiss.SearchParametersHNSW(
                sel=selector, efSearch=self.hnsw.hnsw.efSearch)
            scores, pos = self.hnsw.search(vector.reshape(1, -1), min(n, self.faiss_index.ntotal), params=params)
            return [(int(self.ids[p]), float(s)) for p, s in zip(pos[0], scores[0], strict=True) if p >= 0]
        candidates = None if allowed is None else self.positions(allowed)
        scores = (self.vectors if candidates is None else self.vectors[candidates]) @ vector
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        pos = top if candidates is None else candidates[top]
        return [(int(self.ids[p]), float(scores[t])) for p, t in zip(pos, top, strict=True)]

    def bm25_search(self, query: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        tokens = [t for t in tokenize(query) if self.bm25 is not None and t in self.bm25.vocab_dict]
        if not tokens or self.bm25 is None:
            return []
        mask = None if allowed is None else np.isin(self.bm25_rowids, allowed).astype(np.float32)
        scores = self.bm25.get_scores(tokens, weight_mask=mask)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        return [(int(self.bm25_rowids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def doc_ids_of(self, rowids: Sequence[int]) -> dict[int, str]:
        if not rowids:
            return {}
        marks = ",".join("?" * len(rowids))
        return {r[0]: r[1] for r in self._query(f"SELECT rowid, doc_id FROM chunks WHERE rowid IN ({marks})",
                                                 list(rowids))}

    def chunk_rows(self, rowids: Sequence[int]) -> dict[int, sqlite3.Row]:
        if not rowids:
            return {}
        marks = ",".join("?" * len(rowids))
        rows = self._query(
            f"""SELECT c.rowid AS rowid, c.id, c.doc_id, c.start, c."end", c.page, c.text, d.title,
                       d.source_url, d.tickers, d.doc_type, d.date, json_extract(d.metadata, '$.company') AS company
                FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.rowid IN ({marks})""",
            list(rowids),
        )
        return {r["rowid"]: r for r in rows}


class IndexStore:
    """Owns one index directory: opens snapshots, applies writes as new generations. Reading needs only the
    configured model's name (no model is loaded); a write brings its vectors' dimension and backend."""

    def __init__(self, root: Path, embedding_model: str, ann: AnnSettings | None = None) -> None:
        self.root = Path(root)
        self.embedding_model = embedding_model
        self.ann = ann

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def read_manifest(self) -> Manifest | None:
        try:
            manifest = Manifest.model_validate_json(self.manifest_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as exc:
            raise IndexDamagedError(f"index manifest.json is unreadable ({type(exc).__name__}); run `rag index "
                                    "check` and `rag index repair`") from None
        if manifest.format_version != FORMAT_VERSION:
            raise IndexMismatchError(
                f"index at {self.root} has format {manifest.format_version}, this rag reads {FORMAT_VERSION}: "
                "re-ingest the documents into a new index directory"
            )
        if manifest.embedding_model != self.embedding_model:
            raise IndexMismatchError(
                f"index at {self.root} was built with {manifest.embedding_model} ({manifest.dim}-d) but the "
                f"configured embedding model is {self.embedding_model}; re-ingest into a new index directory or "
                "configure the original model"
            )
        return manifest

    def open(self) -> Snapshot:
        manifest = self.read_manifest()
        if manifest is None:
            raise IndexMissingError(f"no index at {self.root}: run `rag ingest PATH` first")
        return Snapshot(self.root, manifest, self.ann)

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".write.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def write(self, upserts: Sequence[DocumentUpsert], deletes: Sequence[str] = (), dim: int | None = None,
              backend: str = "torch") -> int:
        """Apply upserts (replacing any document with the same id) and deletes as one new generation.
        `dim` and `backend` describe the writer's embedder (recorded when the index is created). Returns the new
        generation number."""
        with self._write_lock():
            current = self.read_manifest()
            dim = current.dim if current else dim
            if dim is None:
                raise ValueError("creating an index needs the embedding dimension")
            wrong = [u.document.id for u in upserts if u.vectors.ndim != 2 or u.vectors.shape[1] != dim]
            if wrong:
                raise IndexMismatchError(f"index at {self.root} holds {dim}-d vectors; document {wrong[0]}'s "
                                         "vectors have another shape")
            new_gen = (current.generation if current else 0) + 1
            target = _gen_dir(self.root, new_gen)
            staging = self.root / f".staging-{new_gen:06d}-{os.getpid()}"
            self._remove_stale(staging.parent)
            manifest = Manifest(
                embedding_model=self.embedding_model, embedding_backend=current.embedding_backend if current else
                backend, dim=dim, generation=new_gen, updated_at=datetime.now(UTC).isoformat(timespec="seconds"))
            try:
                staging.mkdir()
                self._build(staging, current, upserts, deletes, dim)
                # A copy inside the generation lets `rag index repair` rebuild a lost or damaged root manifest.
                (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2), "utf-8")
                _fsync_tree(staging)
                if target.exists():  # left over by a crash after rename, before the manifest switch
                    shutil.rmtree(target)
                os.rename(staging, target)
                self.publish(manifest)
            except BaseException as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if _is_disk_full(exc):
                    raise StorageFullError(f"no space left on the device of the index while writing generation "
                                           f"{new_gen}; nothing was written, generation "
                                           f"{current.generation if current else 0} is unchanged") from None
                raise
            self._prune(new_gen)
            return new_gen

    def _build(self, folder: Path, current: Manifest | None, upserts: Sequence[DocumentUpsert],
               deletes: Sequence[str], dim: int) -> None:
        import bm25s
        import faiss

        db_path = folder / "store.sqlite"
        db = sqlite3.connect(db_path)
        try:
            if current is not None:
                vectors = self._read_current(current, db)
            else:
                vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            db.executescript(_SCHEMA)
            db.execute("PRAGMA foreign_keys = ON")
            replaced = [u.document.id for u in upserts]
            gone = [r[0] for r in db.execute(
                f"SELECT rowid FROM chunks WHERE doc_id IN ({','.join('?' * len(replaced + list(deletes)))})",
                [*replaced, *deletes],
            )] if (replaced or deletes) else []
            if gone:
                vectors.remove_ids(np.array(gone, dtype=np.int64))
            for doc_id in [*replaced, *deletes]:
                db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            now = datetime.now(UTC).isoformat(timespec="seconds")
            for up in upserts:
                doc = up.document
                db.execute(
                    "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (doc.id, doc.title, json.dumps(doc.tickers), doc.date.isoformat() if doc.date else None,
                     doc.source_url, doc.doc_type, doc.path, doc.content_hash, doc.text,
                     json.dumps([p.model_dump() for p in doc.pages]), json.dumps(doc.metadata), now),
                )
                rowids = [
                    db.execute(
                        'INSERT INTO chunks (id, doc_id, ordinal, start, "end", page, text) VALUES (?,?,?,?,?,?,?)',
                        (c.id, c.doc_id, c.ordinal, c.start, c.end, c.page, c.text),
                    ).lastrowid
                    for c in up.chunks
                ]
                if rowids:
                    vectors.add_with_ids(up.vectors.astype(np.float32), np.array(rowids, dtype=np.int64))
            db.commit()
            rows = _index_texts(db)
        finally:
            db.close()
        if self.ann and self.ann.method == "hnsw" and vectors.ntotal >= self.ann.hnsw_min_chunks:
            # Positions in the HNSW graph follow the flat storage order, which Snapshot maps back to rowids.
            hnsw = faiss.IndexHNSWFlat(dim, self.ann.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = self.ann.ef_construction
            hnsw.add(_flat_view(vectors, dim))
            faiss.write_index(hnsw, str(folder / "vectors.hnsw.faiss"))
        faiss.write_index(vectors, str(folder / "vectors.faiss"))
        rowids_arr = np.array([r[0] for r in rows], dtype=np.int64)
        np.save(folder / "bm25_rowids.npy", rowids_arr)
        if rows:
            bm25 = bm25s.BM25()
            # An empty token list would make bm25s choke; a placeholder keeps positions aligned.
            bm25.index([tokenize(r[1]) or ["\u2205"] for r in rows], show_progress=False)
            bm25.save(str(folder / "bm25"))

    def _read_current(self, current: Manifest, db: sqlite3.Connection) -> faiss.IndexIDMap2:
        """Copy the current generation's store into `db` and return its vectors; a damaged generation is refused
        (a write on top of it would carry the damage forward)."""
        import faiss

        folder = _gen_dir(self.root, current.generation)
        try:
            src = sqlite3.connect(f"file:{folder / 'store.sqlite'}?mode=ro", uri=True)
            try:
                src.backup(db)
            finally:
                src.close()
        except sqlite3.Error as exc:
            if _is_disk_full(exc):
                raise
            raise damaged(current.generation, "store.sqlite is unreadable", exc) from None
        try:
            vectors = faiss.read_index(str(folder / "vectors.faiss"))
        except RuntimeError as exc:
            raise damaged(current.generation, "vectors.faiss is unreadable", exc) from None
        chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        if vectors.ntotal != chunks:
            raise damaged(current.generation, f"vectors.faiss holds {vectors.ntotal} vectors for {chunks} chunks")
        return vectors

    def publish(self, manifest: Manifest) -> None:
        """Point the index at `manifest.generation` (atomic replace, fsynced)."""
        tmp = self.root / f".manifest.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(manifest.model_dump_json(indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.manifest_path)
        _fsync_dir(self.root)

    def _remove_stale(self, root: Path) -> None:
        """Staging folders and manifest temp files of writers that crashed (we hold the lock, so none is live)."""
        for stale in root.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in root.glob(".manifest.*.tmp"):
            stale.unlink(missing_ok=True)

    def remove_stale(self) -> bool:
        """Clean up after crashed writers now (at server start, `rag index check`) instead of at the next write.
        Skipped, returning False, while a writer holds the lock."""
        if not self.root.is_dir():
            return True
        with open(self.root / ".write.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            try:
                self._remove_stale(self.root)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return True

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        with self._write_lock():
            yield

    def _prune(self, current: int) -> None:
        # Readers that already opened an older generation keep working: its files are loaded in memory
        # or held open, and unlinking does not disturb open files.
        for folder in self.root.glob("gen-*"):
            number = int(folder.name.split("-")[1])
            if number <= current - KEEP_GENERATIONS or number > current:
                shutil.rmtree(folder, ignore_errors=True)
