"""Document -> Chunks: whole sentences packed to a target size, with overlap, keeping exact offsets
so that `document.text[chunk.start:chunk.end] == chunk.text` always holds."""

from __future__ import annotations

import re

from rag.models import Chunk, Document, sha256_hex
from rag.settings import ChunkingSettings

# A sentence ends at . ! ? (optionally followed by a closing quote/bracket) before whitespace and a
# capital/digit/bullet, or at a line break. Decimals such as 2.6% or "U.S. broadband" are not split.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)\]]?\s+(?=[A-Z0-9\"“(\[•$])|\n+")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans (start, end) of sentences, stripped of surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
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


def chunk_document(doc: Document, settings: ChunkingSettings) -> list[Chunk]:
    text = doc.text
    units: list[tuple[int, int]] = []
    for span in split_sentences(text):
        units.extend(_split_long(text, span, settings.max_chars))

    # A chunk never spans two PDF pages, so its page number is exact.
    groups: dict[int | None, list[tuple[int, int]]] = {}
    for unit in units:
        groups.setdefault(doc.page_at(unit[0]), []).append(unit)
    chunks: list[Chunk] = []
    for page, group in groups.items():
        for start, end in _pack(group, settings):
            body = text[start:end]
            chunks.append(Chunk(id=sha256_hex(doc.id, str(start), body)[:24], doc_id=doc.id, ordinal=len(chunks),
                                start=start, end=end, text=body, page=page))
    return chunks


def _pack(units: list[tuple[int, int]], settings: ChunkingSettings) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(units):
        j = i
        # Pack whole sentences until the next one would pass the target (one always goes in).
        while j + 1 < len(units) and units[j + 1][1] - units[i][0] <= settings.target_chars:
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
