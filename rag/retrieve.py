"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings fused by reciprocal rank, filters applied
to both before ranking so a filter never empties a top-k that had matches further down."""

from __future__ import annotations

import json
from typing import Literal

import numpy as np

from rag.embedding import Embedder
from rag.index import Snapshot
from rag.models import Passage, SearchFilters
from rag.settings import RetrievalSettings

Mode = Literal["hybrid", "dense", "bm25"]


def retrieve(
    snapshot: Snapshot,
    embedder: Embedder,
    query: str,
    settings: RetrievalSettings,
    k: int | None = None,
    filters: SearchFilters | None = None,
    mode: Mode = "hybrid",
) -> list[Passage]:
    k = k or settings.k
    n = max(settings.candidates, k)
    allowed = snapshot.allowed_rowids(filters)
    dense: list[tuple[int, float]] = []
    lexical: list[tuple[int, float]] = []
    if mode in ("hybrid", "dense"):
        dense = snapshot.dense_search(embedder.embed_query(query), n, allowed)
    if mode in ("hybrid", "bm25"):
        lexical = snapshot.bm25_search(query, n, allowed)

    fused: dict[int, float] = {}
    for ranking in (dense, lexical):
        for rank, (rowid, _score) in enumerate(ranking):
            fused[rowid] = fused.get(rowid, 0.0) + 1.0 / (settings.rrf_k + rank + 1)
    top = sorted(fused, key=lambda r: -fused[r])[:k]
    dense_scores = dict(dense)
    bm25_scores = dict(lexical)
    # Chunks that only BM25 found still get a cosine, so abstention can judge every passage alike.
    missing = [r for r in top if r not in dense_scores]
    if missing and mode != "bm25" and snapshot.faiss_index.ntotal:
        query_vec = embedder.embed_query(query)
        for rowid in missing:
            dense_scores[rowid] = float(np.dot(snapshot.vector_of(rowid), query_vec))
    rows = snapshot.chunk_rows(top)
    return [
        Passage(
            chunk_id=rows[r]["id"], doc_id=rows[r]["doc_id"], title=rows[r]["title"], text=rows[r]["text"],
            start=rows[r]["start"], end=rows[r]["end"], page=rows[r]["page"], source_url=rows[r]["source_url"],
            tickers=json.loads(rows[r]["tickers"]), doc_type=rows[r]["doc_type"], date=rows[r]["date"],
            score=fused[r], dense_score=dense_scores.get(r), bm25_score=bm25_scores.get(r),
        )
        for r in top
    ]
