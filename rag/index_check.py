"""Verifying an index on disk and recovering from damage: `rag index check`, `rag index repair`, and the automatic
fallback readers use when the current generation turns out damaged.

A generation is intact when every segment it lists is: every file has the size the manifest recorded, opens,
and the counts agree (SQLite chunks == rowids == FAISS vectors == postings rows). Damage is reported per segment
and file, by name, without absolute paths or library tracebacks. Segments are immutable and the manifests of the
last KEEP_GENERATIONS generations are kept, so an older generation that does not list the damaged segment is a
ready fallback: repair points the manifest back at the newest intact one and says which documents that loses."""

from __future__ import annotations

import logging
import sqlite3
import time

from pydantic import BaseModel, Field

from rag.errors import IndexDamagedError, IndexMissingError
from rag.index import IndexStore, Manifest, Segment, SegmentInfo, Snapshot, generation_numbers
from rag.index.manifest import manifest_copy, segment_dir

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
    generations: list[GenerationCheck] = Field(description="Every kept generation, newest first.")


class RepairReport(BaseModel):
    repaired: bool
    from_generation: int | None
    to_generation: int | None
    message: str
    lost_documents: list[str] | None = Field(
        None, description="Ids present or different in the damaged generation but not in the one restored "
        "(None: the damaged store was unreadable, so they cannot be listed).")


def verify_segment(store: IndexStore, manifest: Manifest, info: SegmentInfo) -> list[str]:
    """Every problem of one segment, each prefixed with its name (reads every file in full)."""
    folder = segment_dir(store.root, info.name)
    if not folder.is_dir():
        return [f"{info.name}: folder missing"]
    try:
        segment = Segment(folder, info.model_copy(update={"files": {}}), manifest.dim, store.ann)
    except IndexDamagedError as exc:
        return [f"{info.name}/store.sqlite: {str(exc).split('; run')[0].split(': ', 1)[-1]}"]
    try:
        # Opened without the recorded sizes, so that each file's own problem is reported once, under its name.
        return [f"{info.name}/{p}" for p in segment.verify(manifest.dim, info.files, info.crc32)]
    finally:
        segment.close()


def verify_generation(store: IndexStore, manifest: Manifest,
                      cache: dict[str, list[str]] | None = None) -> GenerationCheck:
    """Verify every segment a generation lists (segments shared by generations are read once per `cache`)."""
    cache = {} if cache is None else cache
    problems: list[str] = []
    for info in manifest.segments:
        if info.name not in cache:
            cache[info.name] = verify_segment(store, manifest, info)
        problems += cache[info.name]
    return GenerationCheck(generation=manifest.generation, ok=not problems, problems=problems,
                           documents=sum(s.live_documents for s in manifest.segments),
                           chunks=sum(s.live_chunks for s in manifest.segments))


def _root_manifest(store: IndexStore) -> tuple[Manifest | None, str | None]:
    try:
        return store.read_manifest(), None
    except IndexDamagedError as exc:
        return None, str(exc)


def check_index(store: IndexStore) -> IndexCheck:
    """Verify every kept generation; raises IndexMissingError when there is no index at all."""
    manifest, problem = _root_manifest(store)
    numbers = generation_numbers(store.root)
    if manifest is None and problem is None and not numbers:
        raise IndexMissingError(f"no index at {store.root}: run `rag ingest PATH` first")
    store.remove_stale()
    cache: dict[str, list[str]] = {}
    checks = []
    if manifest is not None and manifest.generation not in numbers:
        checks.append(verify_generation(store, manifest, cache))
    for number in numbers:
        kept = manifest if manifest is not None and manifest.generation == number else store.kept_manifest(number)
        if kept is None:
            checks.append(GenerationCheck(generation=number, ok=False, problems=["manifest copy: unreadable"]))
        else:
            checks.append(verify_generation(store, kept, cache))
    checks.sort(key=lambda c: -c.generation)
    current = manifest.generation if manifest else None
    current_ok = any(c.generation == current and c.ok for c in checks)
    return IndexCheck(current=current, ok=problem is None and current_ok, manifest_problem=problem,
                      generations=checks)


def _live_hashes(store: IndexStore, manifest: Manifest) -> dict[str, str] | None:
    """Document id -> content hash of a generation, read from its stores; None when one is unreadable."""
    hashes: dict[str, str] = {}
    for info in manifest.segments:
        path = segment_dir(store.root, info.name) / "store.sqlite"
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT id, content_hash FROM documents").fetchall()
            finally:
                db.close()
        except sqlite3.Error:
            return None
        deleted = set(info.deleted)
        hashes.update({doc_id: digest for doc_id, digest in rows if doc_id not in deleted})
    return hashes


def _lost_documents(store: IndexStore, damaged_gen: int | None, restored: Snapshot) -> list[str] | None:
    if damaged_gen is None:
        return None
    manifest = store.kept_manifest(damaged_gen)
    if manifest is None:
        root, _ = _root_manifest(store)
        manifest = root if root is not None and root.generation == damaged_gen else None
    newer = _live_hashes(store, manifest) if manifest is not None else None
    if newer is None:
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
    """The newest kept generation older than `below` (any, when None) whose segments verify intact, opened."""
    cache: dict[str, list[str]] = {}
    for number in generation_numbers(store.root):
        if below is not None and number >= below:
            continue
        manifest = store.kept_manifest(number)
        if manifest is None or not verify_generation(store, manifest, cache).ok:
            continue
        try:
            return store.open_manifest(manifest), manifest
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
    Damaged segments are renamed `.damaged-seg-N-<time>` and kept for inspection; newer generations, which list
    them, are dropped."""
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
        keep = {s.name for s in manifest.segments}
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for number in generation_numbers(store.root):
            if number > manifest.generation:
                manifest_copy(store.root, number).unlink(missing_ok=True)
        for check in report.generations:
            for problem in check.problems:
                name = problem.split("/")[0]
                folder = segment_dir(store.root, name)
                if name not in keep and folder.is_dir():
                    folder.rename(store.root / f".damaged-{name}-{stamp}")
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
           "summary", "verify_generation", "verify_segment"]
