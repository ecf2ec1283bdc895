"""Verifying an index on disk and recovering from damage: `rag index check`, `rag index repair`, and the automatic
fallback readers use when the current generation turns out damaged.

A generation is intact when every file opens and the counts agree: SQLite chunks == FAISS vectors (same ids) ==
BM25 rows (same rowids). Damage is reported per file, by name, without absolute paths or library tracebacks.
Generations are immutable, so the kept older ones (KEEP_GENERATIONS) are a ready fallback: repair points the
manifest back at the newest intact one and says which documents that loses."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from rag.errors import IndexDamagedError, IndexMissingError
from rag.index import IndexStore, Manifest, Snapshot, _gen_dir, generation_numbers

log = logging.getLogger("rag")


class GenerationCheck(BaseModel):
    generation: int
    ok: bool
    problems: list[str] = Field(default_factory=list)
    documents: int | None = None
    chunks: int | None = None


class IndexCheck(BaseModel):
    current: int | None = Field(description="Generation the manifest points at (None: manifest unreadable).")
    ok: bool = Field(description="True when the manifest and the current generation are intact.")
    manifest_problem: str | None = None
    generations: list[GenerationCheck] = Field(description="Every generation folder on disk, newest first.")


class RepairReport(BaseModel):
    repaired: bool
    from_generation: int | None
    to_generation: int | None
    message: str
    lost_documents: list[str] | None = Field(
        None, description="Ids present or different in the damaged generation but not in the one restored "
        "(None: the damaged store was unreadable, so they cannot be listed).")


def _problem(name: str, exc: BaseException) -> str:
    return f"{name}: unreadable ({type(exc).__name__})"


def verify_generation(folder: Path, generation: int, dim: int | None) -> GenerationCheck:
    """Open every file of one generation and check that their counts and ids agree."""
    problems: list[str] = []
    check = GenerationCheck(generation=generation, ok=False, problems=problems)
    if not folder.is_dir():
        problems.append("folder missing")
        return check
    for name in ("store.sqlite", "vectors.faiss", "bm25_rowids.npy"):
        path = folder / name
        if not path.is_file() or path.stat().st_size == 0:
            problems.append(f"{name}: missing or empty")
    rowids: np.ndarray | None = None
    store = folder / "store.sqlite"
    if store.is_file() and store.stat().st_size:
        try:
            db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
            try:
                verdict = db.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    problems.append(f"store.sqlite: integrity check failed ({verdict[:80]})")
                check.documents = db.execute("SELECT count(*) FROM documents").fetchone()[0]
                rowids = np.array([r[0] for r in db.execute("SELECT rowid FROM chunks ORDER BY rowid")],
                                  dtype=np.int64)
                check.chunks = len(rowids)
            finally:
                db.close()
        except sqlite3.Error as exc:
            problems.append(_problem("store.sqlite", exc))
    vectors = folder / "vectors.faiss"
    if vectors.is_file() and vectors.stat().st_size:
        try:
            import faiss

            index = faiss.read_index(str(vectors))
            ids = np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
            if dim is not None and index.d != dim:
                problems.append(f"vectors.faiss: {index.d}-d vectors, the manifest says {dim}")
            if rowids is not None and not np.array_equal(ids, rowids):
                problems.append(f"vectors.faiss: {len(ids)} vectors do not match the store's {len(rowids)} chunks")
        except Exception as exc:  # noqa: BLE001  # faiss raises RuntimeError with its own source paths
            problems.append(_problem("vectors.faiss", exc))
    hnsw = folder / "vectors.hnsw.faiss"
    if hnsw.exists():
        try:
            import faiss

            if rowids is not None and faiss.read_index(str(hnsw)).ntotal != len(rowids):
                problems.append("vectors.hnsw.faiss: another number of vectors than the store")
        except Exception as exc:  # noqa: BLE001
            problems.append(_problem("vectors.hnsw.faiss", exc))
    npy = folder / "bm25_rowids.npy"
    bm25_rows: np.ndarray | None = None
    if npy.is_file() and npy.stat().st_size:
        try:
            bm25_rows = np.load(npy, allow_pickle=False)
            if rowids is not None and not np.array_equal(np.sort(bm25_rows), rowids):
                problems.append(f"bm25_rowids.npy: {bm25_rows.size} rows do not match the store's {len(rowids)} "
                                "chunks")
        except Exception as exc:  # noqa: BLE001  # ValueError, EOFError on truncation
            problems.append(_problem("bm25_rowids.npy", exc))
    if bm25_rows is not None and len(bm25_rows):
        try:
            import bm25s

            bm25 = bm25s.BM25.load(str(folder / "bm25"))
            if int(bm25.scores.get("num_docs", -1)) != len(bm25_rows):
                problems.append("bm25/: indexes another number of chunks than bm25_rowids.npy")
        except Exception as exc:  # noqa: BLE001
            problems.append(_problem("bm25/", exc))
    check.problems = problems  # pydantic copied the list at construction
    check.ok = not problems
    return check


def _manifest_of(store: IndexStore, generation: int, fallback: Manifest | None) -> Manifest | None:
    """The generation's own manifest copy, else the root manifest's model and dim with this generation number."""
    try:
        return Manifest.model_validate_json((_gen_dir(store.root, generation) / "manifest.json").read_bytes())
    except (OSError, ValidationError):
        if fallback is None:
            return None
        return fallback.model_copy(update={"generation": generation})


def _root_manifest(store: IndexStore) -> tuple[Manifest | None, str | None]:
    try:
        return store.read_manifest(), None
    except IndexDamagedError as exc:
        return None, str(exc)


def check_index(store: IndexStore) -> IndexCheck:
    """Verify every generation on disk; raises IndexMissingError when there is no index at all."""
    manifest, problem = _root_manifest(store)
    numbers = generation_numbers(store.root)
    if manifest is None and problem is None and not numbers:
        raise IndexMissingError(f"no index at {store.root}: run `rag ingest PATH` first")
    store.remove_stale()
    checks = []
    for number in numbers:
        own = _manifest_of(store, number, manifest)
        checks.append(verify_generation(_gen_dir(store.root, number), number, own.dim if own else None))
    current = manifest.generation if manifest else None
    current_ok = any(c.generation == current and c.ok for c in checks)
    if manifest is not None and current not in numbers:
        problem = f"manifest points at generation {current}, which is not on disk"
    return IndexCheck(current=current, ok=problem is None and current_ok, manifest_problem=problem,
                      generations=checks)


def _lost_documents(store: IndexStore, damaged_gen: int | None, restored: Snapshot) -> list[str] | None:
    if damaged_gen is None:
        return None
    store_path = _gen_dir(store.root, damaged_gen) / "store.sqlite"
    try:
        db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
        try:
            newer = dict(db.execute("SELECT id, content_hash FROM documents").fetchall())
        finally:
            db.close()
    except sqlite3.Error:
        return None
    kept = restored.content_hashes()
    return sorted(doc_id for doc_id, digest in newer.items() if kept.get(doc_id) != digest)


def _describe_loss(damaged_gen: int | None, restored: int, lost: list[str] | None) -> str:
    newer = f"generation {damaged_gen}" if damaged_gen is not None else "the newest generation"
    if lost is None:
        return f"documents written after generation {restored} (in {newer}) are missing; their ids are unreadable"
    if not lost:
        return f"no document is missing (generation {restored} holds the same documents as {newer})"
    shown = ", ".join(lost[:20]) + (f" and {len(lost) - 20} more" if len(lost) > 20 else "")
    return f"{len(lost)} document(s) added or changed after generation {restored} are missing or older: {shown}"


def newest_intact(store: IndexStore, below: int | None) -> tuple[Snapshot, Manifest] | None:
    """The newest generation older than `below` (any, when None) that verifies intact, opened."""
    root_manifest, _ = _root_manifest(store)
    for number in generation_numbers(store.root):
        if below is not None and number >= below:
            continue
        manifest = _manifest_of(store, number, root_manifest)
        if manifest is None or manifest.embedding_model != store.embedding_model:
            continue
        if not verify_generation(_gen_dir(store.root, number), number, manifest.dim).ok:
            continue
        try:
            return Snapshot(store.root, manifest, store.ann), manifest
        except IndexDamagedError:
            continue
    return None


def fallback_snapshot(store: IndexStore, damaged_gen: int | None, reason: str) -> Snapshot:
    """What readers use when the current generation is damaged: the newest intact older one, read-only (the
    manifest is left alone; `rag index repair` makes the switch permanent). Raises IndexDamagedError if none."""
    found = newest_intact(store, damaged_gen)
    if found is None:
        raise IndexDamagedError(f"{reason}; no intact older generation to fall back to: re-ingest the documents")
    snapshot, _ = found
    if damaged_gen is None and snapshot.generation == max(generation_numbers(store.root)):
        loss = "it is the newest generation on disk, so nothing is missing"
    else:
        loss = _describe_loss(damaged_gen, snapshot.generation, _lost_documents(store, damaged_gen, snapshot))
    snapshot.fallback_note = (f"serving generation {snapshot.generation} because {reason.split(';')[0]}; {loss}; "
                              "run `rag index repair` to make this permanent")
    log.warning("%s", snapshot.fallback_note)
    return snapshot


def repair_index(store: IndexStore) -> RepairReport:
    """Point the manifest at the newest intact generation when the current one (or the manifest) is damaged.
    The damaged folder is renamed `.damaged-gen-N-<time>` and kept for inspection."""
    with store.write_lock():
        report = check_index(store)
        if report.ok:
            return RepairReport(repaired=False, from_generation=report.current, to_generation=report.current,
                                message=f"generation {report.current} is intact; nothing to repair")
        damaged_gen = report.current  # None: the manifest itself is unreadable
        found = newest_intact(store, damaged_gen)
        if found is None:
            raise IndexDamagedError("no intact generation is left on disk: re-ingest the documents into a new index")
        snapshot, manifest = found
        if damaged_gen is not None:
            lost = _lost_documents(store, damaged_gen, snapshot)
        else:
            newest = generation_numbers(store.root)[0]
            lost = [] if newest == manifest.generation else _lost_documents(store, newest, snapshot)
        store.publish(manifest.model_copy(update={"updated_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                                                                              time.gmtime())}))
        if damaged_gen is not None and _gen_dir(store.root, damaged_gen).exists():
            _gen_dir(store.root, damaged_gen).rename(
                store.root / f".damaged-gen-{damaged_gen:06d}-{time.strftime('%Y%m%dT%H%M%S')}")
        snapshot.close()
        message = (f"restored generation {manifest.generation}"
                   + (f" in place of damaged generation {damaged_gen}" if damaged_gen is not None else
                      " (the manifest was unreadable)")
                   + f": {_describe_loss(damaged_gen, manifest.generation, lost)}")
        return RepairReport(repaired=True, from_generation=damaged_gen, to_generation=manifest.generation,
                            message=message, lost_documents=lost)


def summary(check: IndexCheck) -> str:
    """One line per generation, for the CLI."""
    lines = []
    if check.manifest_problem:
        lines.append(f"manifest: {check.manifest_problem}")
    for g in check.generations:
        mark = "current " if g.generation == check.current else ""
        state = "ok" if g.ok else "DAMAGED: " + "; ".join(g.problems)
        counts = f" ({g.documents} documents, {g.chunks} chunks)" if g.documents is not None else ""
        lines.append(f"{mark}generation {g.generation}{counts}: {state}")
    return "\n".join(lines) or "no generations on disk"


__all__ = ["GenerationCheck", "IndexCheck", "RepairReport", "check_index", "fallback_snapshot", "repair_index",
           "summary", "verify_generation"]
