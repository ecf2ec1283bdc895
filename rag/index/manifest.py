"""The manifest: which immutable segments (and which tombstones) make up one generation of the index.

Layout of an index directory:
    manifest.json              the current generation (atomically replaced, fsynced)
    manifests/gen-000007.json  a copy of every kept generation's manifest: fallbacks for readers, `rag index repair`
    segments/seg-000007/       one immutable segment, written by generation 7 (see rag.index.segment)
    .write.lock                serialises writers across processes
"""

from __future__ import annotations

import errno
import os
import sqlite3
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, Field

from rag.errors import IndexDamagedError

# 2: each chunk is embedded and BM25-indexed with its document's context line (rag.chunking.context_line).
# 3: segments + tombstones instead of one whole copy per generation.
FORMAT_VERSION = 3
# Generations whose manifests (and so whose segments) are kept as fallbacks for a damaged newer one.
KEEP_GENERATIONS = 3


class SegmentInfo(BaseModel):
    name: str = Field(description="Folder under segments/, seg-NNNNNN after the generation that wrote it.")
    documents: int = Field(description="Documents stored in the segment, tombstoned ones included.")
    chunks: int = Field(description="Chunks stored in the segment, tombstoned ones included.")
    min_rowid: int | None = Field(description="Smallest chunk rowid (None: no chunks). Segments never overlap.")
    max_rowid: int | None = Field(description="Largest chunk rowid.")
    files: dict[str, int] = Field(description="File name -> size in bytes; a reader refuses a file of another size.")
    crc32: dict[str, int] = Field(default_factory=dict, description="File name -> CRC-32 of its bytes, checked by "
                                  "`rag index check` (readers check sizes only: reading every byte costs too much).")
    deleted: list[str] = Field(default_factory=list, description="Tombstoned document ids (deleted or replaced).")
    deleted_chunks: int = Field(0, description="Chunks of the tombstoned documents.")
    hnsw: bool = Field(False, description="Whether the segment carries an HNSW graph (large merged segments).")
    tokenizer_version: int | None = Field(None, description="rag.text.TOKENIZER_VERSION of the segment's BM25 "
                                          "postings (None: written before versions were recorded).")

    @property
    def live_documents(self) -> int:
        return self.documents - len(self.deleted)

    @property
    def live_chunks(self) -> int:
        return self.chunks - self.deleted_chunks


class Manifest(BaseModel):
    format_version: int = FORMAT_VERSION
    embedding_model: str
    embedding_backend: str = Field("torch", description="Backend that built the index (torch, onnx, onnx-int8).")
    dim: int
    generation: int
    updated_at: str
    segments: list[SegmentInfo] = Field(default_factory=list, description="Live segments, oldest (lowest rowids) "
                                        "first.")
    next_rowid: int = Field(1, description="First chunk rowid the next segment gets.")


def gen_name(generation: int) -> str:
    return f"gen-{generation:06d}"


def seg_name(generation: int) -> str:
    return f"seg-{generation:06d}"


def manifest_copy(root: Path, generation: int) -> Path:
    return root / "manifests" / f"{gen_name(generation)}.json"


def segment_dir(root: Path, name: str) -> Path:
    return root / "segments" / name


def generation_numbers(root: Path) -> list[int]:
    """Generations with a kept manifest on disk, newest first."""
    numbers = []
    for path in (root / "manifests").glob("gen-*.json"):
        suffix = path.stem.removeprefix("gen-")
        if suffix.isdigit():
            numbers.append(int(suffix))
    return sorted(numbers, reverse=True)


def damaged(where: str, what: str, exc: BaseException | None = None) -> IndexDamagedError:
    """A damage error naming the segment (or generation) and file but no absolute path (messages reach HTTP
    callers), nor the library's own message (faiss puts its source paths in it)."""
    cause = f" ({type(exc).__name__})" if exc is not None else ""
    return IndexDamagedError(f"index {where} is damaged: {what}{cause}; run `rag index check` and "
                             "`rag index repair`")


def fsync_paths(paths: list[Path]) -> None:
    """fsync files and folders at once: the calls run in parallel threads (fsync releases the GIL) so the file
    system commits them together, one disk flush instead of one per file, which is most of a small write's cost."""
    def sync(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    if len(paths) == 1:
        sync(paths[0])
        return
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        list(pool.map(sync, paths))


def fsync_dir(path: Path) -> None:
    fsync_paths([path])


def fsync_tree(path: Path) -> None:
    fsync_paths([path, *path.rglob("*")])


def crc32_of(path: Path) -> int:
    value = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            value = zlib.crc32(block, value)
    return value


def write_atomic(path: Path, text: str, also_sync: Sequence[Path] = ()) -> None:
    """Replace `path` with `text` so that a crash leaves the old or the new content, never a mix (fsynced).
    `also_sync`: files or folders to make durable first, in the same parallel flush as the new content."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    fsync_paths([tmp, *also_sync])
    os.replace(tmp, path)
    fsync_dir(path.parent)


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    # faiss reports write failures as RuntimeError with strerror text; SQLite as "database or disk is full".
    return isinstance(exc, RuntimeError | sqlite3.Error) and ("No space left" in text or "disk is full" in text)
