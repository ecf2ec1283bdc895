"""Answer integrity, whatever the model (issue 13): uncited claims are flagged, an abstention is recognised only
when the whole answer is one, cited sentences are checked against the passages they cite, a reply that echoes
the prompt is malformed, and streaming never shows text the checks change."""

from __future__ import annotations

import asyncio
import json

import pytest

from rag.answer import ABSTAIN_MESSAGE, AnswerChecker, check_answer, split_sentences
from rag.errors import MalformedOutputError
from rag.library import Library
from rag.models import Answer, Passage
from rag.prompts import load_prompt
from rag.settings import LLMSettings
from tests.conftest import client_for
from tests.fakes import ECHO, fake_openai_server, scripted_provider

QUESTION = "What was Calix's Q4 revenue?"
TEMPLATE = load_prompt(None, "answer.v2")
REVENUE = ("Calix reported Q4 revenue of $206 million, up 2.6% sequentially and at the high end of guidance, while "
           "non-GAAP gross margin hit a record 55.5%.")
CUSTOMERS = "Calix supports 1,600 active service-provider customers, including Home Telecom, whose ARPU rose 17%."


def _passage(n: int, text: str) -> Passage:
    return Passage(chunk_id=f"c{n}", doc_id=f"d{n}", title=f"doc {n}", text=text, start=0, end=len(text), page=None,
                   source_url=None, tickers=[], doc_type=None, date=None, score=0.0)


PASSAGES = [_passage(1, REVENUE), _passage(2, CUSTOMERS)]


def check(raw: str) -> Answer:
    return check_answer(QUESTION, QUESTION, raw, PASSAGES, "fake/model", TEMPLATE, {})


# ---- uncited, unsupported, ungrounded ---------------------------------------------------------------------------
def test_an_answer_without_citations_is_flagged_uncited() -> None:
    answer = check("Calix pays a generous dividend every quarter.")
    assert not answer.abstained and answer.citations == [] and answer.flagged
    assert answer.uncited == ["Calix pays a generous dividend every quarter."]


def test_a_citation_covers_the_sentences_before_it_on_its_line_only() -> None:
    answer = check("Calix reported Q4 revenue of $206 million. It was up 2.6% sequentially [1].\n"
                   "Calix also pays a generous quarterly dividend.\n- Home Telecom saw ARPU rise 17% [2]")
    assert answer.uncited == ["Calix also pays a generous quarterly dividend."]
    assert not answer.ungrounded_numbers and not answer.unsupported


def test_framing_and_list_introductions_are_not_claims() -> None:
    answer = check("Based on the passages, here is the answer:\n- Q4 revenue was $206 million [1].")
    assert not answer.flagged and answer.answer.startswith("Based on the passages")


def test_a_cited_sentence_is_checked_against_the_passages_it_cites() -> None:
    answer = check("Calix pays a generous dividend every quarter [1]. Its ARPU rose 17% [1]. "
                   "CEO Michael Weening reported Q4 revenue of $206 million [1].")
    unsupported = {u.sentence: u for u in answer.unsupported}
    dividend = unsupported["Calix pays a generous dividend every quarter."]
    assert dividend.citations == [1] and {"dividend", "generous"} <= set(dividend.missing)
    # Most of its terms are in passage 1, but not the names.
    assert unsupported["CEO Michael Weening reported Q4 revenue of $206 million."].missing == ["Michael", "Weening"]
    assert answer.ungrounded_numbers == ["17%"]  # 17% is in passage 2, which this sentence does not cite
    assert len(unsupported) == 3 and not answer.uncited


def test_numbers_are_grounded_per_sentence_and_a_paraphrase_is_supported() -> None:
    answer = check("Fourth-quarter revenue came in at $206 million, up 2.6% [1]. It serves 1,600 customers [2].")
    assert not answer.flagged, answer


# ---- abstention: only when the answer IS one --------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    "NOT_FOUND", " NOT_FOUND.\n", "The passages do not contain information about Calix's dividend.",
    "I'm sorry, but the provided documents do not mention a dividend.",
    "The passages do not say. NOT_FOUND", "Not mentioned in the passages.",
])
def test_whole_answer_abstentions(raw: str) -> None:
    answer = check(raw)
    assert answer.abstained and answer.answer == ABSTAIN_MESSAGE and answer.citations == []


@pytest.mark.parametrize("raw", [
    "The passages do not contain Q2 revenue, but Q4 revenue was $206 million [1].",
    "The passages do not state Q2 revenue. Q4 revenue was $206 million [1].",
    "Q4 revenue was $206 million [1]. NOT_FOUND",
])
def test_an_abstention_clause_inside_an_answer_is_not_an_abstention(raw: str) -> None:
    answer = check(raw)
    assert not answer.abstained and "$206 million [1]" in answer.answer and [c.n for c in answer.citations] == [1]
    assert "NOT_FOUND" not in answer.answer


# ---- malformed replies ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    "<passages>\n<passage id=\"1\" title=\"doc 1\" doc=\"d1\">\nCalix reported...",
    "You are a financial research assistant. Answer the analyst's question using ONLY the numbered passages.",
    "", "  \n", "[7]",
])
def test_echoed_prompt_and_empty_replies_are_malformed(raw: str) -> None:
    with pytest.raises(MalformedOutputError):
        check(raw)


# ---- streaming releases checked text only -----------------------------------------------------------------------
REPLIES = [
    "Calix, Inc. reported Q4 revenue of $206 million, up 2.6% [1][7]. Gross margin was 55.5% [ 1 ]. EBITDA was "
    "$999 million [9].",
    "The passages do not contain Q2 revenue, but Q4 revenue was $206 million [1].",
    "The passages do not contain information about a dividend.",
    "Providers:\n- Home Telecom [2]\n\n- U.S. customers: 1,600 [2]  \n",
    "Revenue was $206 million.[1] Margin hit 55.5%! [1, 2] e.g. a record.",
]


@pytest.mark.parametrize("raw", REPLIES)
@pytest.mark.parametrize("size", [1, 3, 7])
def test_streamed_text_is_exactly_the_checked_answer(raw: str, size: int) -> None:
    whole = check(raw)
    checker = AnswerChecker(PASSAGES, TEMPLATE)
    shown = [checker.feed(raw[i:i + size]) for i in range(0, len(raw), size)]
    shown.append(checker.finish())
    streamed = checker.result(QUESTION, QUESTION, "fake/model", {})
    assert "".join(shown) == streamed.answer == whole.answer
    assert streamed.model_dump(exclude={"timings_ms"}) == whole.model_dump(exclude={"timings_ms"})
    assert not any(marker in "".join(shown) for marker in ("[7]", "[9]", "passages do not contain information"))


def test_sentences_split_the_same_on_any_prefix() -> None:
    raw = REPLIES[0] + " " + REPLIES[3]
    whole, _ = split_sentences(raw, final=True)
    for cut in range(len(raw)):
        part, rest = split_sentences(raw[:cut], final=False)
        assert part == whole[:len(part)] and raw[:rest] == "".join(part)
    assert whole[0] == "Calix, Inc. reported Q4 revenue of $206 million, up 2.6% [1][7]."


def _stream(lib: Library, question: str, model: str | None = None) -> tuple[list[str], Answer]:
    async def collect() -> list:
        return [e async for e in lib.astream_ask(question, model=model)]

    events = asyncio.run(collect())
    assert isinstance(events[-1], Answer) and all(isinstance(e, str) for e in events[:-1])
    return events[:-1], events[-1]


def test_library_stream_never_shows_removed_markers_or_a_retracted_abstention(seeded: Library) -> None:
    with scripted_provider(["Q4 revenue was $206 million [1][17]. EBITDA was $999 million [19]."]):
        deltas, answer = _stream(seeded, QUESTION, "fake/model")
    assert "".join(deltas) == answer.answer and answer.removed_citations == [17, 19]
    assert not any("[17]" in d or "[19]" in d for d in deltas)
    with scripted_provider(["The passages do not contain information about a dividend."]):
        deltas, answer = _stream(seeded, "What dividend does Calix pay?", "fake/model")
    assert answer.abstained and "".join(deltas) == ABSTAIN_MESSAGE


# ---- through a scripted OpenAI-compatible server ----------------------------------------------------------------
def _server_library(seeded: Library, api_base: str) -> Library:
    return Library(seeded.settings.model_copy(update={"llm": LLMSettings(
        model="openai/local", api_base=api_base, api_key="dummy", num_retries=0)}), embedder=seeded.embedder)


def test_server_reply_without_citations_and_with_an_abstention_clause(seeded: Library) -> None:
    replies = ["Calix pays a generous dividend every quarter.",
               "The passages do not contain Q2 revenue, but Q4 revenue was $206 million [1]."]
    with fake_openai_server(replies) as (base, _):
        lib = _server_library(seeded, base)
        uncited = lib.ask("What dividend does Calix pay?")
        partial = lib.ask(QUESTION)
    assert not uncited.abstained and uncited.uncited == [replies[0]] and uncited.citations == []
    assert not partial.abstained and partial.citations[0].n == 1 and "$206 million" in partial.citations[0].quote


def test_server_echoing_the_prompt_is_a_502_not_an_answer(seeded: Library) -> None:
    with fake_openai_server(ECHO) as (base, received), client_for(_server_library(seeded, base)) as client:
        r = client.post("/v1/ask", json={"question": QUESTION})
        assert r.status_code == 502 and "reproduced the prompt" in r.json()["error"]["message"]
        r = client.post("/v1/ask", json={"question": QUESTION, "stream": True})
        assert r.status_code == 502
    assert len(received) == 2


def test_openai_compatible_stream_content_is_the_checked_content(seeded: Library) -> None:
    reply = "Q4 revenue was $206 million [1][17]. Gross margin hit a record 55.5% [1]."
    messages = [{"role": "user", "content": QUESTION}]
    with fake_openai_server(reply) as (base, _), client_for(_server_library(seeded, base)) as client:
        whole = client.post("/v1/chat/completions", json={"model": "rag", "messages": messages}).json()
        with client.stream("POST", "/v1/chat/completions",
                           json={"model": "rag", "messages": messages, "stream": True}) as r:
            chunks = [json.loads(line[6:]) for line in r.iter_lines()
                      if line.startswith("data: ") and line != "data: [DONE]"]
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert streamed == whole["choices"][0]["message"]["content"]
    assert "[17]" not in streamed and "Sources:" in streamed and whole["removed_citations"] == [17]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[0]["model"] == "openai/local"
