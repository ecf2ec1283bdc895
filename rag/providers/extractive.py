"""`local/extractive`, offline answering without a generative model: pick the sentences of the retrieved
passages that best cover the question and quote them verbatim with their citation markers. Quoting verbatim means every
number in the answer is in its cited passage by construction.

A sentence's coverage is the IDF-weighted share of the question's focus terms it contains (IDF taken over
the candidate sentences, so a name found everywhere, like the company's, weighs little and a term found
nowhere, like "dividend" over an earnings note, weighs most). Finance synonyms count as the same term."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.chunking import split_sentences
from rag.prompt_tags import parse_history, parse_passages, parse_tag, prompt_text
from rag.providers.registry import LocalCall, RegisteredModel
from rag.text import tokenize

NOT_FOUND = "NOT_FOUND"

# Words that say what kind of answer is wanted, not what it is about.
_FILLER = frozenset(tokenize(
    """company firm report reported say said tell according document documents note mention mentioned give
    number figure amount value total level see saw seen get got make made take took come came happen
    happened look go went add added exactly please currently latest recent recently anything something
    provide show know large big size stock quarter year period last main biggest primary most""",
    drop_stopwords=False,
))

_SYNONYM_GROUPS = [
    "revenue revenues sales sale topline turnover",
    "guidance guide guided outlook forecast forecasts expect expects expected",
    "buyback buybacks repurchase repurchases repurchased",
    "customer customers client clients provider providers operator operators carrier carriers",
    "deploy deploying deployed deployment deployments rollout rolling implement implementing implemented "
    "implementer adopt adopting adoption adopter adopters use using expanding",
    "grow grew growth rise rose risen increase increased gain gains up higher uplift lift",
    "decline declined fall fell decrease decreased drop dropped down lower",
    "profit profits earnings income",
    "margin margins",
    "receivable receivables",
    "launch launches launched",
]
_GROUP_OF: dict[str, str] = {}
for _group in _SYNONYM_GROUPS:
    _members = tokenize(_group, drop_stopwords=False)
    for _member in _members:
        _GROUP_OF.setdefault(_member, _members[0])

_LIST_QUESTION = re.compile(r"^\s*(who|list|name)\b|^\s*(which|what)\b(?=.*\b[a-z]{3,}[^su\W]s\b)", re.I)
_QUANTITY = re.compile(r"\bhow (much|many|large|big|high|fast)\b|\b(amount|size|percentage|share of)\b", re.I)
_METRICS = frozenset(_GROUP_OF.get(t, t) for t in tokenize("revenue rpo margin arpu eps buyback guidance"))
# A question about one of these is only answered by a sentence that names it: a paraphrase will not do,
# and "Calix's GAAP EPS" must not be answered with its revenue.
_REQUIRED = _METRICS | frozenset(_GROUP_OF.get(t, t) for t in tokenize(
    "dividend ebitda debt cash ceo cfo chairman employee headcount valuation price target capex"))
_ANAPHORA = frozenset("that this it its those these they them their there same".split())

MIN_COVERAGE = 0.5
MIN_COVERAGE_WITH_MEANING = 0.3
MIN_COSINE = 0.5
MAX_LIST_ITEMS = 8
LIST_SHARE_OF_BEST = 0.6
MIN_SENTENCE_CHARS = 25
MIN_SENTENCE_WORDS = 7  # shorter lines are headings or labels


@dataclass
class Candidate:
    n: int
    text: str
    terms: set[str]
    coverage: float = 0.0
    cosine: float = 0.0

    @property
    def score(self) -> float:
        return self.coverage + 0.5 * self.cosine


def _terms(text: str) -> set[str]:
    return {_GROUP_OF.get(t, t) for t in map(_stem, tokenize(text))}


def _stem(token: str) -> str:
    """"geographically" ~ "geographic", "sequentially" ~ "sequential"; BM25 keeps them apart on purpose."""
    if len(token) > 6 and token.endswith("ly"):
        token = token[:-2]
    if len(token) > 7 and token.endswith("al"):
        token = token[:-2]
    return token


def focus_terms(question: str) -> set[str]:
    return _terms(question) - _FILLER


def _units(text: str) -> list[str]:
    """Sentences; runs of short lines (a label and its value, e.g. "Sentiment Score" / "0.62") are
    joined into one unit, and a lone short line (a bullet heading) is dropped."""
    units: list[str] = []
    run: list[str] = []
    for start, end in split_sentences(text):
        piece = " ".join(text[start:end].lstrip("•·-* \t").split())
        if len(piece) < MIN_SENTENCE_CHARS or len(piece.split()) < MIN_SENTENCE_WORDS:
            run.append(piece)
            continue
        if len(run) > 1:
            units.append(" ".join(run))
        run = []
        units.append(piece)
    if len(run) > 1:
        units.append(" ".join(run))
    return units


def _candidates(passages: dict[int, str]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for n, text in passages.items():
        for sentence in _units(text):
            key = sentence.lower()
            if key in seen:  # overlapping chunks repeat sentences
                continue
            seen.add(key)
            out.append(Candidate(n=n, text=sentence, terms=_terms(sentence)))
    return out


def answer(question: str, passages: dict[int, str],
           embed: Callable[[list[str]], np.ndarray] | None = None) -> str:
    """Answer text with [n] markers, or NOT_FOUND. `passages` maps marker number -> passage text."""
    focus = focus_terms(question)
    candidates = _candidates(passages)
    if not focus or not candidates:
        return NOT_FOUND
    total = len(candidates)
    # Questions about a metric, or "how much/many", are answered by a sentence with a number in it.
    quantity = bool(_QUANTITY.search(question)
                    or (focus & _METRICS and re.match(r"\s*(what|how)\b", question, re.I)))
    required = focus & _REQUIRED
    weight = {t: math.log(1 + total / (1 + sum(t in c.terms for c in candidates))) for t in focus}
    denominator = sum(weight.values())
    for c in candidates:
        c.coverage = sum(weight[t] for t in focus & c.terms) / denominator
        if quantity and not any(ch.isdigit() for ch in c.text):
            c.coverage *= 0.5  # "how much" is not answered by a sentence without a number
    if embed is not None:
        vectors = embed([question] + [c.text for c in candidates])
        for c, cos in zip(candidates, vectors[1:] @ vectors[0], strict=True):
            c.cosine = float(cos)

    def answers(c: Candidate) -> bool:
        if not required <= c.terms:
            return False
        return c.coverage >= MIN_COVERAGE or (c.coverage >= MIN_COVERAGE_WITH_MEANING and c.cosine >= MIN_COSINE)

    ranked = sorted((c for c in candidates if answers(c)), key=lambda c: -c.score)
    if not ranked:
        return NOT_FOUND
    if _LIST_QUESTION.search(question):
        best = ranked[0]
        # Items of a list share the question's most distinctive name (capitalised word, e.g. a product)
        # that the best item has; without names, its most distinctive term.
        names = _terms(" ".join(re.findall(r"(?<!^)\b[A-Z][\w-]*", question.strip()))) & best.terms & focus
        anchor = max(names or (focus & best.terms), key=lambda t: weight[t])
        chosen = [c for c in ranked if c.coverage >= LIST_SHARE_OF_BEST * best.coverage
                  and anchor in c.terms][:MAX_LIST_ITEMS]
        # Keep document order so a list reads in the order the source gives it.
        chosen.sort(key=lambda c: candidates.index(c))
    else:
        chosen = ranked[:1]
    return " ".join(f"{c.text} [{c.n}]" for c in chosen)


def rewrite(history: list[tuple[str, str]], followup: str) -> str:
    """Make a follow-up standalone by carrying the previous question along when the follow-up leans on
    it (pronouns, "and ...", or too few content words of its own)."""
    previous = next((content for role, content in reversed(history) if role == "user"), None)
    if previous is None:
        return followup
    words = re.findall(r"[a-z']+", followup.lower())
    leans = (bool(_ANAPHORA & set(words)) or followup.strip().lower().startswith(("and", "what about", "how about"))
             or len(focus_terms(followup)) < 2)
    if not leans:
        return followup
    return f"{followup.strip()} (context: {previous.strip()})"


def handle(call: LocalCall) -> str:
    prompt = prompt_text(call.messages)
    if call.task == "rewrite":
        followup = parse_tag(prompt, "followup")
        if followup is None:
            raise ValueError("local/extractive rewrites need a prompt with <history> and <followup> (rewrite.vN)")
        return rewrite(parse_history(parse_tag(prompt, "history") or ""), followup)
    question = parse_tag(prompt, "question")
    if question is None:
        raise ValueError("local/extractive needs a prompt with <question> and <passages> (answer.vN)")
    embed = call.embedder.embed_batch if call.embedder is not None else None
    return answer(question, parse_passages(prompt), embed)


def register_models(register: Callable[[RegisteredModel], None]) -> None:
    register(RegisteredModel(
        name="local/extractive", tasks=frozenset({"answer", "rewrite"}), handler=handle,
        description="Offline extractive answerer: quotes the retrieved sentences that best cover the question "
        "(not a language model)."))
