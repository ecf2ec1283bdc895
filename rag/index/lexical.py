"""Lexical postings of one segment, and BM25 over many segments with collection-wide statistics.

A segment stores raw term frequencies (term -> chunk positions, tf) and each chunk's length, never scores: BM25's
IDF and average length depend on the whole collection, which changes with every write. Scores are computed at
query time from the postings of the query's terms only, with N, df and avgdl summed over the live chunks of every
segment. The result equals one bm25s index (Lucene variant, k1=1.5, b=0.75, its defaults; what the index used
before segments) built over the same live chunks, whatever the segmentation and however many tombstones; merging
segments never needs a re-tokenisation (postings concatenate).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

K1 = 1.5
B = 0.75
# An empty token list would give a chunk length 0; bm25s indexed a placeholder instead, kept for equal scores.
EMPTY = "\u2205"


@dataclass
class Postings:
    """Term-major postings of one segment. terms[i]'s chunks are docs[indptr[i]:indptr[i+1]] (positions in the
    segment, ascending) with frequencies tf[...]; doc_len[p] is chunk p's number of tokens."""

    terms: list[str]
    indptr: np.ndarray
    docs: np.ndarray
    tf: np.ndarray
    doc_len: np.ndarray

    @cached_property
    def vocab(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.terms)}

    @classmethod
    def from_tokens(cls, token_lists: Sequence[Sequence[str]]) -> Postings:
        term_of: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        freqs: list[int] = []
        lengths = np.empty(len(token_lists), dtype=np.float32)
        for position, tokens in enumerate(token_lists):
            tokens = list(tokens) or [EMPTY]
            lengths[position] = len(tokens)
            for term, count in Counter(tokens).items():
                rows.append(term_of.setdefault(term, len(term_of)))
                cols.append(position)
                freqs.append(count)
        names = np.array(list(term_of), dtype=object)
        order = np.argsort(names, kind="stable") if len(names) else np.zeros(0, dtype=np.int64)
        rank = np.empty(len(names), dtype=np.int64)
        rank[order] = np.arange(len(names))
        return cls._assemble([str(t) for t in names[order]], rank[np.array(rows, dtype=np.int64)],
                             np.array(cols, dtype=np.int64), np.array(freqs, dtype=np.float32), lengths)

    @classmethod
    def _assemble(cls, terms: list[str], term_ids: np.ndarray, docs: np.ndarray, tf: np.ndarray,
                  doc_len: np.ndarray) -> Postings:
        order = np.lexsort((docs, term_ids))
        counts = np.bincount(term_ids, minlength=len(terms)) if len(terms) else np.zeros(0, dtype=np.int64)
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(terms, indptr, docs[order].astype(np.int32), tf[order].astype(np.float32),
                   doc_len.astype(np.float32))

    @classmethod
    def merge(cls, parts: Sequence[tuple[Postings, np.ndarray]]) -> Postings:
        """One segment's postings from several, keeping the chunks where each part's mask is True (positions are
        renumbered in order: part 0's kept chunks first)."""
        terms = sorted(set().union(*(p.terms for p, _ in parts)))
        index = {t: i for i, t in enumerate(terms)}
        ids, docs, tfs, lengths = [], [], [], []
        offset = 0
        for postings, keep in parts:
            new_pos = np.cumsum(keep) - 1 + offset
            mapping = np.array([index[t] for t in postings.terms], dtype=np.int64)
            per_term = np.diff(postings.indptr)
            term_ids = np.repeat(mapping, per_term)
            alive = keep[postings.docs]
            ids.append(term_ids[alive])
            docs.append(new_pos[postings.docs[alive]])
            tfs.append(postings.tf[alive])
            lengths.append(postings.doc_len[keep])
            offset += int(keep.sum())
        cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dtype=dt))  # noqa: E731
        merged = cls._assemble(terms, cat(ids, np.int64), cat(docs, np.int64), cat(tfs, np.float32),
                               cat(lengths, np.float32))
        # Terms whose every chunk was dropped would count as df 0 forever; leave them out.
        used = np.diff(merged.indptr) > 0
        if used.all():
            return merged
        kept_terms = [t for t, u in zip(merged.terms, used, strict=True) if u]
        return cls._assemble(kept_terms, np.repeat(np.arange(len(kept_terms)), np.diff(merged.indptr)[used]),
                             merged.docs.astype(np.int64), merged.tf, merged.doc_len)

    def lookup(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        i = self.vocab.get(term)
        if i is None:
            return None
        start, end = self.indptr[i], self.indptr[i + 1]
        return self.docs[start:end], self.tf[start:end]

    def save(self, path: Path) -> None:
        # Terms as one newline-joined UTF-8 blob: a fixed-width numpy string array would store every term at the
        # longest term's width (4 bytes per character). Tokens never hold a newline (rag.text splits on it).
        blob = np.frombuffer("\n".join(self.terms).encode("utf-8"), dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, terms=blob, indptr=self.indptr, docs=self.docs, tf=self.tf, doc_len=self.doc_len)

    @classmethod
    def load(cls, path: Path) -> Postings:
        with np.load(path, allow_pickle=False) as data:
            blob = data["terms"].tobytes().decode("utf-8")
            postings = cls(blob.split("\n") if blob else [], data["indptr"], data["docs"], data["tf"],
                           data["doc_len"])
        if len(postings.indptr) != len(postings.terms) + 1 or postings.indptr[-1] != len(postings.docs):
            raise ValueError("postings arrays disagree")
        return postings


class Corpus:
    """BM25 over segments as one collection: N and avgdl over the live chunks (mask True) of all of them, and
    each chunk's length normalisation, computed once per snapshot rather than per query."""

    def __init__(self, segments: Sequence[tuple[Postings, np.ndarray]]) -> None:
        self.segments = segments
        self.n_docs = sum(int(live.sum()) for _, live in segments)
        total = sum(float(p.doc_len[live].sum()) for p, live in segments)
        avgdl = total / self.n_docs if self.n_docs else 1.0
        self.norms = [K1 * (1 - B + B * p.doc_len / avgdl) for p, _ in segments]
        self.whole = [bool(live.all()) for _, live in segments]  # no tombstone: postings need no filtering

    def scores(self, tokens: Sequence[str]) -> list[np.ndarray]:
        """BM25 of every chunk of every segment for a tokenised query (duplicates count twice, as in bm25s);
        dead chunks score 0, and df counts live chunks only."""
        scores = [np.zeros(len(p.doc_len), dtype=np.float32) for p, _ in self.segments]
        if not self.n_docs:
            return scores
        for term, repeats in Counter(tokens).items():
            hits = []
            df = 0
            for (postings, live), norm, whole in zip(self.segments, self.norms, self.whole, strict=True):
                found = postings.lookup(term)
                if found is None:
                    hits.append(None)
                    continue
                docs, tf = found
                if not whole:
                    alive = live[docs]
                    docs, tf = docs[alive], tf[alive]
                df += len(docs)
                hits.append((docs, tf / (tf + norm[docs])))
            if not df:
                continue
            idf = math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5)) * repeats
            for out, hit in zip(scores, hits, strict=True):
                if hit is not None:
                    out[hit[0]] += (idf * hit[1]).astype(np.float32)
        return scores


def bm25_scores(tokens: Sequence[str], segments: Sequence[tuple[Postings, np.ndarray]]) -> list[np.ndarray]:
    """One-off BM25 over segments (see Corpus)."""
    return Corpus(segments).scores(tokens)
