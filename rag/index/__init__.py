"""The on-disk index: immutable segments (SQLite store, FAISS vectors, BM25 postings) listed by an atomically
switched manifest, with tombstones for deletes. See rag.index.manifest for the layout, rag.index.store for how a
write stays the size of its change, rag.index.lexical for BM25 with collection-wide statistics."""

from rag.index.manifest import FORMAT_VERSION, KEEP_GENERATIONS, Manifest, SegmentInfo, generation_numbers
from rag.index.segment import Segment
from rag.index.snapshot import Snapshot
from rag.index.store import DocumentUpsert, IndexStore

__all__ = ["FORMAT_VERSION", "KEEP_GENERATIONS", "DocumentUpsert", "IndexStore", "Manifest", "Segment", "SegmentInfo",
           "Snapshot", "generation_numbers"]
