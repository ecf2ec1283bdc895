"""Metrics shared by the suites."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from rag.errors import ConfigError, RagError
from rag.evaluation.gold import Split
from rag.library import Library
from rag.models import Answer, Passage, Turn

IsGold = Callable[[Passage], bool]
Row = dict[str, Any]
logger = logging.getLogger(__name__)


def retrieval_metrics(lib: Library, queries: list[tuple[str, list[IsGold]]], k: int) -> dict[str, dict[str, float]]:
    """recall@k (the share of a query's gold passages found in the top k, averaged over queries: a comparison
    needs both sides) and MRR of the first gold passage, for BM25 alone, dense alone and the hybrid default, so
    every retrieval change shows its effect against both baselines."""
    rows: dict[str, dict[str, float]] = {}
    if not queries:  # a subset with no answerable question has no retrieval to measure
        return rows
    for mode in ("bm25", "dense", "hybrid"):
        recalls, reciprocal = [], []
        for query, golds in queries:
            # Only the first k: a list question gets list_k passages and a comparison k per side, more than k.
            passages = lib.search(query, k=k, mode=mode)[:k]  # type: ignore[arg-type]  # literal modes above
            recalls.append(sum(any(is_gold(p) for p in passages) for is_gold in golds) / len(golds))
            first = next((rank for rank, p in enumerate(passages, start=1) if any(g(p) for g in golds)), None)
            reciprocal.append(1 / first if first else 0.0)
        rows[mode] = {f"recall@{k}": sum(recalls) / len(recalls), "mrr": sum(reciprocal) / len(reciprocal)}
    return rows


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a share: how far a split of ~100 questions moves by chance alone (73 of 102
    right is 0.62-0.79), so a change of an item or two reads as the noise it is. Unlike the normal approximation it
    stays inside [0, 1] at 0 or n successes."""
    if n == 0:
        return 0.0, 1.0
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def by_split(lib: Library, results: list[Row], answer_metrics: Callable[[list[Row]], dict[str, float]],
             queries: Callable[[Split], list[tuple[str, list[IsGold]]]],
             k: int) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Metrics of a suite split dev/test (each result row has its "split"): the answer metrics of each split's rows
    and the retrieval baselines of its `queries`, prefixed with the split, then the failed items over both."""
    metrics: dict[str, float] = {}
    retrieval: dict[str, dict[str, float]] = {}
    for split in ("dev", "test"):
        in_split = [r for r in results if r["split"] == split]
        if not in_split:  # a run of one split (`rag eval --split`) measures nothing of the other
            continue
        metrics.update({f"{split}_{name}": value for name, value in answer_metrics(in_split).items()})
        found = retrieval_metrics(lib, queries(split), k)
        retrieval.update({f"{split}_{mode}": values for mode, values in found.items()})
    metrics.update(flatten(retrieval))
    metrics["failed_items"] = sum("error" in r for r in results)
    return metrics, retrieval


def flatten(retrieval: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"retrieval_{mode}_{name}": value for mode, values in retrieval.items() for name, value in values.items()}


def ask_or_failure(lib: Library, question: str, history: Sequence[Turn] = (),
                   model: str | None = None) -> tuple[Answer | None, str | None]:
    """The answer, or the error that took its place: one failed item (provider down after retries, malformed or
    echoed output, a prompt over the context) is a recorded failure, not the end of the run. A configuration error
    (no key, unknown model) would fail every item alike, so it stops the run (exit 2)."""
    try:
        return lib.ask(question, history=history, model=model), None
    except ConfigError:
        raise
    except RagError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001  # a bug hit by one item is still one failed row, with its traceback
        logger.exception("eval item failed: %s", question[:80])
        return None, f"unexpected {type(exc).__name__}: {exc}"


def failed_item(item_id: str, question: str, should_abstain: bool, error: str, **extra: Any) -> dict[str, Any]:
    """A report row for an item whose call failed: not ok, no answer, no citations, the error."""
    return {"id": item_id, "question": question, "should_abstain": should_abstain, "abstained": False, "ok": False,
            "answer": "", "error": error, "citations": [], "ungrounded_numbers": [], "uncited": [],
            "unsupported": [], **extra}
