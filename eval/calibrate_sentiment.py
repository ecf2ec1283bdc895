"""Fit the offline sentiment scorer's calibration (rag/data/finance_sentiment_calibration.json) on the PhraseBank
dev split, and write its reliability table (docs/sentiment_calibration.md).

    python eval/calibrate_sentiment.py

Two numbers, from train and dev only (the head itself was trained on train; test, FiQA, the seeds and the earnings
sentiment gold set are never used):
- `direction_boost`: the metric-direction rule (rag/providers/metric_direction.py) is a second opinion on the
  sentences it fires on. Its precision `a` on the train split (labels only, no model) makes it a likelihood of
  a for the class it implies and (1-a)/2 for each other, so Bayes' rule multiplies the classifier's probability
  of that class by a / ((1-a)/2): boost = ln(2a / (1-a)). Nothing is searched, so nothing is tuned to examples;
- `temperature`: p^(1/T) renormalised, chosen by dev negative log-likelihood, so a sentence read as positive with
  probability 0.8 is right about 80% of the time.
The reliability table bins sentences by the calibrated probability of the predicted class and shows how often that
class was right, on dev (the fit) and on test (held out, reported only). Deterministic."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.embedding.factory import make_embedder  # noqa: E402
from rag.evaluation import phrasebank  # noqa: E402
from rag.offline import use_offline_environment  # noqa: E402
from rag.providers.finance_sentiment import (  # noqa: E402
    CALIBRATION_PATH,
    CLASSES,
    NEUTRAL_PRIOR,
    Calibration,
    FinanceSentimentClassifier,
    calibrate,
    load_head,
)
from rag.providers.metric_direction import direction  # noqa: E402
from rag.sentiment.scoring import label_for  # noqa: E402
from rag.settings import PROJECT_ROOT, Settings  # noqa: E402

use_offline_environment()
VERSION = "phrasebank-dev-calibration-v1"
DOC = PROJECT_ROOT / "docs" / "sentiment_calibration.md"
BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:  # numpy twin of phrasebank.macro_f1, over class indices
    return float(np.mean([2 * ((pred == c) & (y == c)).sum() / max(1, (pred == c).sum() + (y == c).sum())
                          for c in range(3)]))


def nll(y: np.ndarray, probs: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1))))


def reliability(y: np.ndarray, probs: np.ndarray) -> tuple[list[dict[str, float]], float]:
    """Per confidence bin: sentences, mean confidence, accuracy; and the expected calibration error."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    rows, ece = [], 0.0
    for lo, hi in zip(BINS, BINS[1:], strict=False):
        mask = (conf >= lo) & (conf < hi)
        if mask.any():
            acc, mean = float((pred[mask] == y[mask]).mean()), float(conf[mask].mean())
            rows.append({"bin": f"{lo:.1f}-{min(hi, 1.0):.1f}", "n": int(mask.sum()), "confidence": round(mean, 3),
                         "accuracy": round(acc, 3)})
            ece += mask.mean() * abs(acc - mean)
    return rows, round(float(ece), 4)


def pseudo_documents(y: np.ndarray, probs: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(raw scores, gold balances) of `n` pseudo-documents of 15 sentences each, drawn with class shares from a flat
    Dirichlet (so every mix from all-negative to all-positive occurs): the offline scorer's own formula
    sum(p_pos - p_neg) / (sum(p_pos + p_neg) + NEUTRAL_PRIOR), and the same formula over the gold labels."""
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y == c) for c in range(3)]
    scored, gold = [], []
    for _ in range(n):
        counts = rng.multinomial(15, rng.dirichlet(np.ones(3)))
        idx = np.concatenate([rng.choice(by_class[c], size=k) for c, k in enumerate(counts) if k])
        p = probs[idx]
        scored.append(float((p[:, 2] - p[:, 0]).sum() / ((p[:, 2] + p[:, 0]).sum() + NEUTRAL_PRIOR)))
        gold.append(float((counts[2] - counts[0]) / (counts[2] + counts[0] + NEUTRAL_PRIOR)))
    return np.asarray(scored), np.asarray(gold)


def fit_score_map(raw: np.ndarray, gold: np.ndarray) -> list[tuple[float, float]]:
    """A monotone map raw score -> gold balance (isotonic regression), kept as ~20 knots for np.interp."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=-1, y_max=1, increasing=True, out_of_bounds="clip").fit(raw, gold)
    xs = np.quantile(raw, np.linspace(0, 1, 21))
    knots = [(-1.0, float(iso.predict([-1.0])[0]))]
    knots += [(round(float(x), 4), round(float(iso.predict([x])[0]), 4)) for x in xs]
    knots.append((1.0, float(iso.predict([1.0])[0])))
    # np.interp needs increasing x: drop repeated quantiles
    return [k for i, k in enumerate(knots) if i == 0 or k[0] > knots[i - 1][0]]


def document_reliability(y: np.ndarray, probs: np.ndarray, calibration: Calibration,
                         seed: int = 17) -> list[dict[str, object]]:
    """Labels of documents, not sentences, on 400 pseudo-documents (`pseudo_documents`, another seed than the fit's):
    per score band (the label a user sees), documents, mean score, mean gold balance and how often the gold
    balance falls in the same band."""
    raw, gold = pseudo_documents(y, probs, 400, seed)
    scored = [calibration.document_score(float(r)) for r in raw]
    rows = []
    for label in dict.fromkeys(label_for(v) for v in sorted(scored)):
        members = [i for i, v in enumerate(scored) if label_for(v) == label]
        rows.append({"label": label, "n": len(members),
                     "mean_score": round(float(np.mean([scored[i] for i in members])), 3),
                     "mean_gold": round(float(np.mean([gold[i] for i in members])), 3),
                     "same_band": round(float(np.mean([label_for(gold[i]) == label for i in members])), 3)})
    return rows


def main() -> None:
    rows = phrasebank.load()
    dev = [r for r in rows if r.split == "dev"]
    test = [r for r in rows if r.split == "test"]
    embedder = make_embedder(Settings().embedding)
    raw = FinanceSentimentClassifier(load_head(), embedder.embed_batch)
    sets = {}
    for name, part in (("dev", dev), ("test", test)):
        texts = [r.text for r in part]
        sets[name] = (np.array([CLASSES.index(r.label) for r in part]), raw.raw_probabilities(texts),
                      [direction(t) for t in texts])
    train = [r for r in rows if r.split == "train"]
    fired = [(direction(r.text), r.label) for r in train]
    fired = [(sign, label) for sign, label in fired if sign]
    right = sum(label == ("positive" if sign > 0 else "negative") for sign, label in fired)
    precision = (right + 1) / (len(fired) + 2)  # Laplace: a rule right 30 of 30 times is not certain
    boost = round(float(np.log(2 * precision / (1 - precision))), 4)
    print(f"train: the direction rule fires on {len(fired)} of {len(train)} sentences, right {right} times "
          f"(precision {precision:.3f}) -> boost {boost}")
    y, p, d = sets["dev"]
    best_t, best_nll = 1.0, float("inf")
    for t in np.round(np.arange(0.3, 2.51, 0.05), 2):
        loss = nll(y, calibrate(p, d, Calibration(direction_boost=boost, temperature=t, card={})))
        if loss < best_nll:
            best_t, best_nll = float(t), loss
    print(f"chosen on dev: temperature {best_t} (NLL {best_nll:.4f})")
    card: dict[str, object] = {
        "version": VERSION, "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": "Financial PhraseBank v1.0, 50%-agreement sentences: train split (rule precision), dev split "
                "(sha256 bucket 70-79; temperature)",
        "direction_rule": {"fires_on_train": len(fired), "right": right, "precision": round(precision, 4)},
        "license": "CC BY-NC-SA 3.0 (fitted on non-commercial data, like the head)",
        "never_used": "PhraseBank test, FiQA, the seeds, eval/gold/earnings_sentiment.yaml",
    }
    fitted = Calibration(direction_boost=boost, temperature=best_t, card=card)
    # The document score: a monotone map from the raw balance to the labelled balance, on dev pseudo-documents.
    raw_dev, gold_dev = pseudo_documents(y, calibrate(p, d, fitted), 3000, seed=5)
    fitted.score_map = fit_score_map(raw_dev, gold_dev)
    identity = fitted.model_copy(update={"score_map": []})
    tables = {}
    for name, (ys, ps, ds) in sets.items():
        before, ece_before = reliability(ys, ps)
        after, ece_after = reliability(ys, calibrate(ps, ds, fitted))
        pred = calibrate(ps, ds, fitted).argmax(axis=1)
        tables[name] = {"before": before, "ece_before": ece_before, "after": after, "ece_after": ece_after,
                        "documents_before": document_reliability(ys, calibrate(ps, ds, identity), identity),
                        "documents_after": document_reliability(ys, calibrate(ps, ds, fitted), fitted),
                        "accuracy": round(float((pred == ys).mean()), 4), "macro_f1": round(macro_f1(ys, pred), 4),
                        "accuracy_before": round(float((ps.argmax(axis=1) == ys).mean()), 4)}
    card["reliability"] = tables
    tmp = CALIBRATION_PATH.with_suffix(".tmp")
    tmp.write_text(fitted.model_dump_json(indent=1), encoding="utf-8")
    tmp.replace(CALIBRATION_PATH)
    lines = ["# Offline sentiment calibration (local/finance-sentiment)", "",
             "Written by `python eval/calibrate_sentiment.py` from the Financial PhraseBank **train** and **dev** "
             "splits only (PhraseBank test is reported below, never fitted; FiQA, the seeds and the earnings "
             "sentiment gold set are never used).", "",
             f"- metric-direction rule (`rag/providers/metric_direction.py`): fires on {len(fired)} train sentences, "
             f"right {right} times (precision {precision:.3f}, Laplace-smoothed); combined with the classifier by "
             f"Bayes' rule as a log-odds boost of ln(2a/(1-a)) = **{boost}** for the class it implies",
             f"- temperature (dev negative log-likelihood): **{best_t}**",
             "- document score map: isotonic regression of the labelled balance on the scorer's balance over 3,000 "
             "pseudo-documents of dev sentences (knots in `rag/data/finance_sentiment_calibration.json`)", "",
             "Reliability: sentences binned by the probability of the class the scorer predicts (its confidence); "
             "a calibrated scorer's accuracy in each bin matches the bin's mean confidence. ECE = expected "
             "calibration error (the bins' |accuracy - confidence|, weighted by their share).", ""]
    for name in ("dev", "test"):
        t = tables[name]
        lines += [f"## {name} ({'fit' if name == 'dev' else 'held out'}): accuracy {t['accuracy_before']:.3f} -> "
                  f"{t['accuracy']:.3f}, ECE {t['ece_before']:.3f} -> {t['ece_after']:.3f}", "",
                  "| confidence bin | n (before) | confidence | accuracy | n (after) | confidence | accuracy |",
                  "|---|---|---|---|---|---|---|"]
        before = {r["bin"]: r for r in t["before"]}
        after = {r["bin"]: r for r in t["after"]}
        for b in sorted(set(before) | set(after)):
            x, z = before.get(b, {}), after.get(b, {})
            lines.append(f"| {b} | {x.get('n', 0)} | {x.get('confidence', '')} | {x.get('accuracy', '')} | "
                         f"{z.get('n', 0)} | {z.get('confidence', '')} | {z.get('accuracy', '')} |")
        for when in ("before", "after"):
            lines += ["", f"Document labels ({name}, {when} the score map; pseudo-documents, see "
                      "`document_reliability`):", "",
                      "| label (score band) | documents | mean score | mean gold balance | gold in the same band |",
                      "|---|---|---|---|---|"]
            lines += [f"| {r['label']} | {r['n']} | {r['mean_score']} | {r['mean_gold']} | {r['same_band']} |"
                      for r in t[f"documents_{when}"]]
        lines.append("")
    DOC.write_text("\n".join(lines), encoding="utf-8")
    print(json.dumps({k: {m: v for m, v in t.items() if not isinstance(v, list)} for k, t in tables.items()}))


if __name__ == "__main__":
    main()
