"""Answers that know which company: a small multi-company index (parts of four real earnings calls from
eval/data/earnings, CC BY-SA 4.0, plus the Calix seeds) with the real model, FAISS and BM25."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import retrieve as retrieve_module
from rag.entities import build
from rag.library import Library
from rag.models import Document
from rag.settings import PROJECT_ROOT
from rag.text import spelled_numbers_to_digits, tokenize
from tests.conftest import SEEDS, make_settings

CALLS = PROJECT_ROOT / "eval" / "data" / "earnings" / "calls.jsonl"
# (call, start, end): the stretch of each call holding the facts asked about below, kept short for speed.
PARTS = {"e21-4341191": (14500, 19000), "e21-4344338": (2000, 11000), "e21-4385939": (11000, 14000),
         "e21-4387332": (17000, 20000)}


@pytest.fixture(scope="module")
def companies(tmp_path_factory: pytest.TempPathFactory, embedder) -> Library:
    docs = []
    for line in CALLS.read_text("utf-8").splitlines():
        row = json.loads(line)
        if row["id"] in PARTS:
            start, end = PARTS[row["id"]]
            docs.append(Document(id=row["id"], text=row["text"][start:end], title=row["title"], tickers=row["tickers"],
                                 doc_type=row["doc_type"], metadata={"company": row["company"],
                                                                     "quarter": row["quarter"]}))
    lib = Library(make_settings(tmp_path_factory.mktemp("companies") / "index"), embedder=embedder)
    assert lib.add_documents(docs).ok and lib.add_paths([SEEDS]).ok
    return lib


def test_a_company_named_in_the_question_scopes_retrieval(companies: Library) -> None:
    found = companies.retrieve("What was GE's industrial free cash flow in the first quarter?")
    assert [m.company.key for m in found.companies] == ["General Electric"]
    assert {p.doc_id for p in found.passages} == {"e21-4341191"}


def test_answer_cites_only_the_company_asked_about(companies: Library) -> None:
    answer = companies.ask("What free cash flow did Danaher generate in the first quarter?")
    assert not answer.abstained and "694 million" in answer.answer
    assert {c.doc_id for c in answer.citations} == {"e21-4344338"}


def test_comparison_answers_each_side_with_its_own_citation(companies: Library) -> None:
    answer = companies.ask("Compare Danaher's and GE's free cash flow in the first quarter of 2020.")
    assert {p.doc_id for p in answer.passages} == {"e21-4344338", "e21-4341191"}
    assert "Danaher:" in answer.answer and "General Electric:" in answer.answer
    assert {c.doc_id for c in answer.citations} == {"e21-4344338", "e21-4341191"}
    # The labels name each passage's company, which the model saw with the passage: no "unsupported" warning.
    assert answer.unsupported == []
    # An answer reads as many passages of each company as it would of one, up to what the company has (GE's part
    # of its call here is 9 chunks), not a share of them; a search shares its k among them.
    read = [p.doc_id for p in answer.passages]
    assert (read.count("e21-4344338"), read.count("e21-4341191")) == (companies.settings.retrieval.answer_k, 9)
    assert len(companies.search("Compare Danaher's and GE's free cash flow in the first quarter of 2020.", k=4)) == 4


def test_each_side_of_a_comparison_is_searched_without_the_other_companys_name(
        companies: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    # The other company's documents are filtered out of a side's search, so its name can only mislead the ranking.
    searched: list[tuple[str, frozenset[str]]] = []
    real_search = retrieve_module.search

    def spy(snapshot, embedder, query, settings, k, filters=None, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        searched.append((query, frozenset(filters.doc_ids if filters else ())))
        return real_search(snapshot, embedder, query, settings, k, filters, *args, **kwargs)

    monkeypatch.setattr(retrieve_module, "search", spy)
    found = companies.retrieve("Compare Danaher's and GE's free cash flow in the first quarter of 2020.")
    assert {p.doc_id for p in found.passages} == {"e21-4344338", "e21-4341191"}
    queries = {next(iter(docs)): query for query, docs in searched if len(docs) == 1}
    assert queries == {"e21-4344338": "Compare Danaher's and free cash flow in the first quarter of 2020.",
                       "e21-4341191": "Compare and GE's free cash flow in the first quarter of 2020."}


def test_spelled_out_numbers_are_found_and_quoted(empty_library: Library) -> None:
    text = ("Speaker 1: Core revenue growth remains our most important measure of the health of the business. "
            "In the quarter we delivered four and a half percent core revenue growth across all of our segments.")
    empty_library.add_text(text, doc_id="acme-call", title="Acme Q1 call", metadata={"company": "Acme"})
    answer = empty_library.ask("How much core revenue growth did Acme deliver in the quarter?")
    assert "four and a half percent core revenue growth" in answer.answer  # a number, though spelled out
    assert tokenize("four and a half percent core revenue growth") == tokenize("4.5% core revenue growth")


def test_a_company_the_index_does_not_hold_is_an_abstention_with_closest_passages(companies: Library) -> None:
    # ZAGG's call mentions "the Apple launch": that passage must not become Apple's iPhone revenue.
    answer = companies.ask("What was Apple's iPhone revenue in the June quarter?")
    assert answer.abstained and answer.citations == []
    tesla = companies.ask("How many vehicles did Tesla deliver in the fourth quarter?")
    assert tesla.abstained and "No indexed document is about Tesla" in tesla.answer
    assert tesla.passages, "the closest passages are still returned for the reader"
    # Which companies spoke of another's news: the companies asked for are unnamed, and the name is the topic.
    assert companies.retrieve("How many vehicles did Tesla deliver in the fourth quarter?").unknown == ["Tesla"]
    assert companies.retrieve("Which companies talked about Tesla's delivery numbers?").unknown == []


def test_operator_lines_and_questions_are_never_quoted(companies: Library) -> None:
    answer = companies.ask("How did Hershey's Halloween season perform?")
    assert "?" not in answer.answer and "Speaker" not in answer.answer


def test_markers_inside_document_text_never_become_citations(empty_library: Library) -> None:
    text = ("Acme Corp reported quarterly revenue of $12 million, up 4% [2] on strong demand for its widgets. "
            "Acme's gross margin was 41% in the quarter, a record for the company and its shareholders.")
    empty_library.add_text(text, doc_id="acme-q1", title="Acme Q1 results", tickers=["ACME"],
                           metadata={"company": "Acme Corp"})
    answer = empty_library.ask("What revenue did Acme report for the quarter?")
    assert "$12 million" in answer.answer and "[2]" not in answer.answer and answer.removed_citations == []


def test_linking_uses_the_index_metadata_without_alias_tables() -> None:
    documents = [("ge", "General Electric", ["GE"]), ("nee", "NextEra Energy", ["NEE"]),
                 ("es", "Eversource Energy", ["ES"]), ("lands", "Lands' End", ["LE"]),
                 ("bbby", "Bed Bath & Beyond", ["BBBY"]), ("itcb", "Itau CorpBanca", ["ITCB"]),
                 ("hr", "Healthcare Realty Trust", ["HR"]), ("clpr", "Clipper Realty", ["CLPR"]),
                 ("hta", "Healthcare Trust of America", ["HTA"])]
    containing = {"general": {"nee", "es", "lands"}, "nextera": {"nee"}, "eversourc": {"es"}}
    index = build(documents, {k: v for k, v in containing.items()})
    keys = [m.company.key for m in index.link("Compare NextEra's and Eversource's EPS guidance")]
    assert keys == ["NextEra Energy", "Eversource Energy"]
    assert [m.company.key for m in index.link("What did GE's CEO say?")] == ["General Electric"]
    assert [m.company.key for m in index.link("What did General Electric say?")] == ["General Electric"]
    assert index.link("What did management say in general about energy?") == []  # common words never link alone
    # A name without its last word links when no other name starts the same way ("Realty" alone is two companies').
    assert [m.company.key for m in index.link("What FFO did Healthcare Realty report?")] == ["Healthcare Realty Trust"]
    assert index.link("What did Healthcare say?") == []
    assert index.link("What healthcare realty trends did management see?") == []  # not written as a name
    assert [m.company.key for m in index.link("How did Bed Bath & Beyond do?")] == ["Bed Bath & Beyond"]
    # A name joined by "&" is also said by its initials, as written: BB&B, BBnB.
    assert [m.company.key for m in index.link("How did BB&B's digital sales grow?")] == ["Bed Bath & Beyond"]
    assert [m.company.key for m in index.link("What did BBnB guide?")] == ["Bed Bath & Beyond"]
    assert index.link("What did bb&b say?") == []
    # Initials two companies share link to neither; a ticker keeps its company; "The" is no initial.
    twins = build([("jj", "Johnson & Johnson", ["JNJ"]), ("jo", "Johnson & Jones", []), ("cd", "Cee Dee", ["C&D"]),
                   ("cdw", "Church & Dwight", ["CHD"]), ("pg", "The Procter & Gamble Company", ["PG"])])
    assert twins.link("What did J&J say?") == []
    assert [m.company.key for m in twins.link("What did C&D report?")] == ["Cee Dee"]
    assert [m.company.key for m in twins.link("What did P&G report?")] == ["The Procter & Gamble Company"]
    # ...and so is a name joined by "+", written with or without spaces.
    plus = build([("kn", "Kuehne + Nagel", ["KNIN"])])
    for question in ("What dividend is K+N proposing?", "What did Kuehne+Nagel say?", "K+N's gross profit?"):
        assert [m.company.key for m in plus.link(question)] == ["Kuehne + Nagel"], question
    # A "+" ending a word joins nothing: "Discovery+" is Discovery's product.
    assert [m.company.key for m in build([("d", "Discovery, Inc.", ["DISCA"])]).link(
        "How many Discovery+ subscribers did the company have?")] == ["Discovery, Inc."]
    assert [m.company.key for m in index.link("What did Lands' End say?")] == ["Lands' End"]
    assert [m.company.key for m in index.link("What did Itaú CorpBanca earn?")] == ["Itau CorpBanca"]
    assert index.unknown_mentions("What was Apple's iPhone revenue?") == ["Apple"]
    assert index.unknown_mentions("What did NextEra say about Q4?") == []
    assert index.unknown_mentions("What's the outlook for Q4 EPS? That's all. Here's why.") == []  # no one's
    # A one-word name links only spelled as the name: "travel" folds like "Travelers" and is no insurer.
    one_word = build([("trv", "Travelers", ["TRV"]), ("tcom", "Trip.com Group", ["TCOM"]), ("low", "Lowe's", [])])
    assert [m.company.key for m in one_word.link("What did Trip.com expect for domestic travel?")] == \
        ["Trip.com Group"]
    assert [m.company.key for m in one_word.link("what did travelers say about catastrophe losses?")] == ["Travelers"]
    assert [m.company.key for m in one_word.link("What did Lowe's report?")] == ["Lowe's"]


def test_spelled_numbers() -> None:
    assert spelled_numbers_to_digits("seventy five million and twenty-one units") == "75 million and 21 units"
    assert spelled_numbers_to_digits("two point five percent") == "2.5%"


def test_list_question_gathers_several_documents(companies: Library) -> None:
    found = companies.retrieve("Which companies discussed free cash flow?")
    docs = [p.doc_id for p in found.passages]
    assert len(set(docs)) >= 2 and max(docs.count(d) for d in docs) <= 2
    # Each document's best passage comes before any document's second: the first few are all different documents.
    assert len(set(docs[:len(set(docs))])) == len(set(docs))


def test_one_document_of_a_company_holds_at_most_its_share_of_the_passages(
        companies: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    # Calix has two documents here; the customer map alone matches this question best, chunk after chunk.
    question = "Which customers does Calix serve?"
    monkeypatch.setattr(companies.settings.retrieval, "max_per_company_document", None)
    uncapped = [p.doc_id for p in companies.retrieve(question).passages]
    monkeypatch.setattr(companies.settings.retrieval, "max_per_company_document", 3)
    capped = [p.doc_id for p in companies.retrieve(question).passages]
    assert len(capped) == 5 and len(set(uncapped)) == 1
    assert len(set(capped)) == 2 and max(capped.count(d) for d in capped) == 3


def test_a_list_answer_names_the_company_even_when_one_qualifies() -> None:
    from rag.providers.extractive import answer

    passages = {1: "Our consolidated net income was 95.1 billion pesos, the highest quarterly net income in our "
                   "history.",
                2: "The weather in the region was mild during the quarter and our staff enjoyed the summer picnic."}
    companies = {1: "Itau CorpBanca", 2: "Acme Foods"}
    text = answer("Which banks reported the highest quarterly net income in their history?", passages,
                  companies=companies)
    assert text.startswith("Itau CorpBanca: Our consolidated net income") and "[1]" in text and "Acme" not in text


def test_metadata_company_reaches_passages_and_prompt(companies: Library, tmp_path: Path) -> None:
    [passage] = companies.search("Halloween season", k=1, mode="bm25")
    assert passage.company == "Hershey"


def test_cli_abstention_lists_the_closest_passages(companies: Library) -> None:
    from typer.testing import CliRunner

    from rag.cli import app

    result = CliRunner().invoke(app, ["ask", "How many vehicles did Tesla deliver in the fourth quarter?", "--index",
                                      str(companies.settings.index_dir)])
    assert result.exit_code == 0, result.output
    assert "No indexed document is about Tesla" in result.output and "Closest passages" in result.output
