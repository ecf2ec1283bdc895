"""The earnings-sentiment suite: does the document score separate good quarters from bad ones on the calls users
score? eval/gold/earnings_sentiment.yaml labels 51 earnings calls good / mixed / bad by reading them; each call is
scored through the sentiment prompt by the configured model (`--model` for another), exactly as `rag sentiment
--doc` scores it, without building an index (scoring needs no embeddings of the chunks, so the suite stays fast).

Reported for dev, test (split by a hash of the document id: develop on dev, gate on test) and all calls: Spearman
rank correlation of score with label (bad < mixed < good), how many bad calls score below every good one, the share
of calls below +0.10 (management speech is positive by convention, so a scorer that puts every call above it has
labels that say nothing), and where GE's Q1-2020 call (industrial free cash flow -$2.2 bn, outlook withdrawn)
ranks, as a quantile of all scored calls (0 = lowest)."""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import spearmanr

from rag import llm
from rag.chunking import chunk_document
from rag.errors import BadInputError, ConfigError, RagError
from rag.library import Library
from rag.loaders import load_file
from rag.models import Document
from rag.prompts import load_prompt
from rag.qa import run_sync
from rag.sentiment.scoring import score_document, scorer_version
from rag.settings import PROJECT_ROOT

GOLD = PROJECT_ROOT / "eval" / "gold" / "earnings_sentiment.yaml"
Label = Literal["good", "mixed", "bad"]
ORDER: dict[str, int] = {"bad": -1, "mixed": 0, "good": 1}
GE_Q1_2020 = "e21-4341191"
LOW = 0.10  # "below +0.10": the neutral band's upper bound (rag.sentiment.scoring.BANDS)


class LabelledCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    doc: str
    call: str
    ticker: str
    label: Label
    quotes: list[str] = Field(min_length=1, description="Verbatim sentences of the call that justify the label.")

    @property
    def split(self) -> Literal["dev", "test"]:
        return "test" if int(hashlib.sha256(self.doc.encode()).hexdigest(), 16) % 2 else "dev"


class EarningsSentimentGold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    documents: str
    items: list[LabelledCall]


def load(path: Path = GOLD) -> EarningsSentimentGold:
    return EarningsSentimentGold.model_validate(yaml.safe_load(path.read_text("utf-8")))


def documents(gold: EarningsSentimentGold, max_bytes: int) -> dict[str, Document]:
    """The gold calls as `rag ingest` would load them (same ids, metadata and content hashes)."""
    found = {d.id: d for d in load_file(PROJECT_ROOT / gold.documents, max_bytes)}
    missing = [i.doc for i in gold.items if i.doc not in found]
    if missing:
        raise BadInputError(f"gold calls not in {gold.documents}: {', '.join(missing)}")
    return found


def separation(scores: list[float], labels: list[str]) -> dict[str, float]:
    """Spearman of score with label order, bad calls below every good call, and the share of calls below +0.10."""
    ranks = [ORDER[label] for label in labels]
    good = [s for s, label in zip(scores, labels, strict=True) if label == "good"]
    bad = [s for s, label in zip(scores, labels, strict=True) if label == "bad"]
    constant = len(set(scores)) < 2 or len(set(ranks)) < 2
    return {
        "spearman": 0.0 if constant else round(float(spearmanr(scores, ranks).statistic), 4),
        "bad_below_all_good": float(sum(b < min(good) for b in bad)) if good else float(len(bad)),
        "bad_calls": float(len(bad)),
        "share_below_0.10": round(sum(s < LOW for s in scores) / len(scores), 4) if scores else 0.0,
        "calls": float(len(scores)),
    }


async def _score_all(lib: Library, model: str, docs: list[Document], errors: dict[str, str]) -> dict[str, float]:
    template = load_prompt(lib.settings.prompts_dir, lib.settings.sentiment.prompt)
    version = scorer_version(model)
    embedder = lib.embedder if llm.is_offline(model) else None
    # The offline scorer is CPU-bound: calls scored side by side only contend for the cores (and overrun their
    # deadline on a busy machine), so it scores one call at a time; a remote model gets the configured concurrency.
    gate = asyncio.Semaphore(1 if llm.is_offline(model) else lib.settings.sentiment.concurrency)
    scores: dict[str, float] = {}

    async def one(doc: Document) -> None:
        chunks = chunk_document(doc, lib.settings.chunking)
        async with gate:
            try:
                scored = await score_document(doc, chunks, template, model, version, lib.settings.llm,
                                              lib.settings.sentiment, embedder=embedder)
            except ConfigError:
                raise
            except RagError as exc:  # a recorded failure, not the end of the run
                errors[doc.id] = f"{type(exc).__name__}: {exc}"
                return
        scores[doc.id] = scored.score

    await asyncio.gather(*(one(d) for d in docs))
    return scores


def run(lib: Library, gold: EarningsSentimentGold, model: str | None = None) -> dict[str, Any]:
    model = llm.prepare(lib.settings.llm, "sentiment", model).model
    docs = documents(gold, lib.settings.max_file_bytes)
    started = time.perf_counter()
    errors: dict[str, str] = {}
    scores = run_sync(_score_all(lib, model, [docs[i.doc] for i in gold.items], errors))
    ms_per_call = (time.perf_counter() - started) * 1000 / len(gold.items)
    metrics: dict[str, float] = {}
    for split in ("dev", "test", "all"):
        items = [i for i in gold.items if (split == "all" or i.split == split) and i.doc in scores]
        found = separation([scores[i.doc] for i in items], [i.label for i in items])
        metrics.update({f"{split}_{name}": value for name, value in found.items()})
        for label in ORDER:
            values = [scores[i.doc] for i in items if i.label == label]
            if values:
                metrics[f"{split}_mean_{label}"] = round(statistics.mean(values), 4)
    ordered = sorted(scores.values())
    if GE_Q1_2020 in scores:
        # The share of scored calls strictly below GE's: 0 is the lowest call, < 0.25 the bottom quartile.
        metrics["ge_q1_2020_quantile"] = round(ordered.index(scores[GE_Q1_2020]) / len(ordered), 4)
        metrics["ge_q1_2020_score"] = scores[GE_Q1_2020]
    metrics["failed_items"] = len(errors)
    metrics["latency_ms_per_call"] = round(ms_per_call, 1)
    results = []
    for item in gold.items:
        score = scores.get(item.doc)
        # ok: the score's side of +0.10 agrees with the label (bad below, good above); mixed calls are not judged.
        ok = score is not None and (item.label == "mixed" or (score < LOW) == (item.label == "bad"))
        results.append({"id": item.doc, "question": item.call, "split": item.split, "ok": ok,
                        "should_abstain": False, "abstained": False, "expected": item.label,
                        "answer": "" if score is None else f"{score:+.3f}",
                        **({"error": errors[item.doc]} if item.doc in errors else {})})
    return {"suite": gold.suite, "questions": len(gold.items), "metrics": metrics, "results": results,
            "model": model}
