"""Financial PhraseBank v1.0 (Malo et al., 2014; CC BY-NC-SA 3.0, see eval/data/financial_phrasebank/SOURCE.md).

There is no official split, so one is derived from a hash of each sentence's text: stable across machines and
releases, and the same sentence lands in the same split in every agreement subset (they are nested). The
offline sentiment head is trained on `train`, its regularisation picked on `dev`, and only `test` is reported."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from rag import llm
from rag.errors import ConfigError, RagError
from rag.library import Library
from rag.models import Chunk, Document
from rag.prompts import load_prompt
from rag.providers.finance_sentiment import MODEL_NAME, FinanceSentimentClassifier, load_calibration, load_head
from rag.qa import run_sync
from rag.sentiment.scoring import label_for, score_document, scorer_version
from rag.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "eval" / "data" / "financial_phrasebank"
LABELS = ("negative", "neutral", "positive")
FAILED = "failed"  # the prediction of a sentence the model could not score: wrong for every gold label
Split = Literal["train", "dev", "test"]


class LabelledSentence(BaseModel):
    text: str
    label: str
    all_agree: bool
    split: Split


def split_of(text: str) -> Split:
    bucket = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else "dev" if bucket < 80 else "test"


def _read(path: Path, encoding: str) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding=encoding).splitlines():
        text, sep, label = line.rpartition("@")
        if sep and label.strip() in LABELS:
            rows.append((text.strip(), label.strip()))
    return rows


def load(data_dir: Path = DATA_DIR) -> list[LabelledSentence]:
    """Every 50%-agreement sentence once (duplicates and conflicting labels dropped), flagged if all annotators
    agreed. The 50Agree file is latin-1, AllAgree is UTF-8 (SOURCE.md)."""
    all_agree = {text for text, _ in _read(data_dir / "Sentences_AllAgree.txt", "utf-8")}
    labels: dict[str, set[str]] = {}
    for text, label in _read(data_dir / "Sentences_50Agree.txt", "latin-1"):
        labels.setdefault(text, set()).add(label)
    return [
        LabelledSentence(text=text, label=next(iter(found)), all_agree=text in all_agree, split=split_of(text))
        for text, found in labels.items()
        if len(found) == 1
    ]


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    scores = []
    for label in LABELS:
        tp = sum(g == p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(p == label != g for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label != p for g, p in zip(gold, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def band(score: float) -> str:
    """Three classes from a document score: its label's direction (rag.sentiment.scoring.BANDS)."""
    return label_for(score).split()[-1]


async def sentence_scores(lib: Library, model: str, texts: list[str], errors: dict[int, str]) -> list[float | None]:
    """Each sentence as a one-passage document through the sentiment prompt (any litellm model, the offline one
    included): the document score users get. A sentence that could not be scored is None, its error in `errors`."""
    template = load_prompt(lib.settings.prompts_dir, lib.settings.sentiment.prompt)
    version = scorer_version(model)
    embedder = lib.embedder if llm.is_offline(model) else None
    gate = asyncio.Semaphore(lib.settings.sentiment.concurrency)

    async def one(i: int, text: str) -> float | None:
        doc = Document(id=f"sentence-{i}", text=text, title="news sentence")
        chunk = Chunk(id=f"sentence-{i}-0", doc_id=doc.id, ordinal=0, start=0, end=len(text), text=text)
        async with gate:
            try:
                scored = await score_document(doc, [chunk], template, model, version, lib.settings.llm,
                                              lib.settings.sentiment, embedder=embedder)
            except ConfigError:
                raise
            except RagError as exc:  # recorded as a wrong prediction with its error, not the end of the run
                errors[i] = f"{type(exc).__name__}: {exc}"
                return None
        return scored.score

    return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(texts))))


async def _model_labels(lib: Library, model: str, texts: list[str], errors: dict[int, str]) -> list[str]:
    """Three-class labels from `sentence_scores`; a sentence that could not be scored gets FAILED."""
    return [FAILED if s is None else band(s) for s in await sentence_scores(lib, model, texts, errors)]


def run(lib: Library, model: str | None = None, split: Split = "test") -> dict[str, Any]:
    """Accuracy and macro-F1 on the held-out split, overall and on the all-annotators-agree subset. The offline
    default is measured at sentence level (argmax of its classifier); other models through the sentiment prompt."""
    rows = [r for r in load() if r.split == split]
    texts = [r.text for r in rows]
    model = llm.prepare(lib.settings.llm, "sentiment", model).model
    started = time.perf_counter()
    errors: dict[int, str] = {}
    if model == MODEL_NAME:  # measured per sentence, where its classifier works
        classifier = FinanceSentimentClassifier(load_head(), lib.embedder.embed_batch, load_calibration())
        probs = classifier.probabilities(texts)
        predicted = [LABELS[i] for i in probs.argmax(axis=1)]
    else:
        predicted = run_sync(_model_labels(lib, model, texts, errors))
    ms_per_sentence = (time.perf_counter() - started) * 1000 / len(rows)
    gold = [r.label for r in rows]
    agree = [i for i, r in enumerate(rows) if r.all_agree]

    def accuracy(idx: list[int]) -> float:
        return sum(gold[i] == predicted[i] for i in idx) / len(idx)

    metrics = {
        "accuracy": accuracy(list(range(len(rows)))), "macro_f1": macro_f1(gold, predicted),
        "all_agree_accuracy": accuracy(agree),
        "all_agree_macro_f1": macro_f1([gold[i] for i in agree], [predicted[i] for i in agree]),
        "sentences": len(rows), "failed_items": len(errors), "latency_ms_per_sentence": round(ms_per_sentence, 2),
    }
    results = [{"id": f"{split}-{i}", "question": r.text, "ok": r.label == p, "should_abstain": False,
                "abstained": False, "expected": r.label, "answer": p, **({"error": errors[i]} if i in errors else {})}
               for i, (r, p) in enumerate(zip(rows, predicted, strict=True))]
    return {"suite": "phrasebank", "questions": len(rows), "metrics": metrics, "results": results,
            "model": model}
