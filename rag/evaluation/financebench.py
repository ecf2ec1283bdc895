"""The FinanceBench suite: 150 analyst questions over the evidence pages of public filings (see
eval/data/financebench/SOURCE.md). Retrieval is judged at page level, answers by the gold figure and the page
cited. Many gold answers are computed ratios, which an extractive answerer cannot produce; the figure-match
metric is reported for every model so real models can be compared on the same footing. Every metric is reported
for the dev and the test split separately (split by a hash of the question, as the earnings suite): tune on dev,
gate on test."""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rag.evaluation.gold import Split, split_of
from rag.evaluation.metrics import ask_or_failure, by_split, failed_item
from rag.library import Library
from rag.models import Document
from rag.settings import PROJECT_ROOT

DATA = PROJECT_ROOT / "eval" / "data" / "financebench" / "financebench_open_source.jsonl"
_FIGURE = re.compile(r"-?\$?\(?\d[\d,]*(?:\.\d+)?\)?%?")


class Question(BaseModel):
    id: str
    company: str
    question_type: str
    question: str
    answer: str
    pages: list[str]

    @property
    def split(self) -> Split:
        return split_of(self.question)


def page_id(doc_name: str, page: int) -> str:
    return f"{doc_name}-p{page + 1}"


def load(path: Path = DATA) -> tuple[list[Document], list[Question]]:
    """Evidence pages as documents (one per filing page) and the questions pointing at them."""
    pages: dict[str, Document] = {}
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        ids = []
        for ev in row["evidence"]:
            pid = page_id(ev["doc_name"], ev["evidence_page_num"])
            ids.append(pid)
            pages.setdefault(pid, Document(
                id=pid, text=ev["evidence_text_full_page"], title=f"{ev['doc_name']} page {pid.rsplit('-p', 1)[1]}",
                doc_type=ev["doc_name"].rsplit("_", 1)[-1].lower(), metadata={"company": row["company"]}))
        questions.append(Question(id=row["financebench_id"], company=row["company"],
                                  question_type=row["question_type"], question=row["question"],
                                  answer=row["answer"], pages=list(dict.fromkeys(ids))))
    return list(pages.values()), questions


def figures(text: str) -> list[float]:
    values = []
    for raw in _FIGURE.findall(text):
        cleaned = raw.replace("$", "").replace(",", "").replace("%", "").replace("(", "").replace(")", "")
        try:
            values.append(float(cleaned))
        except ValueError:
            continue
    return values


def figure_match(gold_answer: str, answer: str) -> bool | None:
    """True if the gold answer's first figure appears in the answer (within 1%); None if the gold has none."""
    gold = figures(gold_answer)
    if not gold:
        return None
    return any(abs(v - gold[0]) <= 0.01 * max(abs(gold[0]), 1e-9) for v in figures(answer))


def run(lib: Library, questions: list[Question], k: int = 5, model: str | None = None) -> dict[str, Any]:
    results = []
    latencies = []
    for q in questions:
        started = time.perf_counter()
        answer, error = ask_or_failure(lib, q.question, model=model)
        latencies.append((time.perf_counter() - started) * 1000)
        if answer is None:
            results.append(failed_item(q.id, q.question, False, error or "no answer", question_type=q.question_type,
                                       split=q.split, expected=q.answer[:300], figure_match=False,
                                       gold_page_cited=False))
            continue
        matched = figure_match(q.answer, answer.answer)
        cited = any(c.doc_id in q.pages for c in answer.citations)
        results.append({"id": q.id, "question": q.question, "question_type": q.question_type, "split": q.split,
                        "expected": q.answer[:300], "answer": answer.answer, "abstained": answer.abstained,
                        "should_abstain": False, "figure_match": matched, "gold_page_cited": cited,
                        "ok": cited and matched is not False,
                        "citations": [{"n": c.n, "doc_id": c.doc_id, "span": [c.start, c.end]}
                                      for c in answer.citations]})
    metrics, retrieval = by_split(lib, results, _answer_metrics, lambda split: [
        (q.question, [lambda p, pages=q.pages: p.doc_id in pages]) for q in questions if q.split == split], k)
    metrics["latency_ms_p50"] = round(statistics.median(latencies), 1)
    return {"suite": "financebench", "questions": len(questions), "metrics": metrics, "retrieval": retrieval,
            "results": results}


def _answer_metrics(results: list[dict[str, Any]]) -> dict[str, float]:
    with_figure = [r for r in results if r["figure_match"] is not None]
    metrics = {
        "gold_page_cited": sum(r["gold_page_cited"] for r in results) / len(results),
        "abstention_rate": sum(r["abstained"] for r in results) / len(results),
        "items": float(len(results)),
    }
    if with_figure:  # a small subset (`--limit`) may hold no question with a gold figure: then nothing is measured
        metrics["figure_match"] = sum(bool(r["figure_match"]) for r in with_figure) / len(with_figure)
        # The figure stated AND the gold page cited: a figure quoted from another company's filing is no answer.
        metrics["figure_match_cited"] = sum(bool(r["figure_match"]) and r["gold_page_cited"]
                                            for r in with_figure) / len(with_figure)
    return metrics
