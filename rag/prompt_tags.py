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
_PASSAGE = re.compile(r'<passage id="(\d+)"[^>]*>\n?(.*?)\n?</passage>', re.DOTALL)
_TURN = re.compile(r"^(user|assistant): (.*)$", re.MULTILINE)


def format_passages(passages: Sequence[Passage]) -> str:
    return "\n".join(
        f'<passage id="{n}" title="{html.escape(p.title)}" doc="{html.escape(p.doc_id)}">\n{p.text}\n</passage>'
        for n, p in enumerate(passages, start=1)
    )


def format_history(history: Sequence[Turn]) -> str:
    return "\n".join(f"{t.role}: {' '.join(t.content.split())}" for t in history)


def prompt_text(messages: Sequence[dict[str, object]]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages)


def parse_tag(text: str, name: str) -> str | None:
    match = re.search(f"<{name}>\n?(.*?)\n?</{name}>", text, re.DOTALL)
    return match.group(1).strip() if match else None


def parse_passages(text: str) -> dict[int, str]:
    """Marker number -> passage text. Only the first occurrence of a number counts (a repair turn repeats none)."""
    found: dict[int, str] = {}
    for n, body in _PASSAGE.findall(text):
        found.setdefault(int(n), body)
    return found


def parse_history(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _TURN.finditer(text)]


def has_prompt_markup(text: str) -> bool:
    return _MARKUP.search(text) is not None
