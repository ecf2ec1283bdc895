"""Typed records that flow through the pipeline: Document -> Chunk -> Passage -> Citation/Answer."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date as Date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Document ids travel in URL paths (/v1/documents/{id}) and file names, so new ids use a safe alphabet: letters,
# digits and . _ : - , starting with a letter, digit or _ (so never "." or ".."), at most 200 characters.
DOC_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._:-]{0,199}$"
_DOC_ID = re.compile(DOC_ID_PATTERN)
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._:-]+")


def is_safe_id(value: str) -> bool:
    return bool(_DOC_ID.match(value))


def safe_id(raw: str) -> str:
    """An id in the safe alphabet derived from a file name stem ("Q4 report (final)" -> "Q4-report-final")."""
    cleaned = _UNSAFE_RUN.sub("-", raw).strip("-.:")[:200]
    return cleaned if is_safe_id(cleaned) else f"doc-{sha256_hex(raw)[:16]}"


def _no_number_date(value: Any) -> Any:
    # pydantic's lax mode reads a number as a Unix timestamp (0 -> 1970-01-01): for a filing date that is always a
    # mistake, so only ISO strings and date objects are accepted.
    if isinstance(value, int | float):
        raise ValueError("a date must be an ISO string (YYYY-MM-DD), not a number")
    return value


IsoDate = Annotated[Date, BeforeValidator(_no_number_date)]


def sha256_hex(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


class PageSpan(BaseModel):
    page: int
    start: int
    end: int


class Document(BaseModel):
    """A whole source document as loaded, before chunking."""

    id: str = Field(min_length=1, max_length=200)
    text: str
    title: str = ""
    tickers: list[str] = Field(default_factory=list)
    date: IsoDate | None = None
    source_url: str | None = None
    doc_type: str | None = None
    path: str | None = None
    pages: list[PageSpan] = Field(default_factory=list, description="Character span of each PDF page.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        meta = self.model_dump(mode="json", exclude={"text", "path"})
        return sha256_hex(self.text, json.dumps(meta, sort_keys=True))[:32]

    def page_at(self, offset: int) -> int | None:
        for span in self.pages:
            if span.start <= offset < span.end:
                return span.page
        return None


class DocumentInfo(BaseModel):
    """A stored document without its text (listings)."""

    id: str
    title: str
    tickers: list[str]
    date: Date | None
    source_url: str | None
    doc_type: str | None
    path: str | None
    content_hash: str
    n_chunks: int
    n_chars: int
    ingested_at: str


class Chunk(BaseModel):
    """A contiguous span of one document: `document.text[start:end] == text`."""

    id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    page: int | None = None


class Passage(BaseModel):
    """A retrieved chunk with its document's metadata and retrieval scores."""

    model_config = ConfigDict(frozen=True)

    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    page: int | None
    source_url: str | None
    tickers: list[str]
    doc_type: str | None
    date: Date | None
    company: str | None = Field(None, description="The document's company (metadata `company`), if known.")
    section: str | None = Field(None, description="For sentiment: the part of the document the passage is from "
                                "(prepared, question, answer, body; rag.transcript), if known.")
    score: float = Field(description="What the results are ordered by: in hybrid mode the fused reciprocal-rank "
                         "score (weight / (60 + rank), summed over dense and BM25; compare within one list only), in "
                         "bm25 mode the BM25 score, in dense mode the cosine similarity.")
    dense_score: float | None = Field(None, description="Cosine similarity to the query, if ranked by dense.")
    bm25_score: float | None = Field(None, description="BM25 score, if ranked by BM25.")


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tickers: list[str] | None = Field(None, max_length=100)
    doc_types: list[str] | None = Field(None, max_length=100)
    date_from: IsoDate | None = None
    date_to: IsoDate | None = None
    doc_ids: list[str] | None = Field(None, max_length=1000)

    def is_empty(self) -> bool:
        return not any(v for v in self.model_dump().values())


class Citation(BaseModel):
    n: int = Field(description="The marker number used in the answer text, as in [n].")
    chunk_id: str
    doc_id: str
    title: str
    start: int
    end: int
    page: int | None
    source_url: str | None
    quote: str = Field(description="The cited passage text (equal to document text[start:end]).")

    @classmethod
    def from_passage(cls, n: int, p: Passage) -> Citation:
        return cls(n=n, chunk_id=p.chunk_id, doc_id=p.doc_id, title=p.title, start=p.start, end=p.end, page=p.page,
                   source_url=p.source_url, quote=p.text)


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(pattern="^(user|assistant)$")
    content: str


class UnsupportedSentence(BaseModel):
    sentence: str
    citations: list[int] = Field(description="The markers the sentence was checked against.")
    missing: list[str] = Field(description="Its names and terms found in none of those passages.")


class Answer(BaseModel):
    question: str
    standalone_question: str = Field(description="The question after rewriting against the history.")
    answer: str = Field(description="Answer text with [n] citation markers.")
    abstained: bool = Field(description="True when the documents do not contain the answer.")
    citations: list[Citation]
    passages: list[Passage] = Field(
        description="Everything retrieved and shown to the model; on an abstention, the closest passages found "
        "(for the reader to check), never cited.")
    model: str
    offline_provider: bool = Field(
        description="True when rag's offline provider (local/extractive) assembled the answer from the passages; "
        "False when a language model generated it.")
    prompt: str = Field(description="Prompt template name and version.")
    prompt_hash: str
    removed_citations: list[int] = Field(default_factory=list, description="Markers pointing at no passage.")
    ungrounded_numbers: list[str] = Field(
        default_factory=list, description="Numbers not found in the passages cited for their sentence (numbers of "
        "uncited sentences included).")
    uncited: list[str] = Field(
        default_factory=list, description="Sentences that state something with no valid citation: no marker of "
        "their own and none later on their line.")
    unsupported: list[UnsupportedSentence] = Field(
        default_factory=list, description="Cited sentences whose names or most of whose terms are not in the "
        "passages they cite.")
    timings_ms: dict[str, float] = Field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        """True when a check found something: the answer is shown, but the flagged parts are not grounded."""
        return bool(self.removed_citations or self.ungrounded_numbers or self.uncited or self.unsupported)
