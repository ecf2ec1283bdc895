"""`local/finance-sentiment`: the offline sentence-level finance sentiment classifier (not a language model).

Two logistic-regression heads whose class probabilities are averaged: one on TF-IDF word uni/bigrams (finance
sentiment is largely lexical: "rose", "fell", "loss narrowed") and one on the bundled MiniLM sentence embedding
(paraphrases). Both are trained by `eval/train_sentiment_head.py` on the train split of Financial PhraseBank
(CC BY-NC-SA 3.0), so the weights in rag/data/finance_sentiment_head.json are for NON-COMMERCIAL use only.
Inference is plain numpy so no training library is needed at run time."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from rag import transcript
from rag.chunking import split_sentences
from rag.prompt_tags import parse_passages_with_attributes, prompt_text
from rag.providers.metric_direction import direction
from rag.providers.registry import LocalCall, RegisteredModel

if TYPE_CHECKING:
    from rag.embedding import Embedder

MODEL_NAME = "local/finance-sentiment"
HEAD_PATH = Path(__file__).resolve().parent.parent / "data" / "finance_sentiment_head.json"
CALIBRATION_PATH = HEAD_PATH.with_name("finance_sentiment_calibration.json")
CLASSES = ("negative", "neutral", "positive")
# Same tokens as scikit-learn's TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", lowercase=True).
_TOKEN = re.compile(r"(?u)\b\w+\b")
# Pseudo-count of one neutral-leaning sentence in the document score (see `verdict`).
NEUTRAL_PRIOR = 1.0


class LinearHead(BaseModel):
    coef: list[list[float]]
    intercept: list[float]


class HeadFile(BaseModel):
    """What the training script writes; `card` holds data source, licence, split and measured scores."""

    classes: list[str]
    embedding_model: str
    ngram_max: int
    vocabulary: dict[str, int]
    idf: list[float]
    tfidf_head: LinearHead
    embedding_head: LinearHead
    card: dict[str, object]


class Calibration(BaseModel):
    """What eval/calibrate_sentiment.py derives: `direction_boost`, the log-odds the metric-direction rule adds to the
    class it implies (from the rule's precision on PhraseBank train: a second, independent opinion combined by Bayes'
    rule), `temperature` (chosen on PhraseBank dev: p^(1/T) renormalised), and `transcript_map` (fitted on the dev
    split of the earnings sentiment gold set); never PhraseBank test, FiQA, the seeds or that gold set's test split.
    `card` holds the data, the fits and the reliability tables."""

    direction_boost: float
    temperature: float
    transcript_map: list[tuple[float, float]] = Field(
        default_factory=list, description="Knots (raw balance, score) of the monotone map applied to the balance of "
        "an earnings-call transcript; empty = identity. Written documents and short texts keep the raw balance: "
        "the only document-scale labels we may fit on are calls, and the offset this map removes (management "
        "speech is positive by convention) is a property of calls.")
    card: dict[str, object]

    def document_score(self, raw: float, transcript: bool) -> float:
        """The raw sentence balance as a document score: mapped by `transcript_map` for a transcript."""
        if not transcript or not self.transcript_map:
            return raw
        xs, ys = zip(*self.transcript_map, strict=True)
        return float(np.clip(np.interp(raw, xs, ys), -1.0, 1.0))


IDENTITY = Calibration(direction_boost=0.0, temperature=1.0, card={"version": "none"})


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class FinanceSentimentClassifier:
    def __init__(self, head: HeadFile, embed: Callable[[list[str]], np.ndarray],
                 calibration: Calibration = IDENTITY) -> None:
        if tuple(head.classes) != CLASSES:
            raise ValueError(f"sentiment head classes {head.classes} != {CLASSES}")
        self.head = head
        self.embed = embed
        self.calibration = calibration
        self._idf = np.asarray(head.idf, dtype=np.float64)
        self._w_tfidf = np.asarray(head.tfidf_head.coef, dtype=np.float64).T
        self._b_tfidf = np.asarray(head.tfidf_head.intercept, dtype=np.float64)
        self._w_emb = np.asarray(head.embedding_head.coef, dtype=np.float64).T
        self._b_emb = np.asarray(head.embedding_head.intercept, dtype=np.float64)

    def tfidf(self, texts: list[str]) -> np.ndarray:
        """The TF-IDF matrix scikit-learn would produce (sublinear tf, l2 norm), dense."""
        out = np.zeros((len(texts), len(self._idf)))
        vocab = self.head.vocabulary
        for row, text in enumerate(texts):
            tokens = _TOKEN.findall(text.lower())
            grams = Counter(
                " ".join(tokens[i:i + n]) for n in range(1, self.head.ngram_max + 1) for i in range(len(tokens) - n + 1)
            )
            for gram, count in grams.items():
                col = vocab.get(gram)
                if col is not None:
                    out[row, col] = (1.0 + math.log(count)) * self._idf[col]
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out

    def raw_probabilities(self, texts: list[str]) -> np.ndarray:
        """(n, 3) probabilities for negative, neutral, positive: the two heads' mean, uncalibrated."""
        if not texts:
            return np.zeros((0, 3))
        p_tfidf = _softmax(self.tfidf(texts) @ self._w_tfidf + self._b_tfidf)
        p_emb = _softmax(np.asarray(self.embed(texts), dtype=np.float64) @ self._w_emb + self._b_emb)
        return (p_tfidf + p_emb) / 2

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """(n, 3) calibrated probabilities for negative, neutral, positive (see `calibrate`)."""
        return calibrate(self.raw_probabilities(texts), [direction(t) for t in texts], self.calibration)


def calibrate(probs: np.ndarray, directions: list[int], calibration: Calibration) -> np.ndarray:
    """Multiply the probability of the class a sentence's metric-direction rule implies (+1 positive, -1 negative)
    by exp(direction_boost), then temperature-scale: p_i^(1/T); both renormalised."""
    out = probs.copy()
    boost = math.exp(calibration.direction_boost)
    for row, sign in enumerate(directions):
        if sign and calibration.direction_boost:
            out[row, 2 if sign > 0 else 0] *= boost
            out[row] /= out[row].sum()
    if calibration.temperature != 1.0:
        out = np.power(np.clip(out, 1e-12, 1.0), 1.0 / calibration.temperature)
        out /= out.sum(axis=1, keepdims=True)
    return out


@lru_cache(maxsize=4)
def load_head(path: Path = HEAD_PATH) -> HeadFile:
    return HeadFile.model_validate(json.loads(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=4)
def load_calibration(path: Path = CALIBRATION_PATH) -> Calibration:
    """The fitted calibration, or none (identity) before eval/calibrate_sentiment.py has written one."""
    if not path.exists():
        return IDENTITY
    return Calibration.model_validate(json.loads(path.read_text(encoding="utf-8")))


def head_hash(path: Path = HEAD_PATH) -> str:
    digest = hashlib.sha256(path.read_bytes())
    if path == HEAD_PATH and CALIBRATION_PATH.exists():  # a refitted calibration rescores like retrained weights
        digest.update(CALIBRATION_PATH.read_bytes())
    return digest.hexdigest()[:16]


def verdict(classifier: FinanceSentimentClassifier, passages: dict[int, str],
            sections: dict[int, str] | None = None) -> dict[str, object]:
    """A document verdict in the sentiment prompt's JSON shape, from sentence-level probabilities.

    score = sum(w * (p_pos - p_neg)) / (sum(w * (p_pos + p_neg)) + NEUTRAL_PRIOR) over the document's sentences:
    the balance of the opinionated ones, so neutral text neither dilutes nor moves it, shrunk toward 0 when there
    is little opinion at all (one leaning sentence is not a "moderately positive" document). w is the weight of the
    sentence's section (rag.transcript.sentence_weight: an analyst's question, the operator, safe-harbour and
    courtesy lines count 0, management's spoken sentences without a figure a quarter; `sections` gives each
    passage's, else it is the author's body). confidence grows with
    the amount of weighted opinion found and the classifier's certainty. Sentences repeated by chunk overlap count
    once. A transcript's balance (its passages carry sections) is then mapped by the calibration's `transcript_map`."""
    owners: list[int] = []
    sentences: list[str] = []
    weights: list[float] = []
    seen: set[str] = set()
    for n, text in sorted(passages.items()):
        section = (sections or {}).get(n) or "body"
        for start, end in split_sentences(text):
            sentence = text[start:end]
            if len(sentence) >= 12 and sentence not in seen:
                seen.add(sentence)
                sentences.append(sentence)
                owners.append(n)
                weights.append(transcript.sentence_weight(sentence, section))
    w = np.asarray(weights)
    if not sentences or not w.any():
        return {"score": 0.0, "confidence": 0.0, "evidence": sorted(passages)[:1],
                "rationale": "no statements by management or the author to classify"}
    probs = classifier.probabilities(sentences)
    polarity = (probs[:, 2] - probs[:, 0]) * w
    opinion = float(((probs[:, 0] + probs[:, 2]) * w).sum())
    is_transcript = any(section != "body" for section in (sections or {}).values())
    score = classifier.calibration.document_score(float(polarity.sum() / (opinion + NEUTRAL_PRIOR)), is_transcript)
    counted = w > 0
    confidence = (1.0 - math.exp(-opinion / 4.0)) * float(probs[counted].max(axis=1).mean())

    by_passage: dict[int, float] = {}
    for owner, value in zip(owners, polarity, strict=True):
        by_passage[owner] = by_passage.get(owner, 0.0) + float(value)
    sign = 1.0 if score >= 0 else -1.0
    ranked = sorted(by_passage, key=lambda n: -by_passage[n] * sign)
    supporting = [n for n in ranked if by_passage[n] * sign > 0][:5]
    # Three passages at least, when the document has them: padded with the strongest of either direction.
    padding = [n for n in sorted(by_passage, key=lambda n: -abs(by_passage[n])) if n not in supporting]
    evidence = (supporting + padding)[:max(3, len(supporting))]
    labels = np.where(counted, probs.argmax(axis=1), -1)
    strongest = sentences[int(np.argmax(polarity * sign))]
    rationale = (f"{int((labels == 2).sum())} of {int(counted.sum())} counted sentences read positive and "
                 f"{int((labels == 0).sum())} negative to the offline classifier ({len(sentences) - int(counted.sum())}"
                 f" of operator, questions, safe-harbour or courtesy not counted); strongest: \"{strongest[:160]}\"")
    return {"score": round(score, 4), "confidence": round(confidence, 4), "evidence": evidence,
            "rationale": rationale}


@lru_cache(maxsize=4)
def _classifier(embedder: Embedder) -> FinanceSentimentClassifier:
    return FinanceSentimentClassifier(load_head(), embedder.embed_batch, load_calibration())


def handle(call: LocalCall) -> str:
    # Only the first user turn holds the document; a repair turn repeats nothing we need.
    found = parse_passages_with_attributes(prompt_text(call.messages))
    passages = {n: text for n, (text, _) in found.items()}
    sections = {n: attributes["section"] for n, (_, attributes) in found.items() if "section" in attributes}
    if not passages:
        raise ValueError("local/finance-sentiment needs a prompt with numbered <passage> tags (sentiment.vN)")
    if call.embedder is None:
        raise ValueError("local/finance-sentiment needs the caller's embedder (rag.llm passes it)")
    return json.dumps(verdict(_classifier(call.embedder), passages, sections))


def register_models(register: Callable[[RegisteredModel], None]) -> None:
    register(RegisteredModel(
        name=MODEL_NAME, tasks=frozenset({"sentiment"}), handler=handle,
        description="Offline sentence classifier trained on Financial PhraseBank (non-commercial; not a language "
        "model).", version=weights_version))


@lru_cache(maxsize=1)
def weights_version() -> str:
    return f"{load_head().card.get('version')}:{head_hash()}"
