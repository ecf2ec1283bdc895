"""The one owner of the tag format the prompts use (`<passage id="n">`, `<question>`, `<history>`, `<followup>`):
it renders values into those tags and parses them back. Offline providers read their structured input
(question, passages, history) through `parse_*` here, so rendering and parsing cannot drift apart; a test
renders every shipped prompt and parses it back."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from rag.models import Passage, Turn

# Any tag a prompt renders. A reply containing one reproduces the prompt instead of answering it.
_MARKUP = re.compile(r'</?(?:passages|question|history|followup|document)>|<passage id="|<document id="')
_PASSAGE = re.compile(r'<passage id="(\d+)"([^>]*)>\n?(.*?)\n?</passage>', re.DOTALL)
_ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
# A document's own bracketed numbers ("see [2]") would read as citation markers in an answer that quotes them.
_MARKER_IN_TEXT = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_TURN = re.compile(r"^(user|assistant): (.*)$", re.MULTILINE)


def format_passages(passages: Sequence[Passage]) -> str:
    """Numbered passages with their document's title, id, company and tickers. Bracketed numbers inside the text become
    parentheses, so only the prompt's own numbering can be cited."""
    def one(n: int, p: Passage) -> str:
        company = f' company="{html.escape(p.company)}"' if p.company else ""
        company += f' tickers="{html.escape(",".join(p.tickers))}"' if p.tickers else ""
        company += f' section="{p.section}"' if p.section else ""
        body = _MARKER_IN_TEXT.sub(r"(\1)", p.text)
        attributes = f'id="{n}" title="{html.escape(p.title)}" doc="{html.escape(p.doc_id)}"{company}'
        return f"<passage {attributes}>\n{body}\n</passage>"

    return "\n".join(one(n, p) for n, p in enumerate(passages, start=1))


def format_history(history: Sequence[Turn]) -> str:
    return "\n".join(f"{t.role}: {' '.join(t.content.split())}" for t in history)


def prompt_text(messages: Sequence[dict[str, object]]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages)


def parse_tag(text: str, name: str) -> str | None:
    match = re.search(f"<{name}>\n?(.*?)\n?</{name}>", text, re.DOTALL)
    return match.group(1).strip() if match else None


def parse_passages(text: str) -> dict[int, str]:
    """Marker number -> passage text. Only the first occurrence of a number counts (a repair turn repeats none)."""
    return {n: body for n, (body, _) in parse_passages_with_attributes(text).items()}


def parse_passages_with_attributes(text: str) -> dict[int, tuple[str, dict[str, str]]]:
    """Marker number -> (passage text, its tag's attributes: title, doc, company)."""
    found: dict[int, tuple[str, dict[str, str]]] = {}
    for n, attributes, body in _PASSAGE.findall(text):
        found.setdefault(int(n), (body, {k: html.unescape(v) for k, v in _ATTRIBUTE.findall(attributes)}))
    return found


def parse_history(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _TURN.finditer(text)]


def has_prompt_markup(text: str) -> bool:
    return _MARKUP.search(text) is not None
