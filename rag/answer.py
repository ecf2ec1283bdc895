"""Prompt assembly and the checks every answer gets, whatever the model, sentence by sentence:

- citation markers must point at a retrieved passage (others are removed and listed);
- a sentence that states something must be cited: by its own marker, or by the next marker on its line (models
  often cite once after a run of sentences); otherwise it is listed in `uncited`;
- a cited sentence's numbers must appear in the passages it cites (`ungrounded_numbers`), and its names and most of
  its terms too (`unsupported`): cheap checks that catch a citation stuck on an unrelated claim;
- the answer is an abstention only when it IS one: NOT_FOUND, or sentences that only say the documents do not
  contain the answer. "The passages do not contain Q2 revenue, but Q4 revenue was $206 million [1]." is an answer;
- a reply that reproduces the prompt (its tags or its instructions) is malformed output, not an answer.

`AnswerChecker` takes the reply as it streams and releases checked text only: a sentence is released once it is
complete and the answer is known not to be an abstention, so streamed text is never taken back; the released
text, concatenated, is exactly the final Answer's text. `check_answer` is the same checker fed the whole reply."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from rag.errors import MalformedOutputError
from rag.llm import is_offline
from rag.models import Answer, Citation, Passage, UnsupportedSentence
from rag.prompt_tags import format_passages, has_prompt_markup
from rag.prompts import PromptTemplate
from rag.text import normalise_number, number_set, numbers_in, tokenize

ABSTAIN_MESSAGE = "Not found in the indexed documents."
NOT_FOUND = "NOT_FOUND"
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_MARKER_AT = re.compile(r"[ \t]*\[\d+(?:\s*,\s*\d+)*\]")
_PARTIAL_MARKER = re.compile(r"[ \t]*\[[\d,\s]*")
_ABSTAIN = re.compile(
    r"\bNOT_FOUND\b"
    r"|\bnot (?:found|contained|mentioned|stated|provided|specified|given|available|included|discussed|disclosed"
    r"|reported|covered) (?:in|by|within) (?:the |any )?(?:of the )?(?:provided |given |indexed |retrieved "
    r"|available |numbered )?(?:documents?|passages?|sources?|context|texts?)"
    r"|\b(?:documents?|passages?|sources?|context|texts?) (?:do|does|did) not (?:contain|mention|say|state|provide"
    r"|include|specify|discuss|disclose|give|report|cover)"
    r"|\b(?:no|not enough|insufficient) (?:information|mention|data|details?|figures?) (?:about|on|of|regarding|for)"
    r"|\b(?:cannot|can't|could not|couldn't|unable to|is not possible to) (?:be )?(?:find|found|determine|determined"
    r"|answer|answered|tell|identify)"
    r"|\bI (?:do not|don't) know\b",
    re.IGNORECASE,
)
# A sentence that says what is missing AND goes on to say something else is an answer, not an abstention.
_CONTRAST = re.compile(r"\b(?:but|however|although|though|whereas|while|except|instead)\b|;", re.IGNORECASE)
# Words that say how an answer is framed, not what it claims ("Based on the passages, here is the answer:").
_FRAMING = frozenset(tokenize(
    "passage passages document documents source sources context text answer question information based according "
    "following provided given here summary note sure certainly help hope find found below above", False))
# "Calix, Inc. reported" is one sentence: a period after these does not end one.
_ABBREVIATIONS = frozenset(
    "inc corp co ltd llc plc no vs etc e.g i.e approx est mr mrs ms dr st jan feb mar apr jun jul aug sep sept oct "
    "nov dec u.s u.k fig".split())
_NAME = re.compile(r"\b[A-Z][A-Za-z&-]*[A-Za-z]\b")
MIN_TERMS_FOR_CLAIM = 3
MIN_TERM_SUPPORT = 0.5
MIN_ECHO_CHARS = 20

Kind = Literal["fact", "abstain", "filler"]


def answer_messages(template: PromptTemplate, question: str, passages: list[Passage]) -> list[dict[str, str]]:
    return template.messages(passages=format_passages(passages), question=question)


def abstention(question: str, standalone: str, passages: list[Passage], model: str, template: PromptTemplate,
               timings: dict[str, float], message: str = ABSTAIN_MESSAGE) -> Answer:
    """No answer; `passages` (if any) are the closest ones found, for the reader, never cited."""
    return Answer(question=question, standalone_question=standalone, answer=message, abstained=True,
                  citations=[], passages=passages, model=model, offline_provider=is_offline(model),
                  prompt=template.name, prompt_hash=template.hash, timings_ms=timings)


def _ends_sentence(buf: str, i: int) -> bool:
    """Whether the [.!?] at i can end a sentence: not the period of an abbreviation or an initial."""
    if buf[i] != ".":
        return True
    word = re.search(r"([A-Za-z.]+)$", buf[:i])
    if not word:
        return True
    w = word.group(1).lower().strip(".")
    return not (w in _ABBREVIATIONS or len(w) == 1)


def _without_markers(text: str) -> str:
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", _MARKER.sub(" ", text)))


def split_sentences(buf: str, final: bool) -> tuple[list[str], int]:
    """Complete sentences at the start of `buf` and where the unfinished rest begins. A sentence keeps its leading
    whitespace and its trailing markers ("... $206 million. [1]"); it ends at a newline, or at [.!?] followed by
    whitespace and then anything but a lowercase letter. Until `final`, a boundary that depends on text not yet
    received is left open, so a prefix of a reply splits exactly as the whole reply does."""
    out: list[str] = []
    start = i = 0
    n = len(buf)
    while i < n:
        ch = buf[i]
        if ch == "\n":
            if buf[start:i].strip():
                out.append(buf[start:i])
                start = i
            i += 1
            continue
        if ch in ".!?" and _ends_sentence(buf, i):
            j = i + 1
            while j < n and buf[j] in "\"'”’)":
                j += 1
            k = j
            while (marker := _MARKER_AT.match(buf, k)) is not None:
                k = marker.end()
            if not final and _PARTIAL_MARKER.fullmatch(buf, k):
                break  # a marker may be arriving: it belongs to this sentence
            w = k
            while w < n and buf[w] in " \t":
                w += 1
            if w == n and not final:
                break  # what follows decides
            if w == n or buf[w] == "\n" or (w > k and not buf[w].islower() and buf[w] not in ".,;:"):
                out.append(buf[start:k])
                start = i = k
                continue
        i += 1
    if final and buf[start:].strip():
        out.append(buf[start:])
        start = n
    return out, start


@dataclass
class _Sentence:
    text: str  # cleaned: invalid markers removed, spaces normalised, no trailing whitespace
    cites: list[int]  # its own valid markers, in order
    kind: Kind
    newline: bool  # starts a new line (citations are not borrowed across lines)
    borrowed: list[int] = field(default_factory=list)

    @property
    def plain(self) -> str:
        """The text without its markers, as it reads."""
        return _without_markers(self.text)


@dataclass
class AnswerChecker:
    passages: list[Passage]
    template: PromptTemplate
    raw: str = ""
    removed: list[int] = field(default_factory=list)
    sentences: list[_Sentence] = field(default_factory=list)
    text: str = ""  # released so far
    abstained: bool = False
    _pending: str = ""
    _released: int = 0
    _committed: bool = False
    _finished: bool = False

    def feed(self, delta: str) -> str:
        """Take more of the reply; return the checked text that can be shown now (maybe "")."""
        self.raw += delta
        self._pending += delta
        if has_prompt_markup(self.raw):
            raise MalformedOutputError("the model reproduced the prompt's tags instead of answering (is the server "
                                       "applying the model's chat template?)")
        complete, rest = split_sentences(self._pending, final=False)
        self._pending = self._pending[rest:]
        for piece in complete:
            self._add(piece)
        return self._release()

    def finish(self) -> str:
        """The reply is complete: return the rest of the checked text (the abstention message on abstention)."""
        complete, _ = split_sentences(self._pending, final=True)
        self._pending = ""
        for piece in complete:
            self._add(piece)
        self._finished = True
        if not self._committed and any(s.kind == "abstain" for s in self.sentences):
            self.abstained = True
            self.text = ABSTAIN_MESSAGE
            return ABSTAIN_MESSAGE
        tail = self._release(everything=True)
        if not self.text.strip():
            raise MalformedOutputError(f"the model returned no answer text: {self.raw[:200]!r}")
        return tail

    def _add(self, piece: str) -> None:
        cites: list[int] = []

        def keep_valid(match: re.Match[str]) -> str:
            numbers = [int(x) for x in re.split(r"\s*,\s*", match.group(1))]
            valid = [n for n in numbers if 1 <= n <= len(self.passages)]
            self.removed.extend(n for n in numbers if n not in valid)
            cites.extend(n for n in valid if n not in cites)
            return "".join(f"[{n}]" for n in valid)

        text = _MARKER.sub(keep_valid, piece)
        text = re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).rstrip()
        plain = _without_markers(text)
        self._check_echo(plain)
        sentence = _Sentence(text=text, cites=cites, kind=_kind(plain, cites), newline="\n" in piece[:len(piece)
                             - len(piece.lstrip())])
        self.sentences.append(sentence)
        if sentence.kind == "fact":
            self._committed = True

    def _check_echo(self, plain: str) -> None:
        sentence = " ".join(plain.split())
        if len(sentence) < MIN_ECHO_CHARS:
            return
        if sentence in _instructions(self.template.system, self.template.user):
            raise MalformedOutputError(f"the model repeated the prompt's instructions instead of answering: "
                                       f"{sentence[:120]!r}")

    def _release(self, everything: bool = False) -> str:
        """Text of the sentences not yet released, once the answer is known to be one (or is complete)."""
        if not (self._committed or everything):
            return ""
        out = []
        for sentence in self.sentences[self._released:]:
            # The protocol's abstention token inside an answer is noise, not prose.
            if sentence.kind == "abstain" and sentence.plain.strip(" .\"'\n\t") == NOT_FOUND:
                continue
            # The answer starts at its first non-blank sentence.
            out.append(sentence.text if (self.text or "".join(out)).strip() else sentence.text.lstrip())
        self._released = len(self.sentences)
        released = "".join(out)
        self.text += released
        return released

    def result(self, question: str, standalone: str, model: str, timings: dict[str, float]) -> Answer:
        if not self._finished:
            raise AssertionError("finish() the checker before taking its result")
        if self.abstained:
            return abstention(question, standalone, self.passages, model, self.template, timings)
        shown = [s for s in self.sentences if s.text.strip() and not (
            s.kind == "abstain" and s.plain.strip(" .\"'\n\t") == NOT_FOUND)]
        _borrow_citations(shown)
        used: list[int] = []
        uncited: list[str] = []
        ungrounded: list[str] = []
        unsupported: list[UnsupportedSentence] = []
        for s in shown:
            used.extend(n for n in s.cites if n not in used)
            cites = s.cites or s.borrowed
            if s.kind != "fact":
                continue
            if not cites:
                uncited.append(" ".join(s.plain.split()))
            quotes = " ".join(self.passages[n - 1].text for n in cites)
            grounded = number_set(quotes)
            # `grounded` holds each passage number with and without its %, so "17%" and "17" both match "17%".
            ungrounded += [raw for raw in numbers_in(s.plain) if normalise_number(raw).rstrip("%") not in grounded]
            # The model saw each passage's title and company with it: "Pilgrim's Pride: ..." quoting a passage of
            # Pilgrim's Pride's call that never says "Pride" is supported.
            about = " ".join(f"{self.passages[n - 1].title} {self.passages[n - 1].company or ''}" for n in cites)
            missing = _missing_terms(s.plain, f"{about} {quotes}") if cites else []
            if missing:
                unsupported.append(UnsupportedSentence(sentence=" ".join(s.plain.split()), citations=cites,
                                                       missing=missing))
        citations = [Citation.from_passage(n, self.passages[n - 1]) for n in used]
        return Answer(question=question, standalone_question=standalone, answer=self.text, abstained=False,
                      citations=citations, passages=self.passages, model=model, offline_provider=is_offline(model),
                      prompt=self.template.name, prompt_hash=self.template.hash,
                      removed_citations=sorted(set(self.removed)), ungrounded_numbers=list(dict.fromkeys(ungrounded)),
                      uncited=uncited, unsupported=unsupported, timings_ms=timings)


@lru_cache(maxsize=16)
def _instructions(system: str, user: str) -> str:
    """A template's own words, placeholders left out, whitespace normalised."""
    return " ".join(re.sub(r"\$\{\w+\}", " ", f"{system}\n{user}").split())


def _kind(plain: str, cites: list[int]) -> Kind:
    bare = plain.strip(" .\"'\n\t")
    if bare.upper() == NOT_FOUND:
        return "abstain"
    missing = _ABSTAIN.search(plain)
    # "Sorry, but the documents do not mention it." abstains; "...do not contain Q2, but Q4 was..." answers.
    if missing and not cites and not _CONTRAST.search(plain, missing.end()):
        return "abstain"
    if cites or numbers_in(plain):
        return "fact"
    terms = [t for t in tokenize(plain) if t not in _FRAMING]
    # "The providers are:" introduces a list; it claims nothing by itself.
    if plain.rstrip().endswith(":") or len(terms) < MIN_TERMS_FOR_CLAIM:
        return "filler"
    return "fact"


def _borrow_citations(sentences: list[_Sentence]) -> None:
    """An uncited sentence takes the markers of the next cited sentence on its line."""
    for i, s in enumerate(sentences):
        if s.cites:
            continue
        for later in sentences[i + 1:]:
            if later.newline:
                break
            if later.cites:
                s.borrowed = later.cites
                break


def _missing_terms(sentence: str, quotes: str) -> list[str]:
    """Names (capitalised words after the first) the cited passages lack, or, when fewer than half of the
    sentence's content terms appear in them (a 5-letter prefix counts, so "grew" ~ "growth" does not, but
    "deploying" ~ "deployment" does), the terms they lack."""
    haystack = quotes.lower()
    words = sentence.strip().lstrip("-*• \t").split(" ", 1)
    rest = words[1] if len(words) > 1 else ""
    names = [m.group(0) for m in _NAME.finditer(rest) if m.group(0).lower() not in haystack]
    passage_terms = set(tokenize(quotes))
    prefixes = {t[:5] for t in passage_terms if len(t) >= 5}
    terms = [t for t in dict.fromkeys(tokenize(sentence)) if not t[0].isdigit() and not t.startswith("$")
             and t not in _FRAMING]
    absent = [t for t in terms if t not in passage_terms and not (len(t) >= 5 and t[:5] in prefixes)]
    if terms and len(absent) / len(terms) > 1 - MIN_TERM_SUPPORT:
        named = {n.lower() for n in names}
        names += [t for t in absent if t not in named]
    return list(dict.fromkeys(names))


def check_answer(question: str, standalone: str, raw: str, passages: list[Passage], model: str,
                 template: PromptTemplate, timings: dict[str, float]) -> Answer:
    """Turn a whole raw model reply into a checked Answer (the streaming checker, fed at once)."""
    checker = AnswerChecker(passages, template)
    checker.feed(raw)
    checker.finish()
    return checker.result(question, standalone, model, timings)
