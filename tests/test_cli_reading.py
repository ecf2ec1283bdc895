"""The CLI for reading: `rag show` (a document or a cited span), `rag chat` (follow-ups over piped lines), dates
in `rag docs`, cited quotes under `rag ask`'s Sources. In process (typer's runner), over the seeded index."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.library import Library
from tests.conftest import SEED_MAP, SEED_NOTE

NOT_FOUND = "Not found in the indexed documents"


@pytest.fixture(scope="module")
def index(seeded: Library) -> str:
    return str(seeded.settings.index_dir)


def _run(*args: str, stdin: str | None = None):  # noqa: ANN202  # click Result
    return CliRunner().invoke(app, list(args), input=stdin)


def test_show_span_prints_exactly_what_a_citation_quotes(seeded: Library, index: str) -> None:
    citation = seeded.ask("Which providers are deploying SmartMDU?").citations[0]
    result = _run("show", citation.doc_id, "--span", f"{citation.start}:{citation.end}", "--index", index, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["text"] == citation.quote and shown["title"] == citation.title
    assert shown["date"] == "2026-05-31" and shown["source_url"] == "https://nullexposure.com/"

    text = _run("show", SEED_MAP, "--span", f"{citation.start}:{citation.end}", "--index", index).output
    head, body = text.split("\n\n", 1)
    assert "Calix (CALX): customer relationships map" in head and "2026-05-31" in head
    assert "source: https://nullexposure.com/" in head and f"chars {citation.start}-{citation.end}" in head
    assert body == citation.quote + "\n"


def test_show_whole_document_and_errors(seeded: Library, index: str) -> None:
    result = _run("show", SEED_NOTE, "--index", index)
    assert result.exit_code == 0 and "no date" in result.output
    assert result.output.endswith(seeded.get_document(SEED_NOTE).text + "\n")
    assert _run("show", "no-such-doc", "--index", index).exit_code == 3
    for span in ("9:3", "0:999999", "a:b", "12"):
        assert _run("show", SEED_NOTE, "--span", span, "--index", index).exit_code == 2, span


def test_docs_list_dates(index: str) -> None:
    lines = {line.split()[0]: line for line in _run("docs", "--index", index).output.splitlines()}
    assert lines[SEED_MAP].split()[1] == "2026-05-31" and lines[SEED_NOTE].split()[1] == "-"


def test_ask_prints_each_cited_quote_under_sources(index: str) -> None:
    output = _run("ask", "Which providers are deploying SmartMDU?", "--index", index).output
    sources = output.split("Sources", 1)[1]
    # Each quote starts at the sentence the answer took from it, shortened.
    assert "“…Blue Stream Fiber is deploying Calix One with SmartMDU" in sources
    assert "“…Zentro, an MDU‑focused MSP" in sources
    assert sources.count("“") == sources.count(" [") and sources.count("…”") >= 1


def test_chat_answers_piped_lines_with_follow_ups(index: str) -> None:
    # Alone, the follow-up abstains; with the first question as history it is answered.
    assert NOT_FOUND in _run("ask", "and how much of that is current?", "--index", index).output
    result = _run("chat", "--index", index, stdin="What is Calix's RPO?\nand how much of that is current?\n")
    assert result.exit_code == 0, result.output
    first, second = result.output.split("> and how much of that is current?")
    assert "> What is Calix's RPO?" in first and "$326 million" in first
    assert "$121 million" in second and NOT_FOUND not in second and "Sources" in second


def test_chat_stops_at_a_blank_line_and_survives_a_bad_question(index: str) -> None:
    result = _run("chat", "--index", index, stdin="x" * 3000 + "\nWhat was Calix's Q4 revenue?\n\nWho is the CEO?\n")
    assert result.exit_code == 0, result.output
    assert "longer than 2000 characters" in result.output and "$206 million" in result.output
    assert "Who is the CEO?" not in result.output
