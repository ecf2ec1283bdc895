"""Prompt assembly and the checks every answer gets, whatever the model: citation markers must point at a
retrieved passage, numbers must appear in a cited passage, and "not in the documents" becomes a clean
abstention."""

from __future__ import annotations

import re

from rag.llm import is_offline
from rag.models import Answer, Citation, Passage
from rag.prompt_tags import format_passages
from rag.prompts import PromptTemplate
from rag.text import normalise_number, number_set, numbers_in

ABSTAIN_MESSAGE = "Not found in the indexed documents."
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_ABSTAIN = re.compile(
    r"NOT_FOUND|not (?:found|contained|mentioned|stated|provided) in the (?:indexed )?(?:documents|passages)"
    r"|(?:documents|passages) do not (?:contain|mention|say|provide)",
    re.IGNORECASE,
)


def answer_messages(template: PromptTemplate, question: str, passages: list[Passage]) -> list[dict[str, str]]:
    return template.messages(passages=format_passages(passages), question=question)


def abstention(question: str, standalone: str, passages: list[Passage], model: str, template: PromptTemplate,
               timings: dict[str, float], message: str = ABSTAIN_MESSAGE) -> Answer:
    """No answer; `passages` (if any) are the closest ones found, for the reader, never cited."""
    return Answer(question=question, standalone_question=standalone, answer=message, abstained=True,
                  citations=[], passages=passages, model=model, offline_provider=is_offline(model),
                  prompt=template.name, prompt_hash=template.hash, timings_ms=timings)


def check_answer(question: str, standalone: str, raw: str, passages: list[Passage], model: str,
                 template: PromptTemplate, timings: dict[str, float]) -> Answer:
    """Turn raw model text into a checked Answer."""
    if _ABSTAIN.search(raw) or not raw.strip():
        return abstention(question, standalone, passages, model, template, timings)
    removed: list[int] = []
    used: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.split(r"\s*,\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= len(passages)]
        removed.extend(n for n in numbers if n not in valid)
        used.extend(n for n in valid if n not in used)
        return "".join(f"[{n}]" for n in valid)

    text = _MARKER.sub(keep_valid, raw).strip()
    text = re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", text))
    citations = [Citation.from_passage(n, passages[n - 1]) for n in used]
    grounded: set[str] = set()
    for c in citations:
        grounded |= number_set(c.quote)
    # `grounded` holds each passage number with and without its %, so "17%" and "17" both match "17%".
    ungrounded = [raw_n for raw_n in numbers_in(text) if normalise_number(raw_n).rstrip("%") not in grounded]
    return Answer(question=question, standalone_question=standalone, answer=text, abstained=False,
                  citations=citations, passages=passages, model=model, offline_provider=is_offline(model),
                  prompt=template.name, prompt_hash=template.hash, removed_citations=sorted(set(removed)),
                  ungrounded_numbers=list(dict.fromkeys(ungrounded)), timings_ms=timings)
