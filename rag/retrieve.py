"""Retrieval: query understanding, then hybrid search.

- Companies named in the question are linked to the index's documents (rag.entities). One company: its
  documents only (falling back to all when that finds nothing). Two or more: each company's documents are
  searched separately, with the question less the other companies' names, and the results interleaved, so a
  comparison gets passages for every side. Explicit filters (tickers, document ids) win over linking.
- A fiscal year or quarter named in the question ("FY2018", "Q2 of FY2023") narrows each linked company's
  documents to those of that period (rag.periods), when the company has any and the caller's filters leave one
  of them; otherwise all the company's documents are searched. Explicit tickers take the place of linked
  companies (their documents are narrowed to the period the same way); explicit document ids turn linking off.
- Hybrid search: dense (FAISS) and lexical (BM25) rankings fused by reciprocal rank, filters applied to both
  before ranking so a filter never empties a top-k that had matches further down.
- Diversity: a list question that names no company ("which banks discussed cost of risk") needs several documents,
  so it gets at least `list_k` passages, one document may hold at most `max_per_document` of them unless fewer
  documents match, and they come by round (each document's best first). A search within one company's documents caps
  each document at `max_per_company_document` of the k slots while the company's other documents have candidates: a
  filing indexed page by page otherwise gives one page every slot through its overlapping chunks (FinanceBench dev:
  5 of 5 passages from one Pfizer page, the asked-about page absent).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rag.embedding import Embedder
from rag.entities import Mention
from rag.index import Snapshot
from rag.models import Passage, SearchFilters
from rag.periods import Periods, periods_of
from rag.settings import RetrievalSettings
from rag.text import asks_which_companies, is_list_question

Mode = Literal["hybrid", "dense", "bm25"]


@dataclass
class Retrieval:
    passages: list[Passage]
    companies: list[Mention] = field(default_factory=list)  # linked, in order of mention
    unknown: list[str] = field(default_factory=list)  # names in a company's place that link to nothing


def retrieve(snapshot: Snapshot, embedder: Embedder, query: str, settings: RetrievalSettings, k: int | None = None,
             filters: SearchFilters | None = None, mode: Mode = "hybrid", each_company: int | None = None) -> Retrieval:
    """`each_company`: passages for each company of a comparison (default: k shared among them)."""
    k = k or settings.k
    explicit = filters is not None and bool(filters.tickers or filters.doc_ids)
    mentions = [] if explicit or not settings.link_companies else snapshot.entities.link(query)
    unknown = [] if explicit or mentions or asks_which_companies(query) \
        else snapshot.entities.unknown_mentions(query, mentions)
    tickers = filters.tickers if filters is not None and not filters.doc_ids else None
    asked = periods_of(query) if (mentions or tickers) and settings.link_periods else Periods()
    if tickers and asked:
        ticker_docs = snapshot.documents_with_tickers(tickers)
        if ticker_docs:
            return Retrieval(_company_search(snapshot, embedder, query, settings, k, filters, mode, asked,
                                             ticker_docs))
    if len(mentions) == 1:
        passages = _company_search(snapshot, embedder, query, settings, k, filters, mode, asked,
                                   mentions[0].company.doc_ids)
        if passages:
            return Retrieval(passages, mentions)
    elif len(mentions) > 1:
        each = each_company or max(2, math.ceil(k / len(mentions)))
        rankings = [_company_search(snapshot, embedder, _about(query, mentions, m), settings, each, filters, mode,
                                    asked, m.company.doc_ids) for m in mentions]
        merged = [p for rank in range(each) for ranking in rankings if rank < len(ranking) for p in [ranking[rank]]]
        if merged:
            return Retrieval(merged, mentions)
    if is_list_question(query) and not (explicit or mentions):
        k = max(k, settings.list_k)
        return Retrieval(_by_round(search(snapshot, embedder, query, settings, k, filters, mode,
                                          settings.max_per_document)), mentions, unknown)
    return Retrieval(search(snapshot, embedder, query, settings, k, filters, mode), mentions, unknown)


def widen(snapshot: Snapshot, passages: list[Passage], neighbours: int) -> list[Passage]:
    """Passages as a model reads them: each chunk with `neighbours` chunks of its document on each side. Small chunks
    match a question precisely, but the sentence that answers is as often beside the one that matched."""
    if not neighbours:
        return passages
    out = []
    for passage in passages:
        span = snapshot.reading_span(passage.doc_id, passage.chunk_id, neighbours)
        if span is None:
            out.append(passage)
        else:
            start, end, text = span
            out.append(passage.model_copy(update={"start": start, "end": end, "text": text}))
    return out


def _by_round(passages: list[Passage]) -> list[Passage]:
    """A list's passages by round: every document's best passage, in rank order, before any document's second,
    so the first few passages are as many documents as they can be."""
    seen: dict[str, int] = {}
    rounds = []
    for passage in passages:
        rounds.append(seen.get(passage.doc_id, 0))
        seen[passage.doc_id] = rounds[-1] + 1
    return [p for _, _, p in sorted(zip(rounds, range(len(passages)), passages, strict=True))]


def _about(query: str, mentions: list[Mention], company: Mention) -> str:
    """The question as one company's search of a comparison sees it: without the other companies' names. Their
    documents are filtered out of this search, so the names can find nothing in it; they only pull the dense ranking
    toward passages that sound like the other business and let words such as "Pride" or "Group" match. ("Compare
    the adjusted EBITDA margins of Pilgrim's Pride and YETI...": YETI's answering passage ranked 15th in YETI's call
    by dense, 4th by hybrid, one past the 3 slots each side gets; without "Pilgrim's Pride", 8th and 3rd.)"""
    text = query
    for other in sorted((m for m in mentions if m is not company), key=lambda m: -m.start):
        text = text[:other.start] + text[other.start + len(other.text):]
    return " ".join(text.split())


def _company_search(snapshot: Snapshot, embedder: Embedder, query: str, settings: RetrievalSettings, k: int,
                    filters: SearchFilters | None, mode: Mode, asked: Periods,
                    doc_ids: frozenset[str]) -> list[Passage]:
    """One company's passages: of the period asked about when it has documents of that period that the caller's
    filters keep, else of all its documents."""
    in_period = snapshot.periods.narrow(asked, doc_ids) if asked else None
    if in_period:
        passages = search(snapshot, embedder, query, settings, k, _narrow(filters, in_period), mode,
                          settings.max_per_company_document)
        if passages:
            return passages
    return search(snapshot, embedder, query, settings, k, _narrow(filters, doc_ids), mode,
                  settings.max_per_company_document)


def _narrow(filters: SearchFilters | None, doc_ids: frozenset[str]) -> SearchFilters:
    base = filters or SearchFilters()
    return base.model_copy(update={"doc_ids": sorted(doc_ids)})


def search(snapshot: Snapshot, embedder: Embedder, query: str, settings: RetrievalSettings, k: int,
           filters: SearchFilters | None = None, mode: Mode = "hybrid",
           max_per_document: int | None = None) -> list[Passage]:
    """Hybrid (or single-mode) search within `filters`; with `max_per_document`, no document takes more than
    that many of the k slots while others have candidates."""
    n = max(settings.candidates, k)
    allowed = snapshot.allowed_rowids(filters)
    dense: list[tuple[int, float]] = []
    lexical: list[tuple[int, float]] = []
    if mode in ("hybrid", "dense"):
        dense = snapshot.dense_search(embedder.embed_query(query), n, allowed)
    if mode in ("hybrid", "bm25"):
        lexical = snapshot.bm25_search(query, n, allowed)

    fused: dict[int, float] = {}
    for ranking, weight in ((dense, 1.0), (lexical, settings.bm25_weight)):
        for rank, (rowid, _score) in enumerate(ranking):
            fused[rowid] = fused.get(rowid, 0.0) + weight / (settings.rrf_k + rank + 1)
    ranked = sorted(fused, key=lambda r: -fused[r])
    top = ranked[:k] if max_per_document is None else _diverse(snapshot, ranked, k, max_per_document)
    dense_scores = dict(dense)
    bm25_scores = dict(lexical)
    # Chunks that only BM25 found still get a cosine, so abstention can judge every passage alike.
    missing = [r for r in top if r not in dense_scores]
    if missing and mode != "bm25" and snapshot.chunk_count:
        query_vec = embedder.embed_query(query)
        for rowid in missing:
            dense_scores[rowid] = float(np.dot(snapshot.vector_of(rowid), query_vec))
    rows = snapshot.chunk_rows(top)
    return [
        Passage(
            chunk_id=rows[r]["id"], doc_id=rows[r]["doc_id"], title=rows[r]["title"], text=rows[r]["text"],
            start=rows[r]["start"], end=rows[r]["end"], page=rows[r]["page"], source_url=rows[r]["source_url"],
            tickers=json.loads(rows[r]["tickers"]), doc_type=rows[r]["doc_type"], date=rows[r]["date"],
            company=rows[r]["company"],
            score=_ranked_by(mode, fused[r], dense_scores.get(r), bm25_scores.get(r)),
            dense_score=dense_scores.get(r), bm25_score=bm25_scores.get(r),
        )
        for r in top
    ]


def _ranked_by(mode: Mode, fused: float, dense: float | None, bm25: float | None) -> float:
    """The score the results are ordered by: BM25 in bm25 mode, cosine in dense mode, the fused rank in hybrid."""
    if mode == "bm25" and bm25 is not None:
        return bm25
    if mode == "dense" and dense is not None:
        return dense
    return fused


def _diverse(snapshot: Snapshot, ranked: list[int], k: int, per_document: int) -> list[int]:
    """The best k of `ranked` with at most `per_document` chunks per document; slots left over (too few
    documents) go to the best remaining chunks, in rank order."""
    doc_of = snapshot.doc_ids_of(ranked)
    taken: dict[str, int] = {}
    chosen: list[int] = []
    for rowid in ranked:
        if taken.get(doc_of[rowid], 0) < per_document:
            chosen.append(rowid)
            taken[doc_of[rowid]] = taken.get(doc_of[rowid], 0) + 1
            if len(chosen) == k:
                return chosen
    taken_rows = set(chosen)
    rest = [r for r in ranked if r not in taken_rows]
    picked = taken_rows | set(rest[:k - len(chosen)])
    return [r for r in ranked if r in picked]
