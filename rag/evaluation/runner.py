"""Runs one named suite end to end on a fresh temporary index (or a given one) and returns its report."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, TypeVar

from rag import llm
from rag.errors import BadInputError
from rag.evaluation import earnings, earnings_sentiment, financebench, fiqa, phrasebank, seeds
from rag.evaluation.gold import load_suite
from rag.library import Library
from rag.settings import PROJECT_ROOT, Settings

SUITES = ("seeds", "earnings", "phrasebank", "fiqa", "earnings-sentiment", "financebench")
SENTIMENT_ONLY = ("phrasebank", "fiqa", "earnings-sentiment")
SPLIT_SUITES = ("earnings", "financebench")  # suites with a dev and a test split of their questions
GOLD_DIR = PROJECT_ROOT / "eval" / "gold"
T = TypeVar("T")


def spread(items: list[T], limit: int | None) -> list[T]:
    """`limit` items spread evenly over the list, the same ones every run. Gold files are grouped by kind (figures,
    comparisons, lists, abstentions...), so every kind keeps its share, which the first `limit` would not."""
    if limit is None or limit >= len(items):
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


def check_subset(name: str, limit: int | None, split: str | None) -> None:
    if name not in SUITES:
        raise BadInputError(f"unknown suite {name!r}; available: {', '.join(SUITES)}")
    if split is not None and (name not in SPLIT_SUITES or split not in ("dev", "test")):
        raise BadInputError("--split is dev or test, for the earnings and financebench suites only")
    if limit is not None and (limit < 1 or name == "phrasebank"):
        raise BadInputError("--limit is a positive number of items, for the seeds, earnings and financebench suites")


def run_suite(name: str, settings: Settings, model: str | None = None, index: Path | None = None,
              limit: int | None = None, split: str | None = None) -> dict[str, Any]:
    """Without `index`, the suite's documents are ingested into a temporary index first. `limit` runs that many
    gold items (spread over the file) and `split` one split (earnings, financebench): a deterministic subset for
    models too slow for the whole suite (a local model on 2 cores), recorded in the report as `subset`."""
    check_subset(name, limit, split)
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(settings.model_copy(update={"index_dir": index or Path(tmp) / "index"}))
        if name == "seeds":
            gold = load_suite(GOLD_DIR / "seeds.yaml")
            total = len(gold.items)
            gold = gold.model_copy(update={"items": spread(gold.items, limit)})
            if index is None:
                ingested = lib.add_paths([PROJECT_ROOT / gold.documents])
                if not ingested.ok:
                    raise BadInputError(f"seed documents failed to load: {ingested.failed}")
            result = seeds.run(lib, gold, model=model)
        elif name == "earnings":
            gold = earnings.load()
            total = len(gold.items)
            in_split = [i for i in gold.items if split is None or i.split == split]
            gold = gold.model_copy(update={"items": spread(in_split, limit)})
            if index is None:
                ingested = lib.add_paths([PROJECT_ROOT / p for p in (gold.documents, gold.extra_documents) if p])
                if not ingested.ok:
                    raise BadInputError(f"earnings documents failed to load: {ingested.failed}")
            result = earnings.run(lib, gold, model=model)
        elif name == "phrasebank":
            result = phrasebank.run(lib, model=model)
        elif name == "fiqa":
            result = fiqa.run(lib, model=model)
        elif name == "earnings-sentiment":
            result = earnings_sentiment.run(lib, earnings_sentiment.load(), model=model)
        else:
            documents, questions = financebench.load()
            total = len(questions)
            questions = spread([q for q in questions if split is None or q.split == split], limit)
            if index is None:
                lib.add_documents(documents)
            result = financebench.run(lib, questions, model=model)
    if limit is not None or split is not None:
        result["subset"] = {"items": result["questions"], "of": total, "split": split, "limit": limit}
    models = models_used(name, settings, model)
    result["models"] = models
    result["metric_models"] = {metric: models[metric_role(name, metric)] for metric in result["metrics"]}
    # The suite's headline model: what answered, or, for the sentiment-only suite, what scored.
    result["model"] = models["sentiment" if name in SENTIMENT_ONLY else "answer"]
    return result


def models_used(suite: str, settings: Settings, model: str | None) -> dict[str, str]:
    """The model behind each role of a suite's metrics; `model` (`rag eval --model`) overrides every task."""
    embedding = f"{settings.embedding.model_name} ({settings.embedding.backend})"
    sentiment = llm.resolve(settings.llm, "sentiment", model).model
    if suite in ("phrasebank", "earnings-sentiment"):
        return {"sentiment": sentiment}
    if suite == "fiqa":
        return {"sentiment": sentiment, "lexicon": fiqa.LEXICON}
    models = {"answer": llm.resolve(settings.llm, "answer", model).model, "embedding": embedding}
    if suite == "earnings":  # follow-up questions are rewritten first
        models["rewrite"] = llm.resolve(settings.llm, "rewrite", model).model
    if suite == "seeds":
        models["sentiment"] = sentiment
    return models


def metric_role(suite: str, metric: str) -> str:
    if suite == "fiqa" and "_lexicon_" in metric:
        return "lexicon"
    if suite in SENTIMENT_ONLY or metric.startswith("sentiment_"):
        return "sentiment"
    if metric.startswith("retrieval_"):
        return "embedding"
    return "answer"
