"""Tokens and numbers, shared by BM25, the offline provider and the citation checks so that all three
agree on what "the same number" or "the same word" means."""

from __future__ import annotations

import re

# Question words and fillers on top of a standard English list: they carry no topic.
STOPWORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there
    these they this to was will with what which who whom whose when where why how much many did does do
    doe has have had its it's i me my we our you your he she him her them than so any all about from
    out over can could would should may might also just been being were per vs via""".split()
)

_TOKEN = re.compile(r"\$?\d+(?:[.,]\d+)*%?|[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
# Amounts, percents and counts, e.g. $206 million, 2.6%, 1,600, 204. Years and quarter labels (Q4)
# are numbers too: an answer must not invent them either.
_NUMBER = re.compile(r"(?<![\w.])\$?\d+(?:,\d{3})*(?:\.\d+)?%?")


# Finance phrasings folded to one token on both the index and the query side.
_PHRASES = [
    (re.compile(r"\b(fourth|4th)[ -]quarter\b", re.I), "Q4"),
    (re.compile(r"\b(third|3rd)[ -]quarter\b", re.I), "Q3"),
    (re.compile(r"\b(second|2nd)[ -]quarter\b", re.I), "Q2"),
    (re.compile(r"\b(first|1st)[ -]quarter\b", re.I), "Q1"),
    (re.compile(r"\bremaining performance obligations?\b", re.I), "RPO"),
    (re.compile(r"\baverage revenue per user\b", re.I), "ARPU"),
    (re.compile(r"\b(buy|bought|buying)[ -]?backs?\b", re.I), "buyback"),
    (re.compile(r"\bearnings per share\b", re.I), "EPS"),
    (re.compile(r"\brepurchas\w*", re.I), "buyback"),
    (re.compile(r"\b(quarter[ -]over[ -]quarter|q/q|qoq)\b", re.I), "sequentially"),
]


def _fold(token: str) -> str:
    token = token.lower().lstrip("$").replace("’", "'")
    if token[0].isdigit():
        return token.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?%?", token) else token
    if token.endswith("'s"):
        token = token[:-2]
    # Cheap plural folding keeps "customers" and "customer" together without a stemmer.
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        token = token[:-1]
    return token


def tokenize(text: str, drop_stopwords: bool = True) -> list[str]:
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    tokens = (_fold(t) for t in _TOKEN.findall(text))
    return [t for t in tokens if t and (not drop_stopwords or t not in STOPWORDS)]


def normalise_number(raw: str) -> str:
    """'$1,600' -> '1600', '2.6%' -> '2.6%', '55.50' stays '55.50' (no rounding: a change is a change)."""
    return raw.lstrip("$").replace(",", "")


def numbers_in(text: str) -> list[str]:
    """Raw number strings in text, ignoring citation markers like [3]."""
    without_markers = re.sub(r"\[\d+(?:\s*,\s*\d+)*\]", " ", text)
    return _NUMBER.findall(without_markers)


def number_set(text: str) -> set[str]:
    """Every number in text, normalised, with and without a trailing %."""
    out: set[str] = set()
    for raw in numbers_in(text):
        norm = normalise_number(raw)
        out.add(norm)
        out.add(norm.rstrip("%"))
    return out
