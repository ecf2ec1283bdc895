"""The earnings suite: 156 hand-written analyst questions over 60 earnings calls of ~59 companies (plus the two
Calix seeds as distractors), where the hard part is answering from the right company's call. Reports, for the
dev and the test split separately (split by a hash of the question; tune on dev only, gate on test):
retrieval recall@5 / MRR (hybrid, bm25, dense), fact accuracy, citation precision, wrong-company citations,
abstention precision / recall and latency."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rag.evaluation.gold import GoldQuestion, Split, split_of
from rag.evaluation.metrics import ask_or_failure, by_split, failed_item, wilson_interval
from rag.library import Library
from rag.models import Answer, Passage, Turn
from rag.settings import PROJECT_ROOT

GOLD = PROJECT_ROOT / "eval" / "gold" / "earnings.yaml"


class GoldPassage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    doc: str
    evidence: str = Field(description="A verbatim substring of the passage that answers.")


class EarningsItem(GoldQuestion):
    kind: str
    companies: list[str] = Field(default_factory=list, description="Tickers of the companies asked about.")
    gold: list[GoldPassage] = Field(default_factory=list)
    history: list[Turn] = Field(default_factory=list)
    absent_company: str | None = None
    absent: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> EarningsItem:
        if not self.abstain and not (self.facts and self.gold):
            raise ValueError(f"{self.id}: answerable items need facts and gold passages")
        return self

    @property
    def split(self) -> Split:
        return split_of(self.question)

    def is_gold(self, entry: GoldPassage, passage: Passage) -> bool:
        return passage.doc_id == entry.doc and entry.evidence in passage.text


class EarningsSuite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    documents: str
    extra_documents: str | None = None
    items: list[EarningsItem]


def load(path: Path = GOLD) -> EarningsSuite:
    return EarningsSuite.model_validate(yaml.safe_load(path.read_text("utf-8")))


def _judge(item: EarningsItem, answer: Answer, tickers_of: dict[str, set[str]]) -> dict[str, Any]:
    # A list question names no company (its `companies` are the expected answers), so only questions that name
    # companies can cite a wrong one.
    named = set(item.companies) if item.kind != "list" else set()
    citations = [{"n": c.n, "doc_id": c.doc_id, "span": [c.start, c.end],
                  "wrong_company": bool(named) and not (tickers_of.get(c.doc_id, set()) & named),
                  "supports_fact": c.doc_id in {g.doc for g in item.gold}
                  and (item.kind == "list" or any(item.fact_matches(c.quote)))}
                 for c in answer.citations]
    base = {"id": item.id, "kind": item.kind, "split": item.split, "question": item.question,
            "should_abstain": item.abstain, "abstained": answer.abstained, "answer": answer.answer,
            "citations": citations, "latency_ms": answer.timings_ms}
    if item.abstain:
        return {**base, "ok": answer.abstained}
    facts = dict(zip(item.facts, item.fact_matches(answer.answer), strict=True))
    cited_docs = {c.doc_id for c in answer.citations}
    sides_cited = all(g.doc in cited_docs for g in item.gold)
    return {**base, "ok": all(facts.values()) and sides_cited and not answer.abstained, "facts": facts,
            "gold_docs_cited": sides_cited, "ungrounded_numbers": answer.ungrounded_numbers,
            "uncited": not answer.citations}


def _split_metrics(results: list[dict[str, Any]]) -> dict[str, float]:
    def share(values: list[bool]) -> float:
        return sum(values) / len(values) if values else 0.0

    answerable = [r for r in results if not r["should_abstain"]]
    citations = [c for r in answerable for c in r["citations"]]
    abstained = [r for r in results if r["abstained"]]
    must_abstain = [r["abstained"] for r in results if r["should_abstain"]]
    right = [r["ok"] for r in answerable]
    low, high = wilson_interval(sum(right), len(right))
    metrics = {
        "fact_accuracy": share(right),
        "fact_accuracy_low95": low,
        "fact_accuracy_high95": high,
        # Over zero citations precision is 0, not 1: an answer that cites nothing supports nothing.
        "citation_precision": share([c["supports_fact"] for c in citations]),
        "wrong_company_citations": float(sum(c["wrong_company"] for r in results for c in r["citations"])),
        "abstention_precision": share([r["should_abstain"] for r in abstained]) if abstained else 1.0,
        "items": float(len(results)),
    }
    if must_abstain:  # a subset (rag eval --limit) without must-abstain items measures no abstention recall
        metrics["abstention_recall"] = share(must_abstain)
    return metrics


def run(lib: Library, suite: EarningsSuite, k: int = 5, model: str | None = None) -> dict[str, Any]:
    tickers_of = {d.id: set(d.tickers) for d in lib.list_documents()}
    results, latencies, standalone = [], [], {}
    for item in suite.items:
        started = time.perf_counter()
        answer, error = ask_or_failure(lib, item.question, item.history, model)
        latencies.append((time.perf_counter() - started) * 1000)
        standalone[item.id] = answer.standalone_question if answer else item.question
        results.append(_judge(item, answer, tickers_of) if answer else failed_item(
            item.id, item.question, item.abstain, error or "no answer", kind=item.kind, split=item.split))
    # Retrieval is measured on the question as searched: a follow-up's standalone rewrite.
    metrics, retrieval = by_split(lib, results, _split_metrics, lambda split: [
        (standalone[i.id], [lambda p, i=i, g=g: i.is_gold(g, p) for g in i.gold])
        for i in suite.items if i.split == split and not i.abstain], k)
    metrics["latency_ms_p50"] = round(statistics.median(latencies), 1)
    metrics["latency_ms_p95"] = round(sorted(latencies)[max(0, int(len(latencies) * 0.95) - 1)], 1)
    return {"suite": suite.suite, "questions": len(suite.items), "metrics": metrics, "retrieval": retrieval,
            "results": results}
