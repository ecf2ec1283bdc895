"""Document -> Chunks: whole sentences packed to a target size, with overlap, keeping exact offsets
so that `document.text[chunk.start:chunk.end] == chunk.text` always holds."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rag.models import Chunk, Document, sha256_hex
from rag.settings import ChunkingSettings

TokenCounter = Callable[[list[str]], list[int]]


def context_line(title: str, tickers: list[str], metadata: dict[str, Any]) -> str:
    """What a chunk's index representation (its embedding and BM25 terms) carries about its document: a
    transcript rarely says its own company's name, so without this a chunk of GE's call cannot match "GE".
    Citations keep the exact offsets of the chunk text itself; this line is never part of a span."""
    parts = [title.strip()]
    company = str(metadata.get("company") or "").strip()
    if company and company.lower() not in title.lower():
        parts.insert(0, company)
    if tickers and not any(t.lower() in title.lower() for t in tickers):
        parts.append(", ".join(tickers))
    period = str(metadata.get("quarter") or "").strip()
    if period and period.lower() not in title.lower():
        parts.append(period)
    return " | ".join(p for p in parts if p)


def index_text(context: str, chunk_text: str) -> str:
    return f"{context}\n{chunk_text}" if context else chunk_text

# A sentence ends at . ! ? (optionally followed by a closing quote/bracket) before whitespace and a
# capital/digit/bullet, or at a line break. Decimals such as 2.6% or "U.S. broadband" are not split.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)\]]?\s+(?=[A-Z0-9\"“(\[•$])|\n+")


# A title's period ends no sentence ("Mr. Kim", "Dr. Reddy"). An initialism's ("U.S.", "J.P.") ends one unless a name
# goes on: an acronym ("U.S. GAAP") or two capitalised words that do not open a sentence ("the U.S. Consumer Product
# Safety Commission"); "...in the U.S. Revenue in Europe was..." and "...in the U.S. Total revenue..." are two.
_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Prof)\.$")
_INITIALISM = re.compile(r"\b(?:[A-Z]\.){2,}$")
_OPENERS = ("A|All|Also|An|And|As|At|But|By|For|However|I|If|In|It|Its|Now|On|Our|So|That|The|Their|Then|There|These|"
            "They|This|Those|We|When|While|With|You")
_NAME_GOES_ON = re.compile(rf"[A-Z]{{2,}}\b|(?!(?:{_OPENERS})\b)[A-Z][a-z]+\s+[A-Z]")


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    if match.group().startswith("\n"):
        return True
    before = text[max(0, match.start() - 12):match.start()]
    if _TITLE.search(before):
        return False
    return not (_INITIALISM.search(before) and _NAME_GOES_ON.match(text, match.end()))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans (start, end) of sentences, stripped of surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        if not _ends_sentence(text, match):
            continue
        _add_stripped(text, pos, match.start() if match.group().startswith("\n") else match.end(), spans)
        pos = match.end()
    _add_stripped(text, pos, len(text), spans)
    return spans


def _add_stripped(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def _split_long(text: str, span: tuple[int, int], max_chars: int) -> list[tuple[int, int]]:
    """Cut a sentence longer than max_chars at the last space before the limit."""
    start, end = span
    pieces = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars)
        if cut <= start:
            cut = start + max_chars
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    pieces.append((start, end))
    return pieces


def _fit_tokens(text: str, units: list[tuple[int, int]], count_tokens: TokenCounter,
                budget: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Split units (sentences) the model would truncate, until each fits `budget` tokens; returns the units and
    their token counts (without the model's special tokens)."""
    special = count_tokens([""])[0]
    for _ in range(4):  # each round cuts an offender to the char length its token density allows
        counts = [n - special for n in count_tokens([text[a:b] for a, b in units])]
        if all(n <= budget for n in counts):
            return units, counts
        refined: list[tuple[int, int]] = []
        for (start, end), n in zip(units, counts, strict=True):
            if n <= budget:
                refined.append((start, end))
            else:
                max_chars = max(1, int((end - start) * budget / n * 0.9))
                refined.extend(_split_long(text, (start, end), max_chars))
        units = refined
    return units, [n - special for n in count_tokens([text[a:b] for a, b in units])]


def chunk_document(doc: Document, settings: ChunkingSettings,
                   count_tokens: TokenCounter | None = None, reserved_tokens: int = 0) -> list[Chunk]:
    """With `count_tokens` (the embedding model's tokenizer) chunks also stay within `settings.max_tokens` less
    `reserved_tokens` (the context line embedded with each chunk), so the model never silently truncates one."""
    if reserved_tokens and settings.max_tokens:
        settings = settings.model_copy(update={"max_tokens": max(32, settings.max_tokens - reserved_tokens)})
    text = doc.text
    units: list[tuple[int, int]] = []
    for span in split_sentences(text):
        units.extend(_split_long(text, span, settings.max_chars))
    weights: list[int] | None = None
    if count_tokens is not None and settings.max_tokens and units:
        units, weights = _fit_tokens(text, units, count_tokens, settings.max_tokens - 2)
    weight_of = dict(zip(units, weights, strict=True)) if weights is not None else {}

    # A chunk never spans two PDF pages, so its page number is exact.
    groups: dict[int | None, list[tuple[int, int]]] = {}
    for unit in units:
        groups.setdefault(doc.page_at(unit[0]), []).append(unit)
    chunks: list[Chunk] = []
    for page, group in groups.items():
        group_weights = [weight_of[u] for u in group] if weight_of else None
        for start, end in _pack(group, settings, group_weights):
            body = text[start:end]
            chunks.append(Chunk(id=sha256_hex(doc.id, str(start), body)[:24], doc_id=doc.id, ordinal=len(chunks),
                                start=start, end=end, text=body, page=page))
    return chunks


def _pack(units: list[tuple[int, int]], settings: ChunkingSettings,
          tokens: list[int] | None = None) -> list[tuple[int, int]]:
    """Whole sentences up to the target size (and, with `tokens`, the token budget), with overlap."""
    budget = (settings.max_tokens or 0) - 2

    def fits(i: int, j: int) -> bool:
        if units[j][1] - units[i][0] > settings.target_chars:
            return False
        # WordPiece tokens of joined sentences = the sum of each one's tokens (whitespace adds none).
        return tokens is None or sum(tokens[i:j + 1]) <= budget

    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(units):
        j = i
        # Pack whole sentences until the next one would pass the target (one always goes in).
        while j + 1 < len(units) and fits(i, j + 1):
            j += 1
        spans.append((units[i][0], units[j][1]))
        if j + 1 >= len(units):
            break
        # Next chunk starts with the trailing sentences that fit in the overlap, never at i again.
        nxt = j + 1
        while nxt - 1 > i and units[j][1] - units[nxt - 1][0] <= settings.overlap_chars:
            nxt -= 1
        i = nxt
    return spans
