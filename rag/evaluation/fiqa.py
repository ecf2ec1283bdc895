"""FiQA 2018 task 1 (Maia et al. 2018): financial headlines and microblog posts with continuous gold sentiment in
[-1, 1]; see eval/data/fiqa/SOURCE.md. Evaluation only and zero-shot: no model or calibration of rag is trained or
tuned on it (its licence is unclear, and it is the one sentiment benchmark nothing was fitted to).

Each sentence is scored as a one-passage document through the sentiment prompt, i.e. the document score users get
from whichever model is configured (`--model` for another). A sentence with several scored targets gets their mean
(the document score has no target). Reported per source (headlines, posts): Pearson and Spearman correlation and
MSE against the gold score, and three-class accuracy with a +-0.1 neutral band on both sides. A plain lexicon
baseline (VADER's compound score, a general-purpose sentiment lexicon with rules, MIT licence) is measured on the
same sentences in the same run, so every number has its floor beside it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel
from scipy.stats import pearsonr, spearmanr

from rag import llm
from rag.evaluation.phrasebank import sentence_scores
from rag.library import Library
from rag.qa import run_sync
from rag.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "eval" / "data" / "fiqa"
Source = Literal["headlines", "posts"]
FILES: dict[Source, str] = {"headlines": "task1_headline_ABSA_train.json", "posts": "task1_post_ABSA_train.json"}
NEUTRAL_BAND = 0.1
LEXICON = "vaderSentiment 3.3.2 (lexicon baseline)"


class ScoredSentence(BaseModel):
    id: str
    source: Source
    text: str
    gold: float


def load(data_dir: Path = DATA_DIR) -> list[ScoredSentence]:
    """Every labelled (train-file) sentence once, gold = the mean of its targets' scores."""
    rows = []
    for source, name in FILES.items():
        records = json.loads((data_dir / name).read_text(encoding="utf-8"))
        for key, record in records.items():
            golds = [float(info["sentiment_score"]) for info in record["info"]]
            rows.append(ScoredSentence(id=f"{source}-{key}", source=source, text=record["sentence"].strip(),
                                       gold=sum(golds) / len(golds)))
    return rows


def three_class(score: float) -> int:
    return 0 if abs(score) < NEUTRAL_BAND else (1 if score > 0 else -1)


def agreement(gold: list[float], predicted: list[float]) -> dict[str, float]:
    """Pearson, Spearman, MSE and +-0.1-band three-class accuracy of `predicted` against `gold`."""
    g, p = np.asarray(gold, dtype=float), np.asarray(predicted, dtype=float)
    # A constant prediction has no correlation; report 0 rather than scipy's NaN plus a warning.
    constant = bool(np.ptp(p) == 0)
    return {
        "pearson": 0.0 if constant else round(float(pearsonr(g, p).statistic), 4),
        "spearman": 0.0 if constant else round(float(spearmanr(g, p).statistic), 4),
        "mse": round(float(np.mean((g - p) ** 2)), 4),
        "accuracy_3class": round(float(np.mean([three_class(a) == three_class(b) for a, b in zip(g, p, strict=True)])),
                                 4),
    }


def lexicon_scores(texts: list[str]) -> list[float]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # eval-only dependency, loaded here

    analyzer = SentimentIntensityAnalyzer()
    return [float(analyzer.polarity_scores(t)["compound"]) for t in texts]


def run(lib: Library, model: str | None = None) -> dict[str, Any]:
    rows = load()
    model = llm.prepare(lib.settings.llm, "sentiment", model).model
    started = time.perf_counter()
    errors: dict[int, str] = {}
    scores = run_sync(sentence_scores(lib, model, [r.text for r in rows], errors))
    ms = (time.perf_counter() - started) * 1000 / len(rows)
    lexicon = lexicon_scores([r.text for r in rows])
    metrics: dict[str, float] = {}
    for source in FILES:
        # A sentence the model could not score counts as neutral (0): a failure must not improve the numbers.
        idx = [i for i, r in enumerate(rows) if r.source == source]
        gold = [rows[i].gold for i in idx]
        mine = agreement(gold, [scores[i] if scores[i] is not None else 0.0 for i in idx])
        base = agreement(gold, [lexicon[i] for i in idx])
        metrics.update({f"{source}_{k}": v for k, v in mine.items()})
        metrics.update({f"{source}_lexicon_{k}": v for k, v in base.items()})
        metrics[f"{source}_sentences"] = len(idx)
    metrics["failed_items"] = len(errors)
    metrics["latency_ms_per_sentence"] = round(ms, 2)
    results = []
    for i, (r, s) in enumerate(zip(rows, scores, strict=True)):
        ok = s is not None and three_class(s) == three_class(r.gold)
        results.append({"id": r.id, "question": r.text, "ok": ok, "should_abstain": False, "abstained": False,
                        "expected": f"{r.gold:+.3f}", "answer": "" if s is None else f"{s:+.3f}",
                        "lexicon": round(lexicon[i], 4), **({"error": errors[i]} if i in errors else {})})
    return {"suite": "fiqa", "questions": len(rows), "metrics": metrics, "results": results, "model": model}
