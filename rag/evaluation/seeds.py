"""The seeds suite: retrieval (recall@k, MRR for hybrid, dense and BM25), answers (fact accuracy,
citation precision, grounding, abstention) and latency, all through the public Library API."""

from __future__ import annotations

import statistics
import time
from typing import Any

from rag.errors import ConfigError, RagError
from rag.evaluation.gold import GoldItem, GoldSuite
from rag.evaluation.metrics import ask_or_failure, failed_item, flatten, retrieval_metrics
from rag.library import Library
from rag.models import Answer
from rag.qa import run_sync
from rag.sentiment.service import sentiment_model


def _judge(item: GoldItem, answer: Answer) -> dict[str, Any]:
    if item.abstain:
        return {"id": item.id, "question": item.question, "should_abstain": True, "abstained": answer.abstained,
                "ok": answer.abstained, "answer": answer.answer}
    matches = item.fact_matches(answer.answer)
    cited_from_doc = [c for c in answer.citations if c.doc_id == item.doc]
    # A fact counts as cited when one of the answer's citations from the gold document contains it.
    facts_cited = [any(item.fact_matches(c.quote)[i] for c in cited_from_doc) for i in range(len(item.facts))]
    precise = [any(item.fact_matches(c.quote)) for c in answer.citations]
    ok = all(matches) and all(facts_cited) and not answer.abstained
    return {
        "id": item.id, "question": item.question, "should_abstain": False, "abstained": answer.abstained,
        "ok": ok, "facts": dict(zip(item.facts, matches, strict=True)), "facts_cited": all(facts_cited),
        "citations": [{"n": c.n, "doc_id": c.doc_id, "span": [c.start, c.end], "supports_fact": s}
                      for c, s in zip(answer.citations, precise, strict=True)],
        "ungrounded_numbers": answer.ungrounded_numbers, "uncited": answer.uncited,
        "unsupported": [u.sentence for u in answer.unsupported], "answer": answer.answer,
    }


def sentiment_metrics(lib: Library, suite: GoldSuite, model: str | None) -> tuple[dict[str, float], list[dict]]:
    """Absolute error and label agreement against the documents' own stated sentiment. A document that could not be
    scored is a recorded failure (and leaves its metrics unmeasured, which fails their gate)."""
    scoring_model = sentiment_model(lib.settings, model)
    results = []
    for gold in suite.sentiment:
        base = {"id": f"sentiment-{gold.doc}", "question": f"sentiment of {gold.doc}", "should_abstain": False,
                "abstained": False, "expected": {"score": gold.score, "label": gold.label}}
        try:
            scored = run_sync(lib.adocument_sentiment(gold.doc, model=scoring_model))
        except ConfigError:
            raise
        except RagError as exc:
            results.append({**base, "ok": False, "answer": "", "error": f"{type(exc).__name__}: {exc}"})
            continue
        results.append({**base, "ok": scored.label == gold.label,
                        "answer": f"{scored.score:+.3f} {scored.label} (confidence {scored.confidence:.2f}, "
                                  f"{scored.model})", "abs_error": round(abs(scored.score - gold.score), 4)})
    if not results:
        return {}, []
    scored_ok = [r for r in results if "error" not in r]
    metrics: dict[str, float] = {"sentiment_failures": len(results) - len(scored_ok)}
    if scored_ok:
        metrics["sentiment_mae"] = round(statistics.mean(r["abs_error"] for r in scored_ok), 4)
        metrics["sentiment_label_accuracy"] = sum(r["ok"] for r in scored_ok) / len(scored_ok)
    return metrics, results


def run(lib: Library, suite: GoldSuite, k: int = 5, model: str | None = None) -> dict[str, Any]:
    answerable = [i for i in suite.items if not i.abstain]
    results = []
    latencies = []
    for item in suite.items:
        started = time.perf_counter()
        answer, error = ask_or_failure(lib, item.question, model=model)
        latencies.append((time.perf_counter() - started) * 1000)
        results.append(_judge(item, answer) if answer else failed_item(item.id, item.question, item.abstain, error
                                                                       or "no answer"))

    def share(values: list[bool], empty: float = 1.0) -> float:
        return sum(values) / len(values) if values else empty

    answered = [r for r in results if not r["should_abstain"]]
    produced = [r for r in answered if "error" not in r]
    all_citations = [c for r in answered for c in r["citations"]]
    abstained = [r for r in results if r["abstained"]]
    metrics = {
        "fact_accuracy": share([r["ok"] for r in answered]),
        # Over zero citations precision is 0, not 1: an answer that cites nothing supports nothing.
        "citation_precision": share([c["supports_fact"] for c in all_citations], empty=0.0),
        # Grounded: every number in a passage its sentence cites, every claim cited, every cited claim supported.
        # Over the answers the model produced; failed items count against fact accuracy and `failed_items`.
        "grounding": share([not (r["ungrounded_numbers"] or r["uncited"] or r["unsupported"]) for r in produced],
                           empty=0.0),
        "abstention_recall": share([r["abstained"] for r in results if r["should_abstain"]]),
        "abstention_precision": share([r["should_abstain"] for r in abstained]),
        "failed_items": len(results) - sum("error" not in r for r in results),
        "latency_ms_p50": round(statistics.median(latencies), 1),
        "latency_ms_p95": round(sorted(latencies)[max(0, int(len(latencies) * 0.95) - 1)], 1),
    }
    retrieval = retrieval_metrics(lib, [
        (i.question, [lambda p, i=i: p.doc_id == i.doc and bool(i.evidence) and i.evidence in p.text])
        for i in answerable], k)
    metrics.update(flatten(retrieval))
    sentiment, sentiment_results = sentiment_metrics(lib, suite, model)
    metrics.update(sentiment)
    return {"suite": suite.suite, "questions": len(suite.items), "metrics": metrics, "retrieval": retrieval,
            "results": results + sentiment_results}
