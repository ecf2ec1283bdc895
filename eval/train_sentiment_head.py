"""Train the offline finance sentiment head (rag/data/finance_sentiment_head.json) on Financial PhraseBank.

    python eval/train_sentiment_head.py

Candidates are fitted on the train split, hyper-parameters are chosen by macro-F1 on the dev split, and the test
split is reported once for every candidate (a finance lexicon was measured separately, see README). The data is
CC BY-NC-SA 3.0, so the resulting head is non-commercial. Deterministic: same data, same weights."""

from __future__ import annotations

import itertools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.embedding.factory import make_embedder  # noqa: E402
from rag.evaluation import phrasebank  # noqa: E402
from rag.process import prepare_process  # noqa: E402
from rag.providers.finance_sentiment import CLASSES, HEAD_PATH, FinanceSentimentClassifier, HeadFile, LinearHead  # noqa: E402
from rag.settings import Settings  # noqa: E402

prepare_process()

VERSION = "phrasebank-lr-ensemble-v1"


def scores(y: np.ndarray, probs: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    pred = probs[mask].argmax(axis=1)
    return {"accuracy": round(float(accuracy_score(y[mask], pred)), 4),
            "macro_f1": round(float(f1_score(y[mask], pred, average="macro")), 4), "n": int(mask.sum())}


def head(model: LogisticRegression) -> LinearHead:
    return LinearHead(coef=np.round(model.coef_, 7).tolist(), intercept=np.round(model.intercept_, 7).tolist())


def main() -> None:
    rows = phrasebank.load()
    texts = [r.text for r in rows]
    y = np.array([CLASSES.index(r.label) for r in rows])
    split = np.array([r.split for r in rows])
    all_agree = np.array([r.all_agree for r in rows])
    train, dev, test = split == "train", split == "dev", split == "test"
    settings = Settings()
    embedder = make_embedder(settings.embedding)
    print(f"{len(rows)} sentences: train {train.sum()}, dev {dev.sum()}, test {test.sum()}; embedding ...")
    vectors = embedder.embed_batch(texts)

    best: tuple[float, dict, TfidfVectorizer, LogisticRegression, LogisticRegression] | None = None
    for ngram_max, c_tfidf, c_emb in itertools.product((1, 2), (3.0, 10.0), (1.0, 3.0, 10.0)):
        vec = TfidfVectorizer(ngram_range=(1, ngram_max), min_df=2, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        tf_train = vec.fit_transform([t for t, m in zip(texts, train, strict=True) if m])
        m_tfidf = LogisticRegression(C=c_tfidf, max_iter=5000, class_weight="balanced").fit(tf_train, y[train])
        m_emb = LogisticRegression(C=c_emb, max_iter=5000, class_weight="balanced").fit(vectors[train], y[train])
        probs = (m_tfidf.predict_proba(vec.transform(texts)) + m_emb.predict_proba(vectors)) / 2
        f1 = scores(y, probs, dev)["macro_f1"]
        params = {"ngram_max": ngram_max, "C_tfidf": c_tfidf, "C_embedding": c_emb}
        print(f"  dev macro-F1 {f1:.4f}  {params}")
        if best is None or f1 > best[0]:
            best = (f1, params, vec, m_tfidf, m_emb)
    assert best is not None
    _, params, vec, m_tfidf, m_emb = best

    tfidf_all = vec.transform(texts)
    candidates = {
        "tfidf-lr": m_tfidf.predict_proba(tfidf_all),
        "embedding-lr": m_emb.predict_proba(vectors),
        "ensemble (default)": (m_tfidf.predict_proba(tfidf_all) + m_emb.predict_proba(vectors)) / 2,
    }
    test_scores = {}
    print(f"\nchosen on dev: {params}\n")
    print("| candidate | test acc | test macro-F1 | AllAgree test acc | AllAgree macro-F1 |")
    print("|---|---|---|---|---|")
    for name, probs in candidates.items():
        whole, agree = scores(y, probs, test), scores(y, probs, test & all_agree)
        test_scores[name] = {"test": whole, "test_all_agree": agree}
        print(f"| {name} | {whole['accuracy']:.3f} | {whole['macro_f1']:.3f} | {agree['accuracy']:.3f} | "
              f"{agree['macro_f1']:.3f} |")

    vocabulary = {str(k): int(v) for k, v in vec.vocabulary_.items()}
    head_file = HeadFile(
        classes=list(CLASSES), embedding_model=settings.embedding.model_name, ngram_max=params["ngram_max"],
        vocabulary=dict(sorted(vocabulary.items(), key=lambda kv: kv[1])), idf=np.round(vec.idf_, 7).tolist(),
        tfidf_head=head(m_tfidf), embedding_head=head(m_emb),
        card={
            "version": VERSION, "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data": "Financial PhraseBank v1.0 (Malo et al. 2014), 50%-agreement sentences, train split",
            "license": "CC BY-NC-SA 3.0: trained on non-commercial data, so this head is for non-commercial use only",
            "split": "sha256(sentence) % 100: <70 train, <80 dev, rest test (rag/evaluation/phrasebank.py)",
            "params": params, "test_scores": test_scores,
        },
    )
    # The run-time numpy TF-IDF must reproduce scikit-learn's, or the reported scores would not hold.
    classifier = FinanceSentimentClassifier(head_file, embedder.embed_batch)  # uncalibrated: compared raw below
    sample = texts[:200]
    assert np.allclose(classifier.tfidf(sample), vec.transform(sample).toarray(), atol=1e-6)
    assert np.allclose(classifier.raw_probabilities(sample), candidates["ensemble (default)"][:200], atol=1e-4)
    HEAD_PATH.parent.mkdir(parents=True, exist_ok=True)
    tmp = HEAD_PATH.with_suffix(".tmp")
    tmp.write_text(head_file.model_dump_json(), encoding="utf-8")
    tmp.replace(HEAD_PATH)
    print(f"\nwrote {HEAD_PATH} ({HEAD_PATH.stat().st_size // 1024} KB)")
    print(json.dumps(test_scores["ensemble (default)"]))


if __name__ == "__main__":
    main()
