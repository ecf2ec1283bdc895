"""The eval harness: gold file validity, judging, the threshold gate, and `rag eval` exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.errors import BadInputError
from rag.evaluation import earnings, financebench, phrasebank
from rag.evaluation.gate import run_gate
from rag.evaluation.gold import GoldItem, load_suite
from rag.evaluation.metrics import wilson_interval
from rag.evaluation.report import check_thresholds, load_thresholds, markdown
from rag.evaluation.runner import spread
from rag.evaluation.seeds import run
from rag.library import Library
from rag.providers import registry
from rag.providers.registry import LocalCall, RegisteredModel
from rag.qa import run_sync
from rag.settings import PROJECT_ROOT, LLMSettings, TaskLLMSettings
from tests.conftest import SEED_NOTE, SEEDS
from tests.test_sentiment import fast_retries


def test_gold_suite_is_complete() -> None:
    suite = load_suite(PROJECT_ROOT / "eval" / "gold" / "seeds.yaml")
    assert len(suite.items) >= 40 and len({i.id for i in suite.items}) == len(suite.items)
    assert sum(i.abstain for i in suite.items) >= 5
    seed_ids = {p.name.removesuffix(".txt") for p in SEEDS.glob("*.txt")}
    for item in suite.items:
        if not item.abstain:
            text = (SEEDS / f"{item.doc}.txt").read_text()
            assert item.doc in seed_ids and item.evidence in text, item.id
            assert all(item.fact_matches(text)), f"{item.id}: a fact is not in its document"


def test_answerable_item_needs_facts() -> None:
    with pytest.raises(ValidationError):
        GoldItem(id="x", question="q")


def test_threshold_gate() -> None:
    bounds = {"a": {"min": 0.9}, "b": {"max": 100}, "c": {"min": 0.1}}
    assert check_thresholds({"a": 0.95, "b": 50, "c": 0.2}, bounds) == []
    failures = check_thresholds({"a": 0.5, "b": 150}, bounds)
    assert len(failures) == 3 and "c: not measured" in failures


def test_seed_suite_on_a_small_subset(seeded_copy: Library) -> None:
    suite = load_suite(PROJECT_ROOT / "eval" / "gold" / "seeds.yaml")
    subset = suite.model_copy(update={"items": [i for i in suite.items if i.id in {"rev-q4", "smartmdu", "ceo"}]})
    report = run(seeded_copy, subset)  # a copy: the suite stores sentiment scores in the index folder
    assert report["metrics"]["fact_accuracy"] == 1.0 and report["metrics"]["abstention_recall"] == 1.0
    assert set(report["retrieval"]) == {"bm25", "dense", "hybrid"}
    assert all(r["ok"] for r in report["results"] if not r["id"].startswith("sentiment-"))
    # The note's own score is 0.62 (moderately positive); the offline scorer lands near it (gated, see thresholds.yaml)
    assert report["metrics"]["sentiment_mae"] <= 0.10 and report["metrics"]["sentiment_label_accuracy"] == 1.0


@pytest.mark.slow
def test_rag_eval_fails_when_a_threshold_is_not_met(tmp_path: Path) -> None:
    strict = tmp_path / "thresholds.yaml"
    strict.write_text("seeds:\n  fact_accuracy: {min: 1.01}\n")
    res = subprocess.run([sys.executable, "-m", "rag", "eval", "--suite", "seeds", "--out", str(tmp_path / "r"),
                          "--thresholds", str(strict)], capture_output=True, text=True, env=os.environ.copy())
    assert res.returncode == 1 and "fact_accuracy" in res.stderr
    report = json.loads((tmp_path / "r" / "seeds" / "report.json").read_text())
    assert report["questions"] >= 40 and "FAIL" in (tmp_path / "r" / "seeds" / "report.md").read_text()
    assert json.loads((tmp_path / "r" / "report.json").read_text())["failures"]
    assert "sentiment-000_1f0b45879ee6eeb9" in {r["id"] for r in report["results"]}


def test_unknown_suite_is_a_usage_error(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "rag", "eval", "--suite", "nope", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=os.environ.copy())
    assert res.returncode == 2
    assert "available: seeds, earnings, phrasebank, fiqa, earnings-sentiment, financebench" in res.stderr


def test_wilson_interval_matches_published_values() -> None:
    """Reference values from Newcombe (1998), table I: 0/10 -> 0-0.2775, 5/10 -> 0.2366-0.7634 (continuity-free
    score method)."""
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(73, 102)
    assert low < 73 / 102 < high and high - low == pytest.approx(0.17, abs=0.01)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_spread_takes_items_evenly_over_the_list() -> None:
    assert spread(list(range(10)), 4) == [0, 2, 5, 7]
    assert spread(list(range(3)), 5) == [0, 1, 2] and spread(list(range(3)), None) == [0, 1, 2]


def test_a_subset_run_is_deterministic_and_says_so(seeded_copy: Library, tmp_path: Path) -> None:
    """`rag eval --suite earnings --split test --limit 4` (for slow local models): only test items, the same ones
    every run, no dev metrics measured over nothing, and the report says it is a subset."""
    thresholds = PROJECT_ROOT / "eval" / "thresholds.yaml"
    index = seeded_copy.settings.index_dir
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        run_gate("earnings", seeded_copy.settings, None, out, thresholds, None, index, limit=4, split="test")
    first, second = (json.loads((out / "earnings" / "report.json").read_text()) for out in runs)
    total = len(earnings.load().items)
    assert [r["id"] for r in first["results"]] == [r["id"] for r in second["results"]]
    assert first["subset"] == {"items": 4, "of": total, "split": "test", "limit": 4}
    assert {r["split"] for r in first["results"]} == {"test"} and first["metrics"]["test_items"] == 4.0
    assert not any(name.startswith(("dev_", "retrieval_dev_")) for name in first["metrics"])
    answerable = [r["ok"] for r in first["results"] if not r["should_abstain"]]
    metrics = first["metrics"]  # the fact accuracy of a few items carries its (wide) Wilson interval
    assert (metrics["test_fact_accuracy_low95"], metrics["test_fact_accuracy_high95"]) == wilson_interval(
        sum(answerable), len(answerable))
    assert f"**Subset**: 4 of {total} items (split test, limit 4" in (runs[0] / "earnings" / "report.md").read_text()
    with pytest.raises(BadInputError, match="earnings and financebench suites only"):
        run_gate("seeds", seeded_copy.settings, None, tmp_path, thresholds, None, index, split="test")
    with pytest.raises(BadInputError, match="--limit"):
        run_gate("all", seeded_copy.settings, None, tmp_path, thresholds, None, index, limit=3)


def test_phrasebank_split_is_deterministic_and_disjoint() -> None:
    rows = phrasebank.load()
    assert len(rows) > 4800 and sum(r.all_agree for r in rows) > 2200
    by_split = {s: {r.text for r in rows if r.split == s} for s in ("train", "dev", "test")}
    assert not (by_split["train"] & by_split["test"]) and not (by_split["dev"] & by_split["test"])
    assert 0.15 < len(by_split["test"]) / len(rows) < 0.25
    assert all(phrasebank.split_of(r.text) == r.split for r in rows[:50])
    assert phrasebank.macro_f1(["positive", "negative"], ["positive", "neutral"]) == pytest.approx(1 / 3)


def test_financebench_loads_pages_and_matches_figures() -> None:
    pages, questions = financebench.load()
    assert len(questions) == 150 and len(pages) == 168
    assert all(set(q.pages) <= {p.id for p in pages} for q in questions)
    # Split like the earnings suite, by the same hash of the question: tune on dev, gate on test. The count pins
    # the hash: a change of split would move questions between tuning and gating.
    assert [q.split for q in questions].count("dev") == 73
    assert financebench.figure_match("$1577.00", "Capital expenditure was $1,577 million [1].")
    assert financebench.figure_match("$1577.00", "It was 1,600 [1].") is False
    assert financebench.figure_match("No, it is not capital-intensive.", "anything") is None


def test_financebench_measures_no_figure_match_without_a_figure_question() -> None:
    row = {"figure_match": None, "gold_page_cited": True, "abstained": False}
    metrics = financebench._answer_metrics([row])
    assert "figure_match" not in metrics and "figure_match_cited" not in metrics  # not measured, so not 0.0
    assert metrics["gold_page_cited"] == 1.0
    assert financebench._answer_metrics([row, {**row, "figure_match": True}])["figure_match_cited"] == 1.0


def test_financebench_suite_on_a_small_subset(empty_library: Library) -> None:
    pages, questions = financebench.load()
    subset = questions[:4]
    wanted = {pid for q in subset for pid in q.pages}
    assert empty_library.add_documents([p for p in pages if p.id in wanted]).ok
    report = financebench.run(empty_library, subset)
    splits = {q.split for q in subset}
    assert report["questions"] == 4 and set(report["retrieval"]) == {f"{s}_{m}" for s in splits
                                                                      for m in ("bm25", "dense", "hybrid")}
    # With only the gold pages indexed, every question finds one of its pages.
    assert all(report["metrics"][f"retrieval_{s}_hybrid_recall@5"] == 1.0 for s in splits)


def _flaky_model(call: LocalCall) -> str:
    """Answers without citations, fails on revenue questions, returns no JSON for sentiment."""
    if call.task == "sentiment":
        return "I would say it is fairly positive overall."
    if "revenue" in call.messages[-1]["content"].split("<question>")[-1].lower():
        raise RuntimeError("upstream down")
    return "Calix pays a generous dividend every quarter."


@pytest.fixture
def flaky_model():
    registry.register(RegisteredModel(name="fake/flaky", tasks=frozenset(registry.TASKS), handler=_flaky_model,
                                      offline=False))
    yield "fake/flaky"
    registry.unregister("fake/flaky")


def test_failed_items_are_recorded_and_uncited_answers_are_ungrounded(seeded_copy: Library, flaky_model: str) -> None:
    suite = load_suite(PROJECT_ROOT / "eval" / "gold" / "seeds.yaml")
    subset = suite.model_copy(update={"items": [i for i in suite.items if i.id in {"rev-q4", "smartmdu", "ceo"}]})
    report = run(fast_retries(seeded_copy), subset, model=flaky_model)
    results = {r["id"]: r for r in report["results"]}
    assert results["rev-q4"]["error"].startswith("ProviderError") and not results["rev-q4"]["ok"]
    assert results["smartmdu"]["uncited"] == ["Calix pays a generous dividend every quarter."]
    metrics = report["metrics"]
    assert metrics["failed_items"] == 1 and metrics["grounding"] == 0.0 and metrics["citation_precision"] == 0.0
    assert metrics["fact_accuracy"] == 0.0 and metrics["abstention_recall"] == 0.0
    # The sentiment model's malformed output is a recorded failure too; its metrics stay unmeasured (gate fails).
    assert metrics["sentiment_failures"] == 1 and "sentiment_mae" not in metrics
    assert "no JSON object in the model output" in results[f"sentiment-{SEED_NOTE}"]["error"]
    assert "error: ProviderError" in markdown({**report, "model": flaky_model}, {}, [])


class _BuggyLibrary(Library):
    """A bug in our own pipeline (not a provider failure) on one question."""

    def ask(self, question: str, *args: object, **kwargs: object):  # noqa: ANN201  # Library.ask's Answer
        if "SmartMDU" in question:
            raise RuntimeError("cannot reuse already awaited coroutine")
        return super().ask(question, *args, **kwargs)


def test_an_unexpected_error_on_one_item_is_a_failed_row_not_a_crash(seeded: Library) -> None:
    suite = load_suite(PROJECT_ROOT / "eval" / "gold" / "seeds.yaml")
    subset = suite.model_copy(update={"items": [i for i in suite.items if i.id in {"rev-q4", "smartmdu"}]})
    report = run(_BuggyLibrary(seeded.settings, embedder=seeded.embedder), subset)
    results = {r["id"]: r for r in report["results"]}
    assert results["rev-q4"]["ok"] and not results["smartmdu"]["ok"]
    assert results["smartmdu"]["error"] == "unexpected RuntimeError: cannot reuse already awaited coroutine"
    assert report["metrics"]["failed_items"] == 1
    assert check_thresholds(report["metrics"], {"failed_items": {"max": 0}}) == ["failed_items: 1.000 > max 0"]


def test_report_names_the_model_behind_every_metric(seeded_copy: Library, flaky_model: str, tmp_path: Path) -> None:
    settings = seeded_copy.settings.model_copy(update={"llm": LLMSettings(answer=TaskLLMSettings(model=flaky_model))})
    failures = run_gate("seeds", settings, None, tmp_path, PROJECT_ROOT / "eval" / "thresholds.yaml", None,
                        seeded_copy.settings.index_dir)
    report = json.loads((tmp_path / "seeds" / "report.json").read_text())
    assert report["models"]["answer"] == flaky_model and report["models"]["sentiment"] == "local/finance-sentiment"
    assert report["metric_models"]["fact_accuracy"] == flaky_model
    assert report["metric_models"]["sentiment_mae"] == "local/finance-sentiment"
    assert report["metric_models"]["retrieval_hybrid_mrr"].startswith("sentence-transformers/all-MiniLM-L6-v2")
    md = (tmp_path / "seeds" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| sentiment_mae |"))
    assert row.endswith("| local/finance-sentiment |")
    assert any(f.startswith("seeds: grounding") for f in failures)  # uncited answers fail the grounding gate
    summary = (tmp_path / "report.md").read_text()
    gate = load_thresholds(PROJECT_ROOT / "eval" / "thresholds.yaml")["seeds"]["fact_accuracy"]["min"]
    assert f"| seeds | fact_accuracy | 0.000 | >= {gate} | {flaky_model} |" in summary


def test_phrasebank_records_sentences_a_model_could_not_score(empty_library: Library, flaky_model: str) -> None:
    errors: dict[int, str] = {}
    labels = run_sync(phrasebank._model_labels(fast_retries(empty_library), flaky_model,
                                               ["Profit rose 5%.", "Sales fell."], errors))
    assert labels == [phrasebank.FAILED] * 2 and sorted(errors) == [0, 1]
    assert all("no JSON object" in e for e in errors.values())
