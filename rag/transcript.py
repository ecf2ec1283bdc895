"""Who says what in a document, before its sentiment is scored: an earnings-call transcript's prepared remarks,
analysts' questions, management's answers, the operator's script, and safe-harbour or courtesy lines; any other
document is the author's `body`. Every segment keeps exact character offsets into the document text, so evidence
cut from it still points at the words it quotes.

Why: management speech is positive by convention, and a scorer that reads a whole call also scores the operator's
"thank you, please go ahead", the lawyers' forward-looking-statements paragraph and analysts' "congratulations on a
great quarter" as if they were the company's own statements about its quarter. Sentiment is what management (or a
document's author) asserts, so those are weighted by `SECTION_WEIGHTS`.

Transcripts are recognised by their speaker turns ("Speaker 3: ...", turns separated by blank lines, the format of
the Earnings-21/22 transcripts and most exports). Roles are read from what is said, since speaker numbers carry no
role: an operator turn is a short turn of the operator's script ("next question comes from ...", "press star one");
the question-and-answer part starts at the first operator turn that opens it after someone has spoken at length;
speakers heard before it are management; after it, a speaker whose first turn follows the operator's hand-over
("... question comes from X") asks the questions, and management answers them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rag.chunking import split_sentences

Section = Literal["prepared", "question", "answer", "operator", "safe_harbour", "courtesy", "body"]

# How much each section counts in a document's sentiment (rag.providers.finance_sentiment; README, Sentiment).
# Management's prepared remarks and answers are its own statements about the quarter. Answers weigh a little less:
# they are spoken off the cuff, lean on the analyst's framing, and repeat the prepared numbers. Analysts' questions
# are other people's opinions (often a courtesy "great quarter"), the operator's script and safe-harbour text say
# nothing about the quarter, and courtesy lines ("thanks, Jeff, great question") are manners, not assessments.
SECTION_WEIGHTS: dict[str, float] = {
    "prepared": 1.0, "answer": 0.8, "body": 1.0,
    "question": 0.0, "operator": 0.0, "safe_harbour": 0.0, "courtesy": 0.0,
}
# Within management's spoken sections, a sentence that states no figure ("we're really excited about the momentum
# in the business") counts this much of its section's weight. A quarter's results are said with numbers; the rest of
# a call's speech is positive by convention whatever the quarter. Chosen on the dev split of the earnings sentiment
# gold set (0.25 over 1 and 0.5: Spearman of score with label 0.70 -> 0.77, bad calls below every good one 3 -> 5 of
# 6); written documents (`body`) are not affected.
FIGURELESS_WEIGHT = 0.25
_SPOKEN: frozenset[str] = frozenset({"prepared", "answer"})
_FIGURE = re.compile(r"\d|\b(percent|basis points?|million|billion|thousand|hundred|half|double[ds]?|tripled?)\b",
                     re.I)
# Sections a scorer never needs to see: they carry nothing about the quarter, even as context.
SKIPPED: frozenset[str] = frozenset({"operator", "safe_harbour", "courtesy"})

_TURN = re.compile(r"^Speaker (\d+):[ \t]*", re.MULTILINE)
# The operator's script: greetings to the conference, hand-overs to and from the questioners, line instructions.
_OPERATOR = re.compile(
    r"\b(ladies and gentlemen|thank you for standing by|welcome to (the|today'?s|our)\b.{0,80}\b(call|conference|"
    r"webcast|presentation)|(your|our|the) (first|next|last|final) question|question (comes|is coming|will come) "
    r"from|questions? (is|are) from|please (go ahead|proceed)|your line is (now )?open|press (\*|star)|"
    r"(listen|listening)[- ]only|(this|the) (conference|call) (is being|will be) recorded|no further questions|"
    r"(concludes|conclude) (today'?s|our|the|this)|you may (now )?disconnect|question[- ]and[- ]answer session|"
    r"(have|has) the floor|open (up )?the (line|call|floor)|(star|\*) (then )?(one|1|the number one))\b", re.I)
# What opens the question-and-answer part (said by the operator or a host).
_QA_OPENS = re.compile(r"\bquestion|\bq ?(&|and) ?a\b|press (\*|star)|the floor\b", re.I)
# Safe-harbour and disclosure boilerplate, read sentence by sentence.
_SAFE_HARBOUR = re.compile(
    r"forward[- ]looking (statements?|information)|safe[- ]harbou?r|risks? and uncertaint|risk factors|"
    r"actual (results|outcomes) (may|could|might) (differ|vary)|(non-gaap|non-ifrs|ifrs|gaap) (financial )?"
    r"(measures?|reconciliation)|reconciliations? (of|to|between|with)|(annual report|form 10-?[kq]|sec filings?|"
    r"press release)\b.{0,60}\b(available|filed|posted|website)|undertakes? no (obligation|duty)|"
    r"(these|such) statements (include|are|involve)|not (intended to be )?considered in isolation|"
    r"(is|are) (being )?recorded|may not be reproduced|replay (of|will be)", re.I)
# Thanks and greetings: a management sentence of manners, which reads "positive" to any sentiment classifier.
_COURTESY = re.compile(
    r"^\W*((and )?(thank you|thanks)( (very|so) much)?|good (morning|afternoon|evening|day)|hi|hello|morning|"
    r"(great|good|fair) question|congratulations|congrats|appreciate( it| that)?)"
    r"\b[\w\s,.'!-]{0,40}$", re.I)
OPERATOR_TURN_MAX_CHARS = 700  # longer turns are somebody's statement even when they mention the next question


@dataclass(frozen=True)
class Segment:
    """`text[start:end]` of the document, one section, said by `speaker` (None outside transcripts)."""

    start: int
    end: int
    section: Section
    speaker: int | None = None

    @property
    def weight(self) -> float:
        return SECTION_WEIGHTS[self.section]


@dataclass(frozen=True)
class _Turn:
    speaker: int
    start: int  # the text after "Speaker N: "
    end: int


def _turns(text: str) -> list[_Turn]:
    marks = list(_TURN.finditer(text))
    turns = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        while end > mark.end() and text[end - 1].isspace():
            end -= 1
        turns.append(_Turn(int(mark.group(1)), mark.end(), end))
    return turns


def is_transcript(text: str) -> bool:
    return len(_TURN.findall(text[:20_000])) >= 3


def sentence_section(sentence: str, default: Section) -> Section:
    """`default`, unless the sentence is safe-harbour boilerplate or a courtesy line."""
    if _SAFE_HARBOUR.search(sentence):
        return "safe_harbour"
    if default in ("prepared", "answer", "body") and _COURTESY.match(sentence):
        return "courtesy"
    return default


def sentence_weight(sentence: str, section: str) -> float:
    """How much one sentence of `section` counts in a document's sentiment: its section's weight (after
    `sentence_section`), times FIGURELESS_WEIGHT for a spoken management sentence without a figure."""
    if section not in SECTION_WEIGHTS:
        section = "body"
    kind = sentence_section(sentence, section)  # type: ignore[arg-type]  # a known section, checked above
    weight = SECTION_WEIGHTS[kind]
    if kind in _SPOKEN and not _FIGURE.search(sentence):
        weight *= FIGURELESS_WEIGHT
    return weight


def _turn_sections(text: str, turns: list[_Turn]) -> list[Section]:
    def is_operator(t: _Turn) -> bool:
        return t.end - t.start <= OPERATOR_TURN_MAX_CHARS and bool(_OPERATOR.search(text[t.start:t.end]))

    operator = [is_operator(t) for t in turns]
    spoken_at_length = False
    qa_start = len(turns)
    for i, t in enumerate(turns):
        if operator[i] and spoken_at_length and _QA_OPENS.search(text[t.start:t.end]):
            qa_start = i
            break
        if not operator[i] and t.end - t.start > 400:
            spoken_at_length = True
    management = {t.speaker for i, t in enumerate(turns[:qa_start]) if not operator[i]}
    # An operator turn hands over to an analyst; a management speaker is never one, even when the operator's last
    # words precede an answer.
    analysts: set[int] = set()
    seen: set[int] = set()
    for i in range(qa_start, len(turns)):
        t = turns[i]
        if operator[i] or t.speaker in management:
            continue
        if t.speaker not in seen and i > 0 and operator[i - 1]:
            analysts.add(t.speaker)
        seen.add(t.speaker)
    sections: list[Section] = []
    for i, t in enumerate(turns):
        if operator[i]:
            sections.append("operator")
        elif i < qa_start:
            sections.append("prepared")
        else:
            sections.append("question" if t.speaker in analysts else "answer")
    return sections


def segments(text: str) -> list[Segment]:
    """The document cut into sections, in order, each sentence in exactly one segment; whitespace and speaker labels
    belong to none. Consecutive sentences of one section and speaker form one segment."""
    if is_transcript(text):
        turns = _turns(text)
        spans = [(t.start, t.end, section, t.speaker) for t, section in zip(turns, _turn_sections(text, turns),
                                                                          strict=True)]
    else:
        spans = [(0, len(text), "body", None)]
    out: list[Segment] = []
    for start, end, section, speaker in spans:
        for s, e in split_sentences(text[start:end]):
            kind = section if section == "operator" else sentence_section(text[start + s:start + e], section)
            last = out[-1] if out else None
            if last and last.section == kind and last.speaker == speaker:
                out[-1] = Segment(last.start, start + e, kind, speaker)
            else:
                out.append(Segment(start + s, start + e, kind, speaker))
    return out
