"""Which fiscal period a question asks about, linked to the documents whose own metadata names it: no table.

A document's period is read from its metadata `period` or `quarter` ("Q3 FY2020"), else from its title
("3M_2018_10K", "Acme Q2 2023 earnings call"); a question's from its words ("FY2018", "Q2 of FY2023", "in 2022",
"the third quarter"), both with rag.text's period labels. A document's date is not used: a 10-K for fiscal 2018 is
filed in 2019, and a call on the fourth quarter of 2019 is held in 2020.

`narrow` keeps, of some candidate documents (one company's), those of the latest year the question names that any
of them covers: a filing reports earlier years as comparatives, so "from FY2015 to FY2017" is answered by the 2017
filing, and "as of FY2021, what will it pay in 2024" by the 2021 one when there is no 2024 document. When the
question also names a quarter that some of those documents cover, only those. When nothing matches, no narrowing.
A question that asks for an outlook on one year ("expected in FY2023") also keeps the year before's documents,
where that guidance is given, and no quarter narrows it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rag.text import asks_for_outlook, period_labels, tokenize

_QUARTERS = frozenset({"q1", "q2", "q3", "q4"})
# Amounts are not years: "$2,019 million", "2,019 units", "$2019".
_AMOUNT = re.compile(r"\$\s?\d[\d,.]*|\b\d{1,3}(?:,\d{3})+(?:\.\d+)?")


@dataclass(frozen=True)
class Periods:
    years: frozenset[str] = frozenset()  # "2018"
    quarters: frozenset[str] = frozenset()  # "q2"
    outlook: bool = False  # the text asks for guidance ("expected", "outlook", "will"; rag.text.asks_for_outlook)

    def __bool__(self) -> bool:
        # Only a year makes a period to link: "the first quarter" alone could be any year's.
        return bool(self.years)


def periods_of(text: str) -> Periods:
    """The periods a question asks about, and whether it asks for an outlook."""
    return Periods(*_labelled(text), asks_for_outlook(text))


def document_periods(title: str, period: str | None) -> Periods:
    """`period`: the document's metadata `period` or `quarter`, when it has one (it names what the document
    reports on; a title may name other things). A document asks for nothing: no outlook is read (it would cost a
    second tokenisation of every title when an index opens)."""
    return Periods(*_labelled(period or title))


def _labelled(text: str) -> tuple[frozenset[str], frozenset[str]]:
    labels = period_labels(set(tokenize(_AMOUNT.sub(" ", text), drop_stopwords=False)))
    return frozenset(t for t in labels if t.isdigit()), frozenset(labels & _QUARTERS)


@dataclass
class PeriodIndex:
    of: dict[str, Periods] = field(default_factory=dict)  # document id -> its periods

    def narrow(self, asked: Periods, doc_ids: Iterable[str]) -> frozenset[str] | None:
        """The documents of `doc_ids` in the period asked about, or None when the question names no year or none
        of them covers one it names."""
        candidates = [(d, self.of.get(d, Periods())) for d in doc_ids]
        covered = {y for _, p in candidates for y in p.years}
        years = sorted(asked.years & covered)
        keep = set(years[-1:])
        # A year's guidance is given in the year before (its fourth-quarter release or call), unless the question
        # names the year to read it from ("as of FY2016, what will it pay in 2024").
        if asked.outlook and len(asked.years) == 1:
            keep |= {str(int(next(iter(asked.years))) - 1)} & covered
        if not keep:
            return None
        in_year = [(d, p) for d, p in candidates if keep & p.years]
        in_quarter = [] if asked.outlook else [d for d, p in in_year if asked.quarters & p.quarters]
        return frozenset(in_quarter or (d for d, _ in in_year))
