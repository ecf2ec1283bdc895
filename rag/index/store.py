"""The writer side of an index directory: appends segments, records tombstones, compacts, publishes manifests.

A write costs the size of the change: the new documents become one new segment (staged, fsynced, renamed into
place), replaced and deleted documents become tombstones, and only then does the manifest switch (atomic
replace). A crash at any point leaves the last published manifest; readers hold the generation they opened, so
nobody ever sees a half write. Compaction merges segments (concatenating rows and postings, no re-embedding; only
a segment written by another tokenizer version is re-tokenised) and drops tombstones; it runs on the newest small
segments when their count passes `max_segments`, and over everything on `rag index compact`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError

from rag.chunking import context_line, index_text
from rag.errors import IndexDamagedError, IndexMismatchError, IndexMissingError, StorageFullError
from rag.index.lexical import Postings
from rag.index.manifest import (
    FORMAT_VERSION,
    KEEP_GENERATIONS,
    Manifest,
    SegmentInfo,
    damaged,
    generation_numbers,
    is_disk_full,
    manifest_copy,
    seg_name,
    segment_dir,
    write_atomic,
)
from rag.index.segment import Segment, build_segment, index_texts
from rag.index.snapshot import Snapshot
from rag.models import Chunk, Document
from rag.settings import AnnSettings, IndexSettings
from rag.text import TOKENIZER_VERSION, tokenize

log = logging.getLogger("rag")


class DocumentUpsert(BaseModel):
    """A document with its chunks and their vectors (rows aligned with chunks)."""

    model_config = {"arbitrary_types_allowed": True}

    document: Document
    chunks: list[Chunk]
    vectors: np.ndarray


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _insert_upserts(db: sqlite3.Connection, upserts: Sequence[DocumentUpsert], first_rowid: int) -> None:
    now = _now()
    rowid = first_rowid
    db.execute("BEGIN")
    for up in upserts:
        doc = up.document
        db.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (doc.id, doc.title, json.dumps(doc.tickers), doc.date.isoformat() if doc.date else None,
             doc.source_url, doc.doc_type, doc.path, doc.content_hash, doc.text,
             json.dumps([p.model_dump() for p in doc.pages]), json.dumps(doc.metadata), now),
        )
        for c in up.chunks:
            db.execute('INSERT INTO chunks (rowid, id, doc_id, ordinal, start, "end", page, text) '
                       'VALUES (?,?,?,?,?,?,?,?)', (rowid, c.id, c.doc_id, c.ordinal, c.start, c.end, c.page, c.text))
            rowid += 1
    db.execute("COMMIT")


def plan_merge(live_chunks: Sequence[int], max_segments: int) -> int | None:
    """Index of the first segment of the newest run to merge into one, or None while there are at most
    `max_segments`. The run takes at least enough segments to halve the count, and grows over older segments no
    bigger than the run itself, so each chunk is rewritten O(log n) times, never the whole index per write."""
    if len(live_chunks) <= max_segments:
        return None
    start = len(live_chunks) - max(2, len(live_chunks) - max_segments // 2)
    start = max(start, 0)
    total = sum(live_chunks[start:])
    while start > 0 and live_chunks[start - 1] <= total:
        start -= 1
        total += live_chunks[start]
    return start


class IndexStore:
    """Owns one index directory: opens snapshots, applies writes as new generations. Reading needs only the
    configured model's name (no model is loaded); a write brings its vectors' dimension and backend."""

    def __init__(self, root: Path, embedding_model: str, ann: AnnSettings | None = None,
                 settings: IndexSettings | None = None) -> None:
        self.root = Path(root)
        self.embedding_model = embedding_model
        self.ann = ann
        self.settings = settings or IndexSettings()

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def read_manifest(self) -> Manifest | None:
        try:
            raw = self.manifest_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexDamagedError(f"index manifest.json is unreadable ({type(exc).__name__}); run `rag index "
                                    "check` and `rag index repair`") from None
        return self.parse_manifest(raw, "manifest.json")

    def parse_manifest(self, raw: bytes, name: str) -> Manifest:
        try:
            version = json.loads(raw).get("format_version")
        except (ValueError, AttributeError):
            version = None
        if isinstance(version, int) and version != FORMAT_VERSION:
            hint = ("run `rag index migrate` to convert it in place (one pass, no re-embedding)" if version == 2
                    else "re-ingest the documents into a new index directory")
            raise IndexMismatchError(f"index at {self.root} has format {version}, this rag reads {FORMAT_VERSION}: "
                                     f"{hint}")
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValidationError as exc:
            raise IndexDamagedError(f"index {name} is unreadable ({type(exc).__name__}); run `rag index check` "
                                    "and `rag index repair`") from None
        if manifest.embedding_model != self.embedding_model:
            raise IndexMismatchError(
                f"index at {self.root} was built with {manifest.embedding_model} ({manifest.dim}-d) but the "
                f"configured embedding model is {self.embedding_model}; re-ingest into a new index directory or "
                "configure the original model"
            )
        return manifest

    def kept_manifest(self, generation: int) -> Manifest | None:
        """A kept generation's manifest copy, or None when it is missing or unreadable."""
        try:
            return self.parse_manifest(manifest_copy(self.root, generation).read_bytes(), "manifest copy")
        except (OSError, IndexDamagedError, IndexMismatchError):
            return None

    def open(self, previous: Snapshot | None = None) -> Snapshot:
        """The current generation; `previous`, a snapshot this reader holds, lends it the segments they share."""
        manifest = self.read_manifest()
        if manifest is None:
            raise IndexMissingError(f"no index at {self.root}: run `rag ingest PATH` first")
        return Snapshot(self.root, manifest, self.ann, previous)

    def open_manifest(self, manifest: Manifest) -> Snapshot:
        return Snapshot(self.root, manifest, self.ann)

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".write.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ---- writing --------------------------------------------------------------------------------
    def write(self, upserts: Sequence[DocumentUpsert], deletes: Sequence[str] = (), dim: int | None = None,
              backend: str = "torch") -> int:
        """Apply upserts (replacing any document with the same id) and deletes as one new generation: a new
        segment for the upserts, tombstones for what they replace and for the deletes. `dim` and `backend` describe
        the writer's embedder (recorded when the index is created). Returns the new generation number."""
        with self.write_lock():
            current = self.read_manifest()
            dim = current.dim if current else dim
            if dim is None:
                raise ValueError("creating an index needs the embedding dimension")
            wrong = [u.document.id for u in upserts if u.vectors.ndim != 2 or u.vectors.shape[1] != dim]
            if wrong:
                raise IndexMismatchError(f"index at {self.root} holds {dim}-d vectors; document {wrong[0]}'s "
                                         "vectors have another shape")
            self._remove_stale()
            generation = (current.generation if current else 0) + 1
            base = current or Manifest(embedding_model=self.embedding_model, embedding_backend=backend, dim=dim,
                                       generation=0, updated_at=_now())
            try:
                segments = self._tombstone(base, [u.document.id for u in upserts] + list(deletes))
                next_rowid = base.next_rowid
                if upserts:
                    info = self._append(seg_name(generation), upserts, next_rowid, dim)
                    segments.append(info)
                    next_rowid += info.chunks
                manifest = base.model_copy(update={"generation": generation, "segments": segments,
                                                   "next_rowid": next_rowid, "updated_at": _now()})
                self._publish(manifest)
            except BaseException as exc:
                shutil.rmtree(self._staging(generation), ignore_errors=True)
                if is_disk_full(exc):
                    raise StorageFullError(f"no space left on the device of the index while writing generation "
                                           f"{generation}; nothing was written, generation {base.generation} is "
                                           "unchanged") from None
                raise
            start = plan_merge([s.live_chunks for s in manifest.segments], self.settings.max_segments)
            if start is not None:
                manifest = self._compact(manifest, start)
            self._prune(manifest.generation)
            return manifest.generation

    def compact(self) -> int:
        """Merge every segment into one and drop the tombstones (`rag index compact`). Returns the generation."""
        with self.write_lock():
            current = self.read_manifest()
            if current is None:
                raise IndexMissingError(f"no index at {self.root}: run `rag ingest PATH` first")
            self._remove_stale()
            if len(current.segments) <= 1 and not any(s.deleted or s.tokenizer_version != TOKENIZER_VERSION
                                                       for s in current.segments):
                return current.generation
            manifest = self._compact(current, 0)
            # The generations before hold the rows a second time; keeping them as fallbacks would double the
            # disk until three more writes push them out.
            self._prune(manifest.generation, keep=1)
            return manifest.generation

    def _staging(self, generation: int) -> Path:
        return self.root / f".staging-{generation:06d}-{os.getpid()}"

    def _open_segment(self, manifest: Manifest, info: SegmentInfo) -> Segment:
        return Segment(segment_dir(self.root, info.name), info, manifest.dim, self.ann)

    def _tombstone(self, base: Manifest, doc_ids: Sequence[str]) -> list[SegmentInfo]:
        """The base's segments with `doc_ids` tombstoned where they are live. Every segment's files are checked
        on the way (sizes against the manifest): a write on top of a damaged segment would carry the damage on."""
        segments = []
        for info in base.segments:
            segment = self._open_segment(base, info)
            try:
                if doc_ids:
                    wanted = [d for d in dict.fromkeys(doc_ids) if d not in segment.deleted]
                    found = []
                    for start in range(0, len(wanted), 500):
                        part = wanted[start:start + 500]
                        found += segment.query(
                            "SELECT d.id, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) FROM documents d "
                            f"WHERE d.id IN ({','.join('?' * len(part))})", part)
                    if found:
                        info = info.model_copy(update={
                            "deleted": [*info.deleted, *(r[0] for r in found)],
                            "deleted_chunks": info.deleted_chunks + sum(r[1] for r in found)})
            finally:
                segment.close()
            segments.append(info)
        return segments

    def _append(self, name: str, upserts: Sequence[DocumentUpsert], first_rowid: int, dim: int) -> SegmentInfo:
        texts = [index_text(context_line(u.document.title, u.document.tickers, u.document.metadata), c.text)
                 for u in upserts for c in u.chunks]
        vectors = (np.concatenate([u.vectors for u in upserts if len(u.chunks)]).astype(np.float32)
                   if texts else np.zeros((0, dim), dtype=np.float32))
        return self._install(name, lambda db: _insert_upserts(db, upserts, first_rowid), vectors,
                             Postings.from_tokens([tokenize(t) for t in texts]), dim)

    def _install(self, name: str, fill, vectors: np.ndarray, postings: Postings, dim: int) -> SegmentInfo:  # noqa: ANN001  # Callable[[Connection], None]
        generation = int(name.removeprefix("seg-"))
        staging = self._staging(generation)
        info = build_segment(staging, name, fill, vectors, postings, dim, self.ann)
        target = segment_dir(self.root, name)
        target.parent.mkdir(exist_ok=True)
        if target.exists():  # left by a crash after the rename, before the manifest switch (or before a repair)
            shutil.rmtree(target)
        os.rename(staging, target)  # made durable with the manifest (rag.index.store.IndexStore._publish)
        return info

    def _compact(self, manifest: Manifest, start: int) -> Manifest:
        """Merge segments[start:] into one new segment, as the next generation."""
        generation = manifest.generation + 1
        merging = manifest.segments[start:]
        opened = [self._open_segment(manifest, info) for info in merging]
        try:
            parts = [(s.postings, s.live) for s in opened]
            vectors = np.concatenate([np.asarray(s.vectors)[s.live] for s in opened]
                                     or [np.zeros((0, manifest.dim), dtype=np.float32)])
            postings = Postings.merge(parts)

            def fill(db: sqlite3.Connection) -> None:
                for segment in opened:
                    db.execute("ATTACH DATABASE ? AS src", (f"file:{segment.folder / 'store.sqlite'}?mode=ro",))
                    db.execute("BEGIN")
                    dead = sorted(segment.deleted)
                    marks = ",".join("?" * len(dead))
                    skip = f"WHERE id NOT IN ({marks})" if dead else ""
                    skip_chunks = f"WHERE doc_id NOT IN ({marks})" if dead else ""
                    db.execute(f"INSERT INTO documents SELECT * FROM src.documents {skip}", dead)
                    db.execute(f"INSERT INTO chunks SELECT * FROM src.chunks {skip_chunks} ORDER BY rowid",
                               dead)
                    db.execute("COMMIT")
                    db.execute("DETACH DATABASE src")

            try:
                info = self._install(seg_name(generation), fill, vectors, postings, manifest.dim)
                merged = [info] if info.documents else []
                result = manifest.model_copy(update={"generation": generation, "updated_at": _now(),
                                                     "segments": [*manifest.segments[:start], *merged]})
                self._publish(result)
            except BaseException:
                shutil.rmtree(self._staging(generation), ignore_errors=True)
                raise
        finally:
            for segment in opened:
                segment.close()
        log.info("index: merged %d segments into %s", len(merging), seg_name(generation))
        return result

    def _publish(self, manifest: Manifest) -> None:
        """Keep a copy of the generation's manifest (the fallback record), then point the index at it. The copy,
        the segments folder (holding the new segment's name) and the new manifest are flushed together, before the
        switch."""
        text = manifest.model_dump_json(indent=2)
        copy = manifest_copy(self.root, manifest.generation)
        copy.parent.mkdir(parents=True, exist_ok=True)
        tmp = copy.parent / f".{copy.name}.{os.getpid()}.tmp"
        tmp.write_text(text, "utf-8")
        segments = self.root / "segments"
        write_atomic(self.manifest_path, text, also_sync=[tmp, *([segments] if segments.is_dir() else [])])
        os.replace(tmp, copy)  # durable with the next flush of manifests/; the root manifest is the commit point

    def publish(self, manifest: Manifest) -> None:
        """Point the index at `manifest` (repair: an older generation's)."""
        write_atomic(self.manifest_path, manifest.model_dump_json(indent=2))

    def _remove_stale(self) -> None:
        """Staging folders and temp files of writers that crashed (we hold the lock, so none is live)."""
        for stale in self.root.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for folder in (self.root, self.root / "manifests"):
            for stale in folder.glob(".*.tmp"):
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
                self._remove_stale()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return True

    def _prune(self, current: int, keep: int = KEEP_GENERATIONS) -> None:
        """Drop manifests older than the `keep` newest generations, then segments no kept manifest lists. Readers
        that opened an older generation keep working: unlinking does not disturb files they hold open or mapped
        (one that had not loaded a segment yet finds it gone, and reopens the current generation)."""
        kept: set[str] = set()
        for number in generation_numbers(self.root):
            if number <= current - keep or number > current:
                manifest_copy(self.root, number).unlink(missing_ok=True)
                continue
            manifest = self.kept_manifest(number)
            if manifest is not None:
                kept |= {s.name for s in manifest.segments}
        current_manifest = self.read_manifest()
        if current_manifest is not None:
            kept |= {s.name for s in current_manifest.segments}
        for folder in (self.root / "segments").glob("seg-*"):
            if folder.name not in kept:
                shutil.rmtree(folder, ignore_errors=True)

    # ---- format 2 -> 3 ----------------------------------------------------------------------------
    def migrate(self) -> int:
        """Convert a format-2 index (one whole copy per generation) into one segment, in place. Returns the new
        generation. The old generation folders are removed once the new manifest is published."""
        import faiss

        with self.write_lock():
            try:
                old = json.loads(self.manifest_path.read_bytes())
            except FileNotFoundError:
                raise IndexMissingError(f"no index at {self.root}: run `rag ingest PATH` first") from None
            if old.get("format_version") == FORMAT_VERSION:
                return int(old["generation"])
            if old.get("format_version") != 2:
                raise IndexMismatchError(f"index at {self.root} has format {old.get('format_version')}; only "
                                         "format 2 can be migrated: re-ingest the documents")
            if old.get("embedding_model") != self.embedding_model:
                raise IndexMismatchError(f"index at {self.root} was built with {old.get('embedding_model')}; "
                                         f"the configured embedding model is {self.embedding_model}")
            generation = int(old["generation"]) + 1
            folder = self.root / f"gen-{int(old['generation']):06d}"
            try:
                src = sqlite3.connect(f"file:{folder / 'store.sqlite'}?mode=ro", uri=True)
                rows = index_texts(src)
                src.close()
                flat = faiss.read_index(str(folder / "vectors.faiss"))
            except (sqlite3.Error, RuntimeError) as exc:
                raise damaged(f"generation {old['generation']}", "a file is unreadable", exc) from None
            ids = faiss.vector_to_array(flat.id_map).astype(np.int64)
            dim = int(old["dim"])
            from rag.index.segment import flat_view

            stored = flat_view(faiss.downcast_index(flat.index), dim)
            rowids = np.array([r[0] for r in rows], dtype=np.int64)
            order = np.argsort(ids)
            vectors = stored[order[np.searchsorted(ids[order], rowids)]]

            def fill(db: sqlite3.Connection) -> None:
                db.execute("ATTACH DATABASE ? AS src", (f"file:{folder / 'store.sqlite'}?mode=ro",))
                db.execute("BEGIN")
                db.execute("INSERT INTO documents SELECT * FROM src.documents")
                db.execute("INSERT INTO chunks SELECT * FROM src.chunks ORDER BY rowid")
                db.execute("COMMIT")
                db.execute("DETACH DATABASE src")

            info = self._install(seg_name(generation), fill, vectors,
                                 Postings.from_tokens([tokenize(r[1]) for r in rows]), dim)
            manifest = Manifest(embedding_model=self.embedding_model,
                                embedding_backend=old.get("embedding_backend", "torch"), dim=dim,
                                generation=generation, updated_at=_now(), segments=[info] if info.documents else [],
                                next_rowid=int(rowids.max()) + 1 if len(rowids) else 1)
            self._publish(manifest)
            for stale in self.root.glob("gen-*"):
                shutil.rmtree(stale, ignore_errors=True)
            return generation
