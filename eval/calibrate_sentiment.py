"""Fit the offline sentiment scorer's calibration (rag/data/finance_sentiment_calibration.json) on the PhraseBank
dev split, and write its reliability table (docs/sentiment_calibration.md).

    python eval/calibrate_sentiment.py

Two numbers are fitted, both on dev only (the head itself was trained on train; test, FiQA, the seeds and the
earnings sentiment gold set are never used):
- `direction_weight`: how far the metric-direction rule (rag/providers/metric_direction.py) moves a sentence's
  probabilities toward the class it implies, chosen by dev macro-F1 over a grid;
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
    Calibration,
    FinanceSentimentClassifier,
    calibrate,
    load_head,
)
from rag.providers.metric_direction import direction  # noqa: E402
from rag.settings import PROJECT_ROOT, Settings  # noqa: E402

use_offline_environment()
VERSION = "phrasebank-dev-calibration-v1"
DOC = PROJECT_ROOT / "docs" / "sentiment_calibration.md"
BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
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
    y, p, d = sets["dev"]
    print(f"dev {len(y)} sentences, the direction rule fires on {sum(map(bool, d))}")
    best_w, best_f1 = 0.0, -1.0
    for w in np.round(np.arange(0, 0.91, 0.1), 2):
        f1 = macro_f1(y, calibrate(p, d, Calibration(direction_weight=w, temperature=1.0, card={})).argmax(axis=1))
        print(f"  direction_weight {w:.1f}: dev macro-F1 {f1:.4f}")
        if f1 > best_f1 + 1e-9:
            best_w, best_f1 = float(w), f1
    best_t, best_nll = 1.0, float("inf")
    for t in np.round(np.arange(0.3, 2.51, 0.05), 2):
        loss = nll(y, calibrate(p, d, Calibration(direction_weight=best_w, temperature=t, card={})))
        if loss < best_nll:
            best_t, best_nll = float(t), loss
    print(f"chosen on dev: direction_weight {best_w}, temperature {best_t} (NLL {best_nll:.4f})")
    card: dict[str, object] = {
        "version": VERSION, "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": "Financial PhraseBank v1.0, dev split (sha256 bucket 70-79), 50%-agreement sentences",
        "license": "CC BY-NC-SA 3.0 (fitted on non-commercial data, like the head)",
        "never_used": "PhraseBank test, FiQA, the seeds, eval/gold/earnings_sentiment.yaml",
    }
    fitted = Calibration(direction_weight=best_w, temperature=best_t, card=card)
    tables = {}
    for name, (ys, ps, ds) in sets.items():
        before, ece_before = reliability(ys, ps)
        after, ece_after = reliability(ys, calibrate(ps, ds, fitted))
        pred = calibrate(ps, ds, fitted).argmax(axis=1)
        tables[name] = {"before": before, "ece_before": ece_before, "after": after, "ece_after": ece_after,
                        "accuracy": round(float((pred == ys).mean()), 4), "macro_f1": round(macro_f1(ys, pred), 4),
                        "accuracy_before": round(float((ps.argmax(axis=1) == ys).mean()), 4)}
    card["reliability"] = tables
    tmp = CALIBRATION_PATH.with_suffix(".tmp")
    tmp.write_text(fitted.model_dump_json(indent=1), encoding="utf-8")
    tmp.replace(CALIBRATION_PATH)
    lines = ["# Offline sentiment calibration (local/finance-sentiment)", "",
             "Written by `python eval/calibrate_sentiment.py`; fitted on the Financial PhraseBank **dev** split only "
             "(the head is trained on train; PhraseBank test is reported below, never fitted; FiQA, the seeds and "
             "the earnings sentiment gold set are never used).", "",
             f"- metric-direction rule weight (dev macro-F1 over a grid): **{best_w}**",
             f"- temperature (dev negative log-likelihood): **{best_t}**", "",
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
        lines.append("")
    DOC.write_text("\n".join(lines), encoding="utf-8")
    print(json.dumps({k: {m: v for m, v in t.items() if not isinstance(v, list)} for k, t in tables.items()}))


if __name__ == "__main__":
    main()
