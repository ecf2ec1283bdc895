"""Sentiment: the offline classifier, model-output validation, the journal (cache, history, resume after a
SIGKILL), retries on 429, the CLI export and the HTTP endpoints."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import litellm
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag.cli import app as cli_app
from rag.errors import ConfigError, MalformedOutputError
from rag.library import Library
from rag.models import Document
from rag.providers.finance_sentiment import FinanceSentimentClassifier, load_head
from rag.sentiment.batch import RescoreRequest
from rag.sentiment.scoring import DocumentSentiment, label_for, parse_verdict, rollup
from rag.settings import PROJECT_ROOT, LLMSettings, SentimentSettings, TaskLLMSettings
from tests.conftest import AUTH, SEED_MAP, SEED_NOTE, client_for
from tests.fakes import Status, fake_openai_server, scripted_provider

VERDICT = '{"score": -0.4, "confidence": 0.7, "evidence": [1, 2], "rationale": "margins fell"}'
NEWS = [
    ("acme-up", "ACME", "Acme's quarterly revenue rose 12% and operating margin expanded to a record 21%. "
                        "Management raised its full-year guidance."),
    ("acme-down", "ACME", "Acme swung to a net loss as sales fell 9%. The company cut its dividend and warned "
                          "that orders would decline further."),
    ("bolt-1", "BOLT", "Bolt Corp. said net sales increased by 8% to EUR 155 million and profit rose."),
    ("bolt-2", "BOLT", "Bolt Corp. reported operating profit of EUR 3 million, down from EUR 9 million."),
    ("bolt-3", "BOLT", "Bolt Corp. will hold its annual general meeting in Helsinki on 4 April."),
    ("cody-1", "CODY", "Cody Inc. won a five-year contract worth $40 million from a large utility."),
]


def fast_retries(lib: Library) -> Library:
    """The same index with millisecond backoff, so retry tests do not sleep."""
    settings = lib.settings.model_copy(update={"sentiment": SentimentSettings(backoff_seconds=0.001,
                                                                              max_backoff_seconds=0.01)})
    return Library(settings, embedder=lib.embedder)


@pytest.fixture
def corpus(seeded_copy: Library) -> Library:
    """The seeds plus six short news items over three more tickers."""
    docs = [Document(id=i, text=text, title=text[:40], tickers=[t], doc_type="news") for i, t, text in NEWS]
    assert seeded_copy.add_documents(docs).ok
    return fast_retries(seeded_copy)


# ---- pure pieces -------------------------------------------------------------------------------------------
def test_label_bands() -> None:
    assert label_for(0.62) == "moderately positive"  # the seed note's own score and label
    assert [label_for(s) for s in (-1, -0.5, -0.2, 0, 0.2, 0.5, 0.75, 1)] == [
        "very negative", "moderately negative", "slightly negative", "neutral", "slightly positive",
        "moderately positive", "very positive", "very positive"]


def test_parse_verdict_accepts_fenced_json_and_drops_unknown_evidence() -> None:
    verdict = parse_verdict('Here you go:\n```json\n{"score": 0.3, "confidence": 0.5, "evidence": [2, 9, 2], '
                            '"rationale": "ok", "extra": 1}\n```', n_passages=3)
    assert verdict.score == 0.3 and verdict.evidence == [2]


@pytest.mark.parametrize("raw", ["no json here", '{"score": 1.7, "confidence": 0.5, "evidence": [1]}',
                                 '{"score": 0.1, "confidence": 0.5, "evidence": [7]}', '{"score": "high"'])
def test_parse_verdict_rejects_malformed_output(raw: str) -> None:
    with pytest.raises(MalformedOutputError):
        parse_verdict(raw, n_passages=3)


def test_offline_classifier_reads_direction_of_change(embedder) -> None:
    classifier = FinanceSentimentClassifier(load_head(), embedder.embed_batch)
    probs = classifier.probabilities([
        "Operating profit rose to EUR 31.1 mn from EUR 17.1 mn a year earlier.",
        "Net sales decreased by 20% and the company swung to an operating loss.",
        "The annual general meeting will be held in Helsinki on 4 April.",
    ])
    assert list(probs.argmax(axis=1)) == [2, 0, 1]  # positive, negative, neutral
    assert probs.sum(axis=1) == pytest.approx([1, 1, 1])


def record(doc_id: str, score: float, date: str | None, confidence: float = 0.8,
           tickers: tuple[str, ...] = ("X",)) -> DocumentSentiment:
    return DocumentSentiment(doc_id=doc_id, title=doc_id, tickers=list(tickers), date=date, content_hash="h",
                             score=score, label=label_for(score), confidence=confidence, evidence=[], rationale="",
                             model="m", offline_provider=False, prompt="p", prompt_hash="ph", scorer_version="1",
                             created_at="2026-01-01T00:00:00+00:00")


def test_rollup_weights_recent_and_focused_documents_more() -> None:
    result = rollup("X", [record("new", 0.8, "2026-06-01"), record("old", -0.8, "2025-06-01"),
                          record("roundup", -0.8, "2026-06-01", tickers=("X", "Y", "Z", "W"))], half_life_days=180)
    weights = {c.doc_id: c.weight for c in result.documents}
    assert sum(weights.values()) == pytest.approx(1, abs=1e-3)
    assert weights["new"] > weights["roundup"] and weights["new"] > 3 * weights["old"]
    old, roundup = 0.5 ** (365 / 180), 1 / 4  # recency of a year-older document; focus of a 4-ticker one
    assert result.score == pytest.approx((0.8 - 0.8 * old - 0.8 * roundup) / (1 + old + roundup), abs=1e-3)
    assert result.documents[0].doc_id == "new"


# ---- offline scorer on the seeds ------------------------------------------------------------------------------
def test_seed_note_scored_offline_with_evidence_and_provenance(seeded_copy: Library) -> None:
    result = asyncio.run(seeded_copy.adocument_sentiment(SEED_NOTE))
    doc = seeded_copy.get_document(SEED_NOTE)
    assert -1 <= result.score <= 1 and result.label == label_for(result.score)
    assert 3 <= len(result.evidence) <= 5
    assert all(doc.text[c.start:c.end] == c.quote for c in result.evidence)
    assert result.model == "local/finance-sentiment" and result.offline_provider
    assert result.prompt == "sentiment.v1" and len(result.prompt_hash) == 16
    assert "phrasebank" in result.scorer_version and result.content_hash == doc.content_hash


def test_ticker_rollup_lists_contributing_documents(seeded_copy: Library) -> None:
    result = asyncio.run(seeded_copy.aticker_sentiment("calx"))
    assert result.ticker == "CALX" and {c.doc_id for c in result.documents} == {SEED_NOTE, SEED_MAP}
    assert result.score == pytest.approx(sum(c.weight * c.score for c in result.documents), abs=1e-3)


# ---- journal: cache, history, failures, resume ----------------------------------------------------------------
def test_rerun_with_nothing_changed_makes_no_model_calls(corpus: Library) -> None:
    with scripted_provider([VERDICT]) as fake:
        first = asyncio.run(corpus.prepare_rescore(RescoreRequest(model="fake/m", concurrency=4)).run())
        assert first.status == "done" and first.scored == 8 and len(fake.calls) == 8
        second = asyncio.run(corpus.prepare_rescore(RescoreRequest(model="fake/m")).run())
        assert second.cached == 8 and second.scored == 0 and len(fake.calls) == 8
        # A changed document is the only one rescored.
        corpus.add_text("Acme's revenue fell 30% and it lost two large customers.", doc_id="acme-up",
                        tickers=["ACME"])
        third = asyncio.run(corpus.prepare_rescore(RescoreRequest(model="fake/m")).run())
        assert third.scored == 1 and third.cached == 7 and len(fake.calls) == 9
    assert len(corpus.sentiment_history(doc_id="acme-up")) == 2  # the old version's score is kept


def test_other_prompt_keeps_history_and_exports_csv(corpus: Library, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(PROJECT_ROOT / "prompts", prompts)
    (prompts / "sentiment.v2.md").write_text((prompts / "sentiment.v1.md").read_text() + "\nBe brief.\n")
    lib = Library(corpus.settings.model_copy(update={"prompts_dir": prompts}), embedder=corpus.embedder)
    with scripted_provider([VERDICT]):
        for prompt in ("sentiment.v1", "sentiment.v2"):
            job = asyncio.run(lib.prepare_rescore(RescoreRequest(model="fake/m", prompt=prompt,
                                                                 filters={"tickers": ["BOLT"]})).run())
            assert job.total == 3 and job.scored == 3
    history = lib.sentiment_history(ticker="bolt")
    assert len(history) == 6 and len({h.prompt_hash for h in history}) == 2
    result = CliRunner().invoke(cli_app, ["sentiment", "BOLT", "--history", "--format", "csv",
                                          "--index", str(lib.settings.index_dir)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 6 and {r["prompt"] for r in rows} == {"sentiment.v1", "sentiment.v2"}
    assert all(r["evidence"] for r in rows)


def test_malformed_output_is_re_asked_then_recorded_as_failure(corpus: Library) -> None:
    with scripted_provider(["I think it is positive", "{broken", VERDICT]) as fake:
        result = asyncio.run(corpus.adocument_sentiment("bolt-1", model="fake/m"))
        assert result.score == -0.4 and len(fake.calls) == 3
        assert "not usable" in fake.calls[1][-1]["content"]  # the repair turn quotes the problem
    with scripted_provider(["still not json"]) as fake:
        job = asyncio.run(corpus.prepare_rescore(RescoreRequest(model="fake/bad", filters={"doc_ids": ["bolt-2"]}))
                          .run())
        assert job.failed == 1 and job.scored == 0 and len(fake.calls) == 3  # 1 + malformed_retries (2)
    status = corpus.job(job.id)
    assert status.failures and "after 3 tries" in status.failures[0]["error"]
    assert not [h for h in corpus.sentiment_history(doc_id="bolt-2") if h.model == "fake/bad"]  # no fake score


def test_rate_limit_then_success_is_retried_with_backoff(corpus: Library) -> None:
    limited = litellm.RateLimitError("slow down", llm_provider="fake", model="fake/m")
    with scripted_provider([limited, limited, VERDICT]) as fake:
        job = asyncio.run(corpus.prepare_rescore(RescoreRequest(model="fake/m", filters={"doc_ids": ["cody-1"]}))
                          .run())
    assert job.scored == 1 and job.failed == 0 and len(fake.calls) == 3


def test_non_retryable_error_fails_once_and_the_job_continues(corpus: Library) -> None:
    bad = litellm.BadRequestError("bad request", model="fake/m", llm_provider="fake")
    with scripted_provider([bad, VERDICT]) as fake:
        job = asyncio.run(corpus.prepare_rescore(RescoreRequest(model="fake/m", concurrency=1,
                                                                filters={"tickers": ["ACME"]})).run())
    assert job.failed == 1 and job.scored == 1 and len(fake.calls) == 2


def test_config_error_stops_the_job_instead_of_failing_every_document(corpus: Library) -> None:
    denied = litellm.AuthenticationError("Invalid API Key", llm_provider="fake", model="fake/m")
    with scripted_provider([denied, VERDICT]) as fake:
        run = corpus.prepare_rescore(RescoreRequest(model="fake/m", concurrency=1))
        with pytest.raises(ConfigError, match="Hint: "):
            asyncio.run(run.run())
    assert len(fake.calls) == 1  # not retried, and no other document tried
    assert corpus.job(run.job.id).status == "failed"


def test_sentiment_has_its_own_server_and_repairs_malformed_json_over_http(corpus: Library) -> None:
    """Issue 13, item 4: sentiment borrowed the answer model's api_base/api_key."""
    with fake_openai_server("Revenue was $206 million [1].") as (answer_base, answers), \
            fake_openai_server(["I think it is positive", Status(429), VERDICT]) as (sentiment_base, scores):
        scorer = TaskLLMSettings(model="openai/scorer", api_base=sentiment_base, api_key="s")
        llm_settings = LLMSettings(model="openai/answerer", api_base=answer_base, api_key="a", sentiment=scorer)
        lib = Library(corpus.settings.model_copy(update={"llm": llm_settings}), embedder=corpus.embedder)
        scored = asyncio.run(lib.adocument_sentiment("bolt-1"))
    assert scored.model == "openai/scorer" and scored.score == -0.4 and answers == []
    assert [r["model"] for r in scores] == ["scorer"] * 3 and scores[0].authorization == "Bearer s"
    assert "not usable" in scores[1]["messages"][-1]["content"]  # the repair turn, retried after the 429


@pytest.mark.slow
def test_killed_rescore_resumes_without_redoing_or_duplicating(corpus: Library) -> None:
    store = corpus.sentiment.store

    def done() -> int:
        return sum(h.model == "slow/model" for h in store.history())
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    child = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "tests" / "rescore_child.py"),
                              str(corpus.settings.index_dir)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        job_id = child.stdout.readline().strip()
        deadline = time.time() + 120
        while done() < 3:
            assert time.time() < deadline and child.poll() is None, "child finished or hung before the kill"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
    done_before = done()
    assert 3 <= done_before < 8
    assert corpus.job(job_id).status == "interrupted"
    with scripted_provider(['{"score": 0.5, "confidence": 0.8, "evidence": [1], "rationale": "steady"}'],
                           names=("slow/model",)) as fake:
        job = asyncio.run(corpus.prepare_rescore(RescoreRequest(model="slow/model")).run())
    assert job.cached == done_before and job.scored == 8 - done_before == len(fake.calls)
    history = [h for h in corpus.sentiment_history() if h.model == "slow/model"]
    assert len(history) == 8 and len({h.doc_id for h in history}) == 8


# ---- HTTP -----------------------------------------------------------------------------------------------------
@pytest.fixture
def client(corpus: Library):
    with client_for(corpus) as c:
        yield c


def test_http_ticker_and_document_sentiment(client: TestClient) -> None:
    r = client.get("/v1/sentiment", params={"ticker": "CALX"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ticker"] == "CALX" and len(body["documents"]) == 2 and -1 <= body["score"] <= 1
    r = client.get(f"/v1/documents/{SEED_NOTE}/sentiment")
    assert r.status_code == 200 and r.json()["evidence"] and r.json()["model"] == "local/finance-sentiment"
    history = client.get("/v1/sentiment/history", params={"ticker": "CALX"}).json()
    assert {h["doc_id"] for h in history} == {SEED_NOTE, SEED_MAP}  # the roll-up stored what it computed
    assert client.get("/v1/sentiment", params={"ticker": "NOPE"}).status_code == 404
    assert client.get("/v1/documents/nope/sentiment").status_code == 404
    assert client.get("/v1/sentiment").status_code == 422
    assert client.get("/v1/sentiment/history").status_code == 400


def test_http_rescore_job_needs_a_key_and_reports_progress(client: TestClient) -> None:
    assert client.post("/v1/rescore", json={}).status_code == 401
    assert client.post("/v1/rescore", json={"concurrency": 0}, headers=AUTH).status_code == 422
    r = client.post("/v1/rescore", json={"filters": {"tickers": ["BOLT", "ACME"]}}, headers=AUTH)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.time() + 60
    while (status := client.get(f"/v1/jobs/{job_id}").json())["status"] == "running":
        assert time.time() < deadline
        time.sleep(0.1)
    assert status["status"] == "done" and status["total"] == 5 and status["scored"] == 5
    assert client.get("/v1/jobs/job-nope").status_code == 404


def test_journal_schema_is_versioned_and_old_records_migrate(tmp_path: Path) -> None:
    """A v1 journal (before the offline flag was renamed) opens as the current version with its scores intact."""
    import sqlite3

    from rag.sentiment.store import _V1, SCHEMA_VERSION, SentimentStore

    path = tmp_path / "sentiment.sqlite"
    old = sqlite3.connect(path)
    old.executescript(_V1)
    record = {"doc_id": "d", "title": "t", "tickers": ["X"], "date": None, "content_hash": "h", "score": 0.5,
              "label": "moderately positive", "confidence": 0.7, "evidence": [], "rationale": "r",
              "model": "local/finance-sentiment", "local_scorer": True, "prompt": "sentiment.v1", "prompt_hash": "p",
              "scorer_version": "1", "created_at": "2026-01-01T00:00:00+00:00", "job_id": None}
    old.execute("INSERT INTO scores (doc_id, content_hash, model, prompt, prompt_hash, scorer_version, tickers, "
                "score, created_at, record) VALUES ('d','h','local/finance-sentiment','sentiment.v1','p','1','[\"X\"]',"
                "0.5,'2026-01-01',?)", (json.dumps(record),))
    old.commit()
    old.close()
    store = SentimentStore(path)
    assert store.schema_version() == SCHEMA_VERSION == 3
    [migrated] = store.history(doc_id="d")
    assert migrated.offline_provider is True and migrated.score == 0.5
    assert migrated.period is None and migrated.sector is None  # fields added after v1 read as unknown
    # v3's index serves the peer lookup of one scorer
    assert [s.doc_id for s in store.scores_by("local/finance-sentiment", "p", "1")] == ["d"]
    assert store.scores_by("local/finance-sentiment", "p", "2") == []
    store.close()
    assert SentimentStore(path).schema_version() == SCHEMA_VERSION  # reopening runs nothing twice
