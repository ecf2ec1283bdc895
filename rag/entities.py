"""Which companies a question is about, linked to the index's own documents: no hand-made alias table.

Every document's company (metadata `company`) and tickers give the names to look for:
- the whole company name, without legal suffixes ("General Electric", "Bed Bath & Beyond", "Lands' End"),
  matched case-insensitively, with possessives and plurals folded as everywhere else (rag.text.tokenize); a
  one-word name only as spelled ("Travelers", not "travel"); or its
  first two or more words, capitalised, when no other company's name starts with them ("Healthcare Realty" for
  Healthcare Realty Trust);
- a ticker, matched only as written in capitals ("GE's", "YETI"), and the initials of a name joined by "&" or
  "+", as written ("J&J" or "JnJ" for Johnson & Johnson, "K+N" for Kuehne + Nagel);
- one word of the name on its own ("Danaher", "Santander", "NextEra"), when that word is distinctive: in no
  other company's name and in the text of no more than a few other documents (so "General", "Energy",
  "Mexico" or "Texas" never link on their own), and capitalised in the question.

A question may also name a company the index does not hold ("Apple's iPhone revenue"): `unknown_mentions`
returns capitalised names in company position that link to nothing, so the answerer can abstain instead of
quoting another company's call."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from rag.text import MONTHS, tokenize

# Legal forms and filler words at the end or start of company names: never what people call a company.
_LEGAL = frozenset(tokenize(
    "inc incorporated corp corporation co company companies ltd limited plc sa s.a ag nv n.v se spa s.p.a "
    "llc lp group holdings holding the and of", drop_stopwords=False))
# A distinctive word may appear in documents of other companies (passing mentions, an analyst's bank) and still
# link: in at most this share of all documents, or MIN_FOREIGN_DOCS.
MAX_FOREIGN_SHARE = 0.10
MIN_FOREIGN_DOCS = 2
_WORD = re.compile(r"[A-Za-z0-9](?:[\w&'’.-]|\+(?=\w))*|[&+]")  # "Kuehne+Nagel" is a word, "Discovery+" one and "+"


@dataclass(frozen=True)
class Company:
    key: str  # the company name as stored, or its first ticker when the documents name no company
    doc_ids: frozenset[str]
    tickers: frozenset[str]


@dataclass(frozen=True)
class Mention:
    company: Company
    text: str  # as written in the question
    start: int


@dataclass
class EntityIndex:
    companies: dict[str, Company]
    names: dict[tuple[str, ...], str] = field(default_factory=dict)  # folded name tokens -> company key
    words: dict[str, str] = field(default_factory=dict)  # one distinctive folded word -> company key
    tickers: dict[str, str] = field(default_factory=dict)  # ticker as written -> company key
    prefixes: dict[tuple[str, ...], str] = field(default_factory=dict)  # first words of one name -> company key

    def link(self, question: str) -> list[Mention]:
        """Companies named in the question, in order of first mention, each once."""
        words = list(_WORD.finditer(question))
        # Folded tokens with the word each came from: a name may span words ("Bed Bath & Beyond") and a word
        # may hold several tokens ("Trip.com").
        tokens = [(token, w) for w, m in enumerate(words) for token in _fold_word(m.group(0))]
        found: dict[str, Mention] = {}
        i = 0
        while i < len(tokens):
            hit = None
            for length in range(min(8, len(tokens) - i), 0, -1):
                span = tuple(t for t, _ in tokens[i:i + length])
                key = self.names.get(span)
                if key is not None and length == 1 and not _written_as_name(words[tokens[i][1]].group(0), key):
                    key = None
                # A shortened name links only written as a name: "Healthcare Realty", not "innovative solutions".
                if key is None and all(words[w].group(0)[:1].isupper() or words[w].group(0) == "&"
                                       for _, w in tokens[i:i + length]):
                    key = self.prefixes.get(span)
                if key is not None:
                    hit = (key, length)
                    break
            if hit is None:
                word = words[tokens[i][1]].group(0)
                key = self.tickers.get(_POSSESSIVE.sub("", word))
                if key is None and word[:1].isupper():
                    key = self.words.get(tokens[i][0])
                hit = (key, 1) if key is not None else None
            if hit is None:
                i += 1
                continue
            key, length = hit
            first, last = words[tokens[i][1]], words[tokens[i + length - 1][1]]
            found.setdefault(key, Mention(self.companies[key], question[first.start():last.end()], first.start()))
            i += length
        return sorted(found.values(), key=lambda m: m.start)

    def unknown_mentions(self, question: str, linked: list[Mention] | None = None) -> list[str]:
        """Capitalised names in a company's place ("Apple's", "did Tesla", "for Nvidia") that link to no company
        of the index. `linked`: `link(question)`, when the caller already has it."""
        spans = [(m.start, m.start + len(m.text)) for m in (self.link(question) if linked is None else linked)]
        unknown = []
        for pattern in _COMPANY_PLACES:
            for match in pattern.finditer(question):
                name, start = match.group("name"), match.start("name")
                if any(a <= start < b or start <= a < start + len(name) for a, b in spans):
                    continue
                folded = set(_fold_word(name))
                if not folded or folded & _NOT_NAMES:
                    continue
                unknown.append(name)
        return list(dict.fromkeys(unknown))


_POSSESSIVE = re.compile(r"['’]s?$")
# "X's" or "did X", "for X"...: a capitalised word there names an actor.
_NAME = r"(?P<name>[A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*){0,3})"
_COMPANY_PLACES = [
    re.compile(rf"{_NAME}['’]s?(?!\w)"),
    re.compile(rf"\b(?:did|does|do|has|have|had|is|was|were|for|at|from|by)\s+{_NAME}\b"),
]
# Capitalised words that are not companies: periods, months, common finance abbreviations, pronouns.
_NOT_NAMES = frozenset(tokenize(" ".join(MONTHS), drop_stopwords=False)) | frozenset(tokenize(
    "q1 q2 q3 q4 fy h1 h2 covid coronavirus ceo cfo coo eps ebitda gaap rpo arpu usd us u.s europe european asia "
    "china chinese america american americas latin north south east west i we it they what that this there here "
    "who where how which when why let", drop_stopwords=False))  # "What's the outlook" names no one


def _written_as_name(word: str, name: str) -> bool:
    """A one-word name links only spelled as the name: "Travelers'" or "travelers" is the insurer, "travel" is not
    (tokenize folds them alike)."""
    return _POSSESSIVE.sub("", word).lower() in {_POSSESSIVE.sub("", w).lower() for w in _WORD.findall(name)}


def _fold_word(word: str) -> list[str]:
    # The possessive goes first: tokenize keeps it on a word that starts with a digit ("3M's"), as on amounts.
    return tokenize(_POSSESSIVE.sub("", word).replace("&", " and "), drop_stopwords=False)


def _name_tokens(name: str) -> tuple[str, ...]:
    tokens = _fold_word(name)
    while tokens and tokens[-1] in _LEGAL:
        tokens.pop()
    while tokens and tokens[0] in _LEGAL:
        tokens.pop(0)
    return tuple(tokens)


_JOINERS = frozenset("&+")


def _joined_initials(name: str) -> list[str]:
    """A name joined by "&" or "+" is said by its initials around it: Johnson & Johnson -> "J&J" and "JnJ", Procter
    & Gamble -> "P&G", Kuehne + Nagel -> "K+N". Matched as written, like a ticker."""
    words = [w for w in _WORD.findall(name) if w in _JOINERS or w[0].isalpha()]
    while len(words) > 1 and words[-1] not in _JOINERS and set(_fold_word(words[-1])) <= _LEGAL:
        words.pop()
    while len(words) > 1 and words[0] not in _JOINERS and set(_fold_word(words[0])) <= _LEGAL:
        words.pop(0)
    if not _JOINERS & set(words[1:-1]):
        return []
    letters = "".join(w if w in _JOINERS else w[0].upper() for w in words)
    return list(dict.fromkeys([letters, letters.replace("&", "n")]))


def entity_words(documents: Iterable[tuple[str, str | None, list[str]]]) -> set[str]:
    """The single words that could link to a company: the folded tokens of every company name."""
    return {t for _, company, _ in documents if company for t in _name_tokens(company)}


def build(documents: Iterable[tuple[str, str | None, list[str]]],
          docs_containing: dict[str, set[str]] | None = None) -> EntityIndex:
    """`documents`: (doc id, company name or None, tickers). `docs_containing`: folded word -> ids of the
    documents whose text contains it (for the distinctiveness test; without it no single word links)."""
    doc_ids: dict[str, set[str]] = defaultdict(set)
    tickers: dict[str, set[str]] = defaultdict(set)
    names: dict[str, str] = {}
    for doc_id, company, doc_tickers in documents:
        key = (company or "").strip() or (doc_tickers[0] if doc_tickers else "")
        if not key:
            continue
        doc_ids[key].add(doc_id)
        tickers[key] |= {t.upper() for t in doc_tickers}
        if company:
            names[key] = company
    companies = {k: Company(k, frozenset(doc_ids[k]), frozenset(tickers[k])) for k in doc_ids}
    n_docs = sum(len(ids) for ids in doc_ids.values())
    index = EntityIndex(companies)
    word_owners: dict[str, set[str]] = defaultdict(set)
    # A name said without its last words ("Healthcare Realty" for Healthcare Realty Trust, "Bed Bath" for Bed Bath
    # & Beyond) still names the company when no other company's name starts that way.
    prefix_owners: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for key, company in names.items():
        tokens = _name_tokens(company)
        if tokens:
            index.names.setdefault(tokens, key)
        for token in set(tokens):
            word_owners[token].add(key)
        for length in range(2, len(tokens)):
            if tokens[length - 1] not in _LEGAL:
                prefix_owners[tokens[:length]].add(key)
    for prefix, owners in prefix_owners.items():
        if len(owners) == 1 and prefix not in index.names:
            index.prefixes[prefix] = next(iter(owners))
    for key in companies:
        for ticker in tickers[key]:
            if len(ticker) >= 2:
                index.tickers.setdefault(ticker, key)
    # Initials after the tickers, so they never take a ticker's place, and only when one company has them.
    initials_owners: dict[str, set[str]] = defaultdict(set)
    for key, company in names.items():
        for short in _joined_initials(company):
            initials_owners[short].add(key)
    for short, owners in initials_owners.items():
        if len(owners) == 1:
            index.tickers.setdefault(short, next(iter(owners)))
    for word, owners in word_owners.items():
        if len(owners) != 1 or len(word) < 3 or word in _LEGAL or word[0].isdigit() or docs_containing is None:
            continue
        (key,) = owners
        foreign = docs_containing.get(word, set()) - companies[key].doc_ids
        if len(foreign) <= max(MIN_FOREIGN_DOCS, MAX_FOREIGN_SHARE * n_docs):
            index.words[word] = key
    return index
