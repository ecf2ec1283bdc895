"""Metrics shared by the suites."""

from __future__ import annotations

from collections.abc import Callable

from rag.library import Library
from rag.models import Passage

IsGold = Callable[[Passage], bool]


def retrieval_metrics(lib: Library, queries: list[tuple[str, list[IsGold]]], k: int) -> dict[str, dict[str, float]]:
    """recall@k (the share of a query's gold passages found in the top k, averaged over queries: a comparison
    needs both sides) and MRR of the first gold passage, for BM25 alone, dense alone and the hybrid default, so
    every retrieval change shows its effect against both baselines."""
    rows: dict[str, dict[str, float]] = {}
    for mode in ("bm25", "dense", "hybrid"):
        recalls, reciprocal = [], []
        for query, golds in queries:
            passages = lib.search(query, k=k, mode=mode)  # type: ignore[arg-type]  # literal modes above
            recalls.append(sum(any(is_gold(p) for p in passages) for is_gold in golds) / len(golds))
            first = next((rank for rank, p in enumerate(passages, start=1) if any(g(p) for g in golds)), None)
            reciprocal.append(1 / first if first else 0.0)
        rows[mode] = {f"recall@{k}": sum(recalls) / len(recalls), "mrr": sum(reciprocal) / len(reciprocal)}
    return rows


def flatten(retrieval: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"retrieval_{mode}_{name}": value for mode, values in retrieval.items() for name, value in values.items()}
