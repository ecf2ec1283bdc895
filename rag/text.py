"""Tokens and numbers, shared by BM25, the offline provider and the citation checks so that all three
agree on what "the same number" or "the same word" means."""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

import Stemmer

# Question words and fillers on top of a standard English list: they carry no topic. Their stems are added
# below, so the set works on folded tokens too.
_STOPWORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there
    these they this to was will with what which who whom whose when where why how much many did does do
    doe has have had its it's i me my we our you your he she him her them than so any all about from
    out over can could would should may might also just been being were per vs via during while between among""".split()
)

# Numbers ($206, 2.6%, 1,600); then runs of letters and digits, so period and product labels stay whole (Q3, H1,
# FY2020, 5G, 3M); words may carry a possessive.
# An ampersand's initials ("A&T", "AS&I", "M&A") are one word: split, they leave a lone letter or none.
_TOKEN = re.compile(r"\$?\d+(?:[.,]\d+)*%?(?![^\W_])|(?<![^\W_])[^\W\d_]{1,3}&[^\W\d_]{1,3}(?:['’]s)?(?![^\W_])|"
                    r"[^\W_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_stemmers = threading.local()
# Amounts, percents and counts, e.g. $206 million, 2.6%, 1,600, 204. Years and quarter labels (Q4)
# are numbers too: an answer must not invent them either.
_NUMBER = re.compile(r"(?<![\w.])\$?\d+(?:,\d{3})*(?:\.\d+)?%?")


# Finance phrasings folded to one token on both the index and the query side (matched on lowercased text).
_PHRASES = [
    (re.compile(r"\b(fourth|4th)[ -]quarter\b"), "q4"),
    (re.compile(r"\b(third|3rd)[ -]quarter\b"), "q3"),
    (re.compile(r"\b(second|2nd)[ -]quarter\b"), "q2"),
    (re.compile(r"\b(first|1st)[ -]quarter\b"), "q1"),
    (re.compile(r"\b(first|1st)[ -]half\b"), "h1"),
    (re.compile(r"\b(second|2nd)[ -]half\b"), "h2"),
    (re.compile(r"\bfull[ -]year\b"), "fy"),
    (re.compile(r"\bremaining performance obligations?\b"), "rpo"),
    (re.compile(r"\baverage revenue per user\b"), "arpu"),
    (re.compile(r"\bnon[- ]?performing loans?\b|\bnpls\b"), "npl"),
    (re.compile(r"\b(buy|bought|buying)[ -]?backs?\b"), "buyback"),
    (re.compile(r"\bearnings per share\b"), "eps"),
    (re.compile(r"\b(?:research and development|r ?& ?d|r and d)\b"), "rnd"),
    (re.compile(r"\brepurchas\w*"), "buyback"),
    (re.compile(r"\bcash-?flows?\b"), "cash flow"),
    (re.compile(r"\b(quarter[ -](?:over|on)[ -]quarter|q/q|qoq)\b"), "sequentially"),
    (re.compile(r"\be-(?=commerce|mail|bike|scooter)"), "e"),  # "e-commerce" and "eCommerce" meet
    # An analyst's shorthand, written out as calls say it: "GM up 130 bps YoY" meets "improved 130 basis points
    # year over year", "top line" the revenue, "FCF" the free cash flow.
    (re.compile(r"\bbps\b"), "basis points"),
    (re.compile(r"\b(?:yoy|y/y|year[ -]on[ -]year)\b"), "year over year"),
    (re.compile(r"\btop[ -]line\b"), "revenue"),
    (re.compile(r"\bbottom[ -]line\b(?!\s+(?:is|was|here)\b)"), "net income"),  # not "the bottom line is..."
    (re.compile(r"\bfcf\b"), "free cash flow"),
    (re.compile(r"\bopex\b"), "operating expenses"),
    (re.compile(r"\bgrowth rates?\b"), "growth"),  # "sequential growth rates": the growth
    # An analyst's "1Q21", "4Q2020", "2H21": the quarter or half, then its year.
    (re.compile(r"\b([1-4]q|[12]h)[ ']?((?:19|20)?\d{2})\b"),
     lambda m: f"{m.group(1)[1]}{m.group(1)[0]} {m.group(2) if len(m.group(2)) == 4 else '20' + m.group(2)}"),
    (re.compile(r"\bcovid[- ]?19\b"), "covid"),  # "COVID-19": no figure 19
    (re.compile(r"\b([a-z]{1,3}) & ([a-z]{1,3})\b"), r"\1&\2"),  # "M & A" is written "M&A" too
    (re.compile(r"\bhead[ -]count\b"), "headcount"),
    (re.compile(r"\bcapital (?:expenditures?|spend(?:ing)?)\b"), "capex"),
    (re.compile(r"\bmw\b"), "megawatts"),
    (re.compile(r"\bgw\b"), "gigawatts"),
]


def _stem(word: str) -> str:
    """Snowball (Porter 2) English stem: "paying"/"pay", "carried"/"carry", "revenues"/"revenue" meet. One
    stemmer per thread: PyStemmer objects are not thread-safe."""
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return stemmer.stemWord(word)


@lru_cache(maxsize=200_000)
def _fold(token: str) -> str:
    token = token.lower().lstrip("$").replace("’", "'")
    if not token.isascii():  # "Itaú" / "Itau", "México" / "Mexico": accents dropped
        token = "".join(ch for ch in unicodedata.normalize("NFKD", token) if not unicodedata.combining(ch))
        if not token:
            return token
    if token[0].isdigit():
        return token.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?%?", token) else token
    if token.endswith("'s"):
        token = token[:-2]
    token = token.replace("'", "")
    if "&" in token:
        return re.sub(r"(?<=&[a-z])s$", "", token)  # "M&As" are M&A
    if any(ch.isdigit() for ch in token):
        return token
    stem = _stem(token)
    return _IRREGULAR.get(stem, stem)


# Forms the stemmer leaves apart: "shipped" and "shipments", "pay", "paid" and "payments" meet.
_IRREGULAR = {"shipment": "ship", "payment": "pay", "paid": "pay", "bought": "buy", "grew": "grow", "spent": "spend",
              "sold": "sell", "rose": "rise", "fell": "fall", "lost": "lose", "held": "hold", "brought": "bring",
              # ...and a region's adjective from its name: "European sales" answer "What about Europe?"
              "european": "europ", "american": "america", "asian": "asia", "african": "africa", "chines": "china",
              "canadian": "canada", "mexican": "mexico", "brazilian": "brazil", "german": "germani", "indian": "india",
              "japanes": "japan", "australian": "australia"}


MONTHS = "january february march april may june july august september october november december".split()

# Period labels as folded: q3, h1, fy, a year, or a fiscal year written as one word (fy2018, fy22).
# Years are 1990-2039 only: "1,906" folds to 1906 and is an amount, not a year.
# Labels may combine: "fy2023q1", "q1fy22", "2023q2".
PERIOD = re.compile(r"^(?=.)(q[1-4]|h[12])?(fy)?(199\d|20[0-3]\d|(?<=fy)\d\d)?(q[1-4]|h[12])?$")


def period_labels(terms: set[str]) -> set[str]:
    """The period labels among folded `terms`, a combined label also as its parts and a fiscal year also as its
    calendar year ("fy2023q1" -> q1, 2023; "fy22" -> 2022), so a question about FY2018 meets a page that says
    2018."""
    found: set[str] = set()
    for t in terms:
        match = PERIOD.match(t)
        if match:
            found.add(t)
            quarter = match.group(1) or match.group(4)
            year = match.group(3)
            if quarter and t != quarter:
                found.add(quarter)
            if year:
                found.add(year if len(year) == 4 else "20" + year)
    return found


# "Which companies...", "who...", "list...": questions whose answer gathers items, often from several documents.
# "Which banks...", "What new products...": a plural noun within the first three words after which/what, not
# after a verb ("What was Texas Instruments' revenue", "What were Monro's sales" ask for one figure).
_NOT_VERB = r"(?!(?:was|were|is|are|did|does|do|has|have|had|will|would|can|could|should)\b)"
# A figure's name that is plural in form is not a list ("What sales does Monro expect").
_ONE_FIGURE = r"(?!(?:sales|earnings|revenues|proceeds|savings)\b)"
_LIST_QUESTION = re.compile(rf"^\s*(?:who|list|name)\b|^\s*(?:which|what)\s+(?:{_NOT_VERB}[\w'-]+\s+){{0,2}}"
                            rf"{_NOT_VERB}{_ONE_FIGURE}[a-z]{{2,}}[^su\W'’]s\b", re.I)


def is_list_question(question: str) -> bool:
    return bool(_LIST_QUESTION.search(question))


# "Which companies talked about PG&E's emergence from bankruptcy?": the companies asked for are the unnamed subject,
# so a name later in the question is what they talked about, not who is asked about.
_WHICH_COMPANIES = re.compile(r"^\s*(?:which|what)\s+(?:[\w-]+\s+){0,2}?(?:companies|firms|businesses|banks|lenders|"
                              r"insurers|utilities|retailers|airlines|operators|manufacturers|producers|peers)\b", re.I)


def asks_which_companies(question: str) -> bool:
    return bool(_WHICH_COMPANIES.search(question))


STOPWORDS = _STOPWORDS | frozenset(_stem(w) for w in _STOPWORDS)


_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
          "seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_VALUE = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_NUMBER_WORD = "|".join(sorted(_VALUE, key=len, reverse=True))
_SPELLED = re.compile(
    rf"\b(?P<int>(?:{_NUMBER_WORD})(?:[\s-]+(?:and[\s-]+)?(?:hundred|{_NUMBER_WORD}))*)"
    rf"(?P<frac>\s+and\s+a\s+half|\s+point(?:\s+(?:{'|'.join(_UNITS[:10])}))+)?\b")
_PERCENT = re.compile(r"(\d(?:[\d.,]*\d)?)\s*(?:percent|per cent)\b")


def _spelled_value(match: re.Match[str]) -> str:
    total, current = 0, 0
    for word in re.split(r"[\s-]+", match.group("int").lower()):
        if word == "hundred":
            current = max(current, 1) * 100
        elif word != "and":
            current += _VALUE[word]
    total += current
    frac = (match.group("frac") or "").lower()
    if "half" in frac:
        return f"{total}.5"
    if frac:
        return f"{total}." + "".join(str(_VALUE[w]) for w in frac.split()[1:])
    return str(total)


def spelled_numbers_to_digits(text: str) -> str:
    """ "four and a half percent" -> "4.5%", "seventy five million" -> "75 million" (on lowercased text):
    transcripts of speech spell numbers out, questions and filings write digits; both sides are folded alike."""
    return _PERCENT.sub(r"\1%", _SPELLED.sub(_spelled_value, text))


# Bump whenever tokenize's output changes for any text (a phrase rule, the stemmer, a fold). Each index segment
# records the version its BM25 postings were built with; a segment of another version is re-tokenised when read
# (rag.index.segment), since query terms folded one way never meet postings folded another. It covers tokenize
# only: a change to what is indexed (rag.chunking.context_line, index_text) changes the vectors too, and needs
# a re-ingest.
# 2: e-commerce -> ecommerce; 3: R&D -> rnd; 4: bps, YoY, FCF, COVID-19, 1Q21, shipments/ship...;
# 5: A&T and M & A, head count, capital spending, MW.
TOKENIZER_VERSION = 5


def tokenize(text: str, drop_stopwords: bool = True) -> list[str]:
    # Lowercase once: case-insensitive patterns cost several times more, and tokens are folded to lower anyway.
    text = spelled_numbers_to_digits(text.lower())
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    tokens = (_fold(t) for t in _TOKEN.findall(text))
    return [t for t in tokens if t and (not drop_stopwords or t not in STOPWORDS)]


# Forward-looking words: a question with them asks for guidance, not results.
OUTLOOK_WORDS = frozenset(tokenize("guidance guide outlook expect forecast target plan anticipate will project goal",
                                   drop_stopwords=False))
# Those that are rarely nouns of something else ("price target", "pension plan", "project backlog" are not outlooks).
_OUTLOOK_VERBS = OUTLOOK_WORDS - frozenset(tokenize("target plan project goal", drop_stopwords=False))
# A result measured against guidance ("at the high end of guidance", "ahead of our outlook", "relative to
# guidance") reports, it does not guide: those words make nothing an outlook.
MEASURED_AGAINST = re.compile(
    r"\b(?:(?:high|low|top|upper|lower|bottom|midpoint|middle) (?:end )?of|above|below|ahead of|exceed(?:ed|ing)?|"
    r"beat|in line with|within|versus|vs\.?|compared? (?:to|with)|relative to|against|meet|met) "
    r"(?:the |our |its |their )?(?:[\w-]+ ){0,3}(?:guidance|outlook|forecast|expectations?|guided range|range|"
    r"plan|budget|target)\b|"
    # "up 1% and about as expected", "better than we had anticipated": a result, not an outlook.
    r"\b(?:as|than)\s+(?:we\s+|they\s+|i\s+)?(?:had\s+)?(?:previously\s+|originally\s+|initially\s+)?"
    r"(?:expected|anticipated|planned|forecast|guided)\b",
    re.I)


def asks_for_outlook(question: str) -> bool:
    """Whether a question asks what a company expects ("What EPS does NextEra expect for 2021?"), not what it
    reported, measured against guidance or not ("Did FY2017 revenue beat guidance?")."""
    return bool(_OUTLOOK_VERBS & set(tokenize(MEASURED_AGAINST.sub(" ", question), drop_stopwords=False)))


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


def is_subject(text: str, name: str) -> bool:
    """Whether a sentence (or line) of `text` begins with `name`, folded alike (case, accents, possessives)."""
    wanted = tokenize(name, drop_stopwords=False)
    if not wanted:
        return False
    for line in re.split(r"(?<=[.!?])\s+|\n+", text):
        words = tokenize(line.lstrip(" \t•·-*"), drop_stopwords=False)
        if words[:len(wanted)] == wanted:
            return True
    return False
