"""Scores against a baseline (the ticker's own history, the corpus or sector percentile, the trend) through the
library, the CLI and HTTP; and the sentiment benchmarks' data: the earnings gold set and FiQA."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.evaluation import earnings_sentiment, fiqa
from rag.library import Library
from rag.models import Document
from rag.sentiment.relative import percentile, period_key, relative, trend
from rag.sentiment.scoring import DocumentSentiment, label_for
from rag.settings import PROJECT_ROOT
from tests.conftest import client_for


def scored(doc_id: str, score: float, period: str | None = None, date: str | None = None,
           sector: str | None = None) -> DocumentSentiment:
    return DocumentSentiment(doc_id=doc_id, title=doc_id, tickers=["X"], date=date, period=period, sector=sector,
                             content_hash="h", score=score, label=label_for(score), confidence=0.8, evidence=[],
                             rationale="", model="m", offline_provider=True, prompt="p", prompt_hash="ph",
                             scorer_version="2", created_at="2026-01-01T00:00:00+00:00")


def test_periods_sort_in_time() -> None:
    keys = [period_key(None, "FY2021"), period_key(None, "Q3 FY2020"), period_key(None, "H1 2021"),
            period_key("2021-02-10", None), period_key(None, None), period_key(None, "Q1 2021")]
    assert sorted(keys) == [keys[4], keys[1], keys[3], keys[5], keys[2], keys[0]]


def test_relative_to_own_history_and_peers() -> None:
    history = [scored("q1", 0.5, "Q1 2021"), scored("q3", 0.1, "Q3 2021"), scored("q2", 0.3, "Q2 2021")]
    peers = [*history, scored("other-a", 0.2), scored("other-b", 0.6), scored("other-c", -0.4)]
    r = relative(history[1], history, peers)
    assert (r.previous_doc_id, r.previous_score, r.change_vs_previous) == ("q2", 0.3, pytest.approx(-0.2))
    assert r.own_mean == pytest.approx(0.4) and r.vs_own_mean == pytest.approx(-0.3) and r.own_documents == 2
    assert r.peers == 6 and r.percentile == pytest.approx(100 * 1.5 / 6, abs=0.1)  # above -0.4, tied with itself
    first = relative(history[0], history, peers)
    assert first.previous_doc_id is None and first.change_vs_previous is None and first.own_documents == 0
    assert percentile(0.2, [0.2, 0.2]) == 50.0
    points = trend(history, peers)
    assert [p.doc_id for p in points] == ["q1", "q2", "q3"]
    assert [p.change for p in points] == [None, pytest.approx(-0.2), pytest.approx(-0.2)]


def test_sector_baseline_compares_within_the_sector() -> None:
    target = scored("t", 0.3, sector="Energy")
    peers = [target, scored("e", 0.5, sector="Energy"), scored("b", -0.5, sector="Banks")]
    r = relative(target, [target], peers, baseline="sector")
    assert r.peer_group == "sector:Energy" and r.peers == 2 and r.percentile == 25.0
    with pytest.raises(ValueError, match="no sector"):
        relative(scored("n", 0.1), [], peers, baseline="sector")


GOOD = ("Revenue rose 25% to a record $80 million and operating margin expanded 300 basis points. Net income doubled "
        "and we raised our full-year outlook. Orders grew strongly in every region.")
BAD = ("Revenue fell 30% and we swung to a net loss. Gross margin contracted 400 basis points. We withdrew our "
       "outlook and orders declined sharply in every region.")


@pytest.fixture
def quarters(tmp_path: Path, embedder) -> Library:
    """Three quarters of ACME (two good, then a bad one) and one call of another company in the same sector."""
    from tests.conftest import make_settings

    lib = Library(make_settings(tmp_path / "index"), embedder=embedder)
    docs = [Document(id=f"acme-{q}", text=text, title=f"Acme {q} 2021 call", tickers=["ACME"],
                     metadata={"quarter": f"{q} 2021", "sector": "Industrials"})
            for q, text in (("Q1", GOOD), ("Q2", GOOD), ("Q3", BAD))]
    docs.append(Document(id="peer-q3", text=GOOD, title="Peer Q3 2021 call", tickers=["PEER"],
                         metadata={"quarter": "Q3 2021", "sector": "Industrials"}))
    assert lib.add_documents(docs).ok
    return lib


def test_ticker_rollup_shows_change_percentile_and_trend(quarters: Library) -> None:
    asyncio.run(quarters.aticker_sentiment("PEER"))  # scored first, so it is a peer
    rolled = asyncio.run(quarters.aticker_sentiment("acme"))
    r = rolled.relative
    assert r is not None and r.doc_id == "acme-Q3" and r.previous_doc_id == "acme-Q2"
    assert r.score < 0 < r.previous_score and r.change_vs_previous == pytest.approx(r.score - r.previous_score)
    assert r.peers == 4 and r.percentile == 12.5  # the lowest of four
    assert [p.doc_id for p in rolled.trend] == ["acme-Q1", "acme-Q2", "acme-Q3"]
    assert rolled.trend[-1].change is not None and rolled.trend[-1].change < 0
    sector = asyncio.run(quarters.aticker_sentiment("ACME", baseline="sector"))
    assert sector.relative is not None and sector.relative.peer_group == "sector:Industrials"

    with client_for(quarters) as http:
        body = http.get("/v1/sentiment", params={"ticker": "ACME", "baseline": "sector"}).json()
        assert body["relative"]["previous_doc_id"] == "acme-Q2" and len(body["trend"]) == 3
        bad = http.get("/v1/sentiment", params={"ticker": "ACME", "baseline": "galaxy"})
        assert bad.status_code == 422 and "baseline" in bad.json()["error"]["message"]

    index = str(quarters.settings.index_dir)
    shown = CliRunner().invoke(app, ["sentiment", "ACME", "--index", index])
    assert shown.exit_code == 0, shown.output
    assert "vs its previous document (acme-Q2" in shown.output and "percentile" in shown.output
    history = CliRunner().invoke(app, ["sentiment", "ACME", "--history", "--index", index])
    assert history.exit_code == 0 and "trend" in history.output
    assert history.output.index("Q1 2021") < history.output.index("Q3 2021")
    wrong = CliRunner().invoke(app, ["sentiment", "ACME", "--baseline", "galaxy", "--index", index])
    assert wrong.exit_code == 2


def test_earnings_gold_set_is_labelled_with_verbatim_quotes() -> None:
    gold = earnings_sentiment.load()
    calls = {json.loads(line)["id"]: json.loads(line) for line in
             (PROJECT_ROOT / gold.documents).open(encoding="utf-8")}
    assert len(gold.items) >= 30 and len({i.doc for i in gold.items}) == len(gold.items)
    for item in gold.items:
        assert all(q in calls[item.doc]["text"] for q in item.quotes), item.doc
        assert item.ticker in calls[item.doc]["tickers"]
    for split in ("dev", "test"):
        labels = {i.label for i in gold.items if i.split == split}
        assert {"good", "bad"} <= labels, split
    assert earnings_sentiment.GE_Q1_2020 in {i.doc for i in gold.items}


def test_separation_metrics() -> None:
    found = earnings_sentiment.separation([0.5, 0.3, -0.2, 0.35, 0.05], ["good", "good", "bad", "bad", "mixed"])
    assert found["bad_below_all_good"] == 1 and found["bad_calls"] == 2
    assert found["share_below_0.10"] == 0.4 and 0 < found["spearman"] < 1


def test_fiqa_data_and_metrics() -> None:
    rows = fiqa.load()
    assert sum(r.source == "headlines" for r in rows) == 436 and sum(r.source == "posts" for r in rows) == 675
    assert all(-1 <= r.gold <= 1 for r in rows)
    perfect = fiqa.agreement([-0.5, 0.05, 0.4], [-0.5, 0.05, 0.4])
    assert perfect == {"pearson": 1.0, "spearman": 1.0, "mse": 0.0, "accuracy_3class": 1.0}
    assert fiqa.agreement([-0.5, 0.4], [0.0, 0.0])["pearson"] == 0.0  # constant prediction: no correlation
    assert [fiqa.three_class(s) for s in (-0.3, 0.05, -0.09, 0.1)] == [-1, 0, 0, 1]
    low, high = fiqa.lexicon_scores(["Profits collapse, shares plunge on fraud probe", "Great results, strong gains"])
    assert low < 0 < high
