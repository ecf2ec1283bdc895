"""Metrics shared by the suites."""

from __future__ import annotations

from collections.abc import Callable

from rag.library import Library
from rag.models import Passage

IsGold = Callable[[Passage], bool]


def retrieval_metrics(lib: Library, queries: list[tuple[str, IsGold]], k: int) -> dict[str, dict[str, float]]:
    """recall@k and MRR of the first gold passage, for BM25 alone, dense alone and the hybrid default, so every
    retrieval change shows its effect against both baselines."""
    rows: dict[str, dict[str, float]] = {}
    for mode in ("bm25", "dense", "hybrid"):
        ranks = []
        for query, is_gold in queries:
            passages = lib.search(query, k=k, mode=mode)  # type: ignore[arg-type]  # literal modes above
            ranks.append(next((rank for rank, p in enumerate(passages, start=1) if is_gold(p)), None))
        rows[mode] = {f"recall@{k}": sum(r is not None for r in ranks) / len(ranks),
                      "mrr": sum(1 / r for r in ranks if r) / len(ranks)}
    return rows


def flatten(retrieval: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"retrieval_{mode}_{name}": value for mode, values in retrieval.items() for name, value in values.items()}
