"""Period linking: the fiscal year / quarter a question names picks among one company's filings. A small real index
of FinanceBench evidence pages (eval/data/financebench, CC BY-NC 4.0, evaluation only) of 3M and MGM Resorts
from several years, with the real model, FAISS and BM25."""

from __future__ import annotations

import pytest

from rag.evaluation import financebench
from rag.library import Library
from rag.models import SearchFilters
from rag.periods import PeriodIndex, Periods, document_periods, periods_of
from rag.settings import RetrievalSettings
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def filings(tmp_path_factory: pytest.TempPathFactory, embedder) -> Library:
    tickers = {"3M": ["MMM"], "MGM Resorts": ["MGM"]}
    pages = [p.model_copy(update={"tickers": tickers[p.metadata["company"]]}) for p in financebench.load()[0]
             if p.metadata["company"] in tickers]
    lib = Library(make_settings(tmp_path_factory.mktemp("filings") / "index"), embedder=embedder)
    assert lib.add_documents(pages).ok
    return lib


def test_periods_are_read_from_questions_titles_and_metadata() -> None:
    assert periods_of("Q2 of FY2023") == Periods(frozenset({"2023"}), frozenset({"q2"}))
    assert periods_of("in the third quarter of fiscal 2020") == Periods(frozenset({"2020"}), frozenset({"q3"}))
    assert periods_of("its quick ratio for FY22").years == {"2022"}
    assert periods_of("from FY2015 to FY2017").years == {"2015", "2017"}
    assert not periods_of("1,906 employees in the first quarter")  # an amount, and a quarter without a year
    assert periods_of("revenue of $2,019 million in FY2018").years == {"2018"}  # amounts are not years
    assert document_periods("3M_2023Q2_10Q page 5", None) == Periods(frozenset({"2023"}), frozenset({"q2"}))
    # The metadata period wins over what the title happens to mention.
    assert document_periods("Acme on its 2019 acquisition", "Q1 2021").years == {"2021"}


def test_narrow_takes_the_latest_year_asked_that_has_documents_then_the_quarter() -> None:
    index = PeriodIndex(
        {
            "k17": Periods(frozenset({"2017"})),
            "k16": Periods(frozenset({"2016"})),
            "q23": Periods(frozenset({"2023"}), frozenset({"q2"})),
            "k23": Periods(frozenset({"2023"})),
        }
    )
    everything = list(index.of)
    assert index.narrow(periods_of("from FY2015 to FY2017"), everything) == {"k17"}
    assert index.narrow(periods_of("as of FY2016, what will it pay in 2024"), everything) == {"k16"}
    assert index.narrow(periods_of("in Q2 of FY2023"), everything) == {"q23"}
    assert index.narrow(periods_of("in Q4 of FY2023"), everything) == {"q23", "k23"}  # no Q4 document: the year
    assert index.narrow(periods_of("in FY2030"), everything) is None
    # Guidance for a year comes from the year before (its Q4 release) as well as from that year's own documents.
    assert index.narrow(periods_of("Is EPS growth expected to accelerate in FY2017?"), everything) == {"k16", "k17"}
    assert index.narrow(periods_of("What is the outlook for Q2 of FY2017?"), everything) == {"k16", "k17"}
    # Nouns that are no outlook, and a result measured against guidance, keep the plain rule.
    for question in ("What was the pension plan expense in FY2017?", "What was the price target in FY2017?",
                     "Did FY2017 revenue beat guidance?"):
        assert index.narrow(periods_of(question), everything) == {"k17"}, question
    assert index.narrow(periods_of("lately"), everything) is None


def test_a_year_in_the_question_picks_that_years_filing(filings: Library) -> None:
    found = filings.retrieve(
        "Basing your judgments off of the balance sheet, what is the year end FY2018 amount of "
        "accounts payable for MGM Resorts?"
    )
    assert [m.company.key for m in found.companies] == ["MGM Resorts"]
    assert {p.doc_id for p in found.passages} == {"MGMRESORTS_2018_10K-p57"}
    # Three years named: the latest filing reports all three.
    span = filings.search("What is the FY2018 - FY2020 3 year average of capex as a % of revenue for MGM Resorts?")
    assert {p.doc_id.rsplit("-p", 1)[0] for p in span} == {"MGMRESORTS_2020_10K"}


def test_a_quarter_picks_that_quarters_filing_and_an_unknown_year_narrows_nothing(filings: Library) -> None:
    q4 = filings.search("What adjusted EBITDAR did MGM Resorts report in Q4 of FY2022?")
    assert {p.doc_id.rsplit("-p", 1)[0] for p in q4} == {"MGMRESORTS_2022Q4_EARNINGS"}
    question = "What adjusted EBITDAR did MGM Resorts report in FY2030?"  # no 2030 filing: all the company's
    later = filings.search(question)
    assert later and all(p.doc_id.startswith("MGMRESORTS_") for p in later)
    assert [p.chunk_id for p in later] == [p.chunk_id for p in _unlinked(filings).search(question)]


def test_a_period_the_filters_exclude_falls_back_to_the_companys_other_documents(filings: Library) -> None:
    # Q4 FY2022 narrows MGM to its Q4 earnings deck, which the 10-K filter removes: the company's 10-Ks are
    # searched, not the whole index.
    question = "What was MGM Resorts' segment growth by region in Q4 of FY2022?"
    found = filings.search(question, filters=SearchFilters(doc_types=["10k"]))
    assert found and all(p.doc_id.startswith("MGMRESORTS_") and "_10K" in p.doc_id for p in found)


def test_an_explicit_ticker_is_narrowed_to_the_period_like_a_linked_company(filings: Library) -> None:
    question = "Basing your judgments off of the balance sheet, what is the year end FY2018 amount of accounts payable?"
    found = filings.search(question, filters=SearchFilters(tickers=["mgm"]))
    assert found and {p.doc_id.rsplit("-p", 1)[0] for p in found} == {"MGMRESORTS_2018_10K"}
    # A year the ticker has no filing for: all of its documents, as without a period.
    later = filings.search("accounts payable in FY2030", filters=SearchFilters(tickers=["MGM"]))
    assert later and all(p.doc_id.startswith("MGMRESORTS_") for p in later)


def test_a_possessive_after_a_digit_still_links_the_company(filings: Library) -> None:
    found = filings.retrieve(
        "If we exclude the impact of M&A, which segment has dragged down 3M's overall growth in 2022?"
    )
    assert [m.company.key for m in found.companies] == ["3M"]
    assert {p.doc_id.rsplit("-p", 1)[0] for p in found.passages} == {"3M_2022_10K"}


def _unlinked(filings: Library) -> Library:
    return Library(filings.settings.model_copy(update={"retrieval": RetrievalSettings(link_periods=False)}),
                   embedder=filings.embedder)


def test_period_linking_can_be_turned_off(filings: Library) -> None:
    found = _unlinked(filings).search(
        "Basing your judgments off of the balance sheet, what is the year end FY2018 amount of "
        "accounts payable for MGM Resorts?"
    )
    assert {p.doc_id for p in found} != {"MGMRESORTS_2018_10K-p57"}
