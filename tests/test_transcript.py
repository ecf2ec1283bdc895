"""Who says what before sentiment is scored: transcript sections with exact spans, the passages every model
receives, section weights in the offline scorer, and the metric-direction rule with its calibration."""

from __future__ import annotations

import json

import pytest

from rag.models import Document
from rag.providers.finance_sentiment import (
    FinanceSentimentClassifier,
    load_calibration,
    load_head,
    verdict,
)
from rag.providers.metric_direction import direction
from rag.sentiment.scoring import document_passages
from rag.settings import PROJECT_ROOT
from rag.transcript import SECTION_WEIGHTS, segments

PREPARED = (
    "Thanks, Jane. The first quarter was a difficult one for Acme. Revenue fell 30% to $40 million as our largest "
    "customers cut orders. We swung to a net loss of $5 million, compared with net income of $8 million a year ago. "
    "Gross margin contracted 400 basis points because of lower volumes. Free cash flow was negative $12 million. "
    "Given the uncertainty, we have withdrawn our full-year outlook and we are cutting costs across the business.")
CALL = (
    "Speaker 0: Good morning, ladies and gentlemen, and welcome to the Acme first quarter 2021 earnings call. At this "
    "time all participants are in a listen-only mode. I would now like to turn the call over to Jane Roe. Please go "
    "ahead.\n\n"
    "Speaker 1: Thank you, operator. Today's remarks include forward-looking statements that involve risks and "
    "uncertainties. Actual results may differ materially from those statements.\n\n"
    f"Speaker 2: {PREPARED}\n\n"
    "Speaker 0: Thank you. We will now begin the question-and-answer session. Our first question comes from John "
    "Smith with Big Bank. Please go ahead.\n\n"
    "Speaker 3: Congratulations on a great quarter, guys. Can you talk about demand in Europe?\n\n"
    "Speaker 2: Thanks, John. Demand in Europe declined sharply and orders were down 25%.\n\n"
    "Speaker 0: This concludes today's conference call. You may now disconnect.")


def sections_of(text: str) -> dict[str, str]:
    """Each segment's text -> its section."""
    return {text[s.start:s.end]: s.section for s in segments(text)}


def test_transcript_sections_and_exact_spans() -> None:
    found = segments(CALL)
    by_text = sections_of(CALL)
    assert by_text["Congratulations on a great quarter, guys. Can you talk about demand in Europe?"] == "question"
    assert by_text["Demand in Europe declined sharply and orders were down 25%."] == "answer"
    assert by_text["Thanks, John."] == "courtesy" and by_text["Thank you, operator."] == "courtesy"
    assert by_text[PREPARED.removeprefix("Thanks, Jane. ")] == "prepared"
    assert {s.section for s in found if s.speaker == 0} == {"operator"}
    assert [s.section for s in found if s.speaker == 1] == ["courtesy", "safe_harbour"]
    # every segment is a span of the text, in order, never overlapping, never holding a speaker label
    assert all(0 <= a.start < a.end <= b.start for a, b in zip(found, found[1:], strict=False))
    assert not any("Speaker" in CALL[s.start:s.end] for s in found)
    assert SECTION_WEIGHTS["question"] == SECTION_WEIGHTS["operator"] == SECTION_WEIGHTS["safe_harbour"] == 0


def test_other_documents_are_the_authors_body() -> None:
    text = "Calix grew revenue 20%. This report contains forward-looking statements."
    assert sections_of(text) == {"Calix grew revenue 20%.": "body",
                                 "This report contains forward-looking statements.": "safe_harbour"}


def test_a_real_call_has_every_part() -> None:
    line = next(line for line in (PROJECT_ROOT / "eval/data/earnings/calls.jsonl").open(encoding="utf-8")
                if '"e21-4341191"' in line)
    text = json.loads(line)["text"]
    share: dict[str, int] = {}
    for s in segments(text):
        share[s.section] = share.get(s.section, 0) + s.end - s.start
    total = sum(share.values())
    assert {"prepared", "question", "answer", "operator"} <= set(share)
    assert share["prepared"] / total > 0.3 and share["answer"] / total > 0.2 and share["question"] / total < 0.2


def test_transcript_passages_leave_out_the_operator_and_keep_spans() -> None:
    doc = Document(id="acme-q1", text=CALL, title="Acme Q1 2021 earnings call", tickers=["ACME"])
    passages = document_passages(doc, [], max_passages=80, target_chars=200)
    assert {p.section for p in passages} == {"prepared", "question", "answer"}
    assert all(CALL[p.start:p.end] == p.text for p in passages)
    joined = " ".join(p.text for p in passages)
    assert "listen-only" not in joined and "forward-looking" not in joined and "disconnect" not in joined
    # a cap on passages packs the text into fewer, larger ones: nothing management said is dropped
    few = document_passages(doc, [], max_passages=2, target_chars=100)
    assert sum(len(p.text) for p in few if p.section == "prepared") >= len(PREPARED) - len("Thanks, Jane. ")


@pytest.fixture(scope="module")
def classifier(embedder) -> FinanceSentimentClassifier:
    return FinanceSentimentClassifier(load_head(), embedder.embed_batch, load_calibration())


def test_analysts_courtesy_does_not_lift_a_bad_quarter(classifier: FinanceSentimentClassifier) -> None:
    doc = Document(id="acme-q1", text=CALL, title="Acme", tickers=["ACME"])
    passages = document_passages(doc, [], max_passages=80, target_chars=200)
    texts = {n: p.text for n, p in enumerate(passages, start=1)}
    sections = {n: p.section or "body" for n, p in enumerate(passages, start=1)}
    scored = verdict(classifier, texts, sections)
    assert scored["score"] < -0.35  # moderately negative or worse
    # an analyst's question counts for nothing, though the same words from the author would be praise
    praise = "Revenue grew 40% and margins expanded to a record, so how sustainable is that strength?"
    assert verdict(classifier, {1: praise}, {1: "question"})["score"] == 0.0
    assert verdict(classifier, {1: praise}, {1: "body"})["score"] > 0.3


@pytest.mark.parametrize(("sentence", "sign"), [
    ("Operating margin expanded by 320 basis points", 1),
    ("Gross margin contracted 400 basis points", -1),
    ("Customer concentration rose, with one buyer now 35% of sales", -1),
    ("The net loss narrowed to EUR 2.1 mn from EUR 5.3 mn", 1),
    ("Operating expenses decreased 8% on lower personnel costs", 1),
    ("Higher raw material costs weighed on the quarter", -1),
    ("Revenue did not decline in the quarter", 0),  # negated: left to the classifier
    ("Sales rose 5% while costs rose 9%", 0),  # two pairs that disagree: no verdict
    ("The annual general meeting will be held in April", 0),
])
def test_metric_direction_rule(sentence: str, sign: int) -> None:
    assert direction(sentence) == sign


def test_calibrated_scorer_reads_the_issues_sentences(classifier: FinanceSentimentClassifier) -> None:
    probs = classifier.probabilities(["Operating margin expanded by 320 basis points",
                                      "Gross margin contracted 400 basis points",
                                      "Customer concentration rose, with one buyer now 35% of sales",
                                      "Operating profit rose to EUR 31.1 mn from EUR 17.1 mn a year earlier.",
                                      "The annual general meeting will be held in Helsinki on 4 April."])
    assert list(probs.argmax(axis=1)) == [2, 0, 0, 2, 1]
    assert probs.sum(axis=1) == pytest.approx([1] * 5)
    calibration = load_calibration()
    assert calibration.direction_boost > 0 and calibration.temperature > 0
    assert "test" in calibration.card["never_used"]  # type: ignore[operator]  # a str in the shipped card


def test_transcript_map_moves_calls_only(classifier: FinanceSentimentClassifier) -> None:
    # Management speech is positive by convention, so a call's raw balance is mapped onto the gold labels' scale
    # (fitted on the earnings sentiment gold set's dev calls: their bad|mixed and mixed|good boundaries become the
    # neutral band's edges); written documents and short texts keep the raw balance.
    calibration = load_calibration()
    fit = calibration.card["transcript_fit"]
    assert isinstance(fit, dict) and fit["calls"] < 51  # the dev split only
    assert calibration.document_score(fit["bad_mixed_boundary"], transcript=True) == pytest.approx(-0.10, abs=1e-3)
    assert calibration.document_score(fit["mixed_good_boundary"], transcript=True) == pytest.approx(0.10, abs=1e-3)
    assert calibration.document_score(0.3, transcript=False) == 0.3
    said = {1: "Revenue grew 12% to $500 million and operating margin expanded 150 basis points."}
    written = verdict(classifier, said, {1: "body"})["score"]
    assert verdict(classifier, said, None)["score"] == written
    # the same sentence, with the same weight, in a call's prepared remarks: only the map differs
    assert verdict(classifier, said, {1: "prepared"})["score"] == pytest.approx(
        calibration.document_score(float(written), transcript=True), abs=1e-4)  # type: ignore[arg-type]  # a float
