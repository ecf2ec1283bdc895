"""Request and response bodies of the HTTP API (separate from stored records). Unknown fields are
rejected so a typo in a request is an error, not a silently ignored option."""

from __future__ import annotations

from datetime import date as Date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.models import Passage, SearchFilters, Turn


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskRequest(Strict):
    question: str = Field(min_length=1, description="The analyst's question.",
                          examples=["What was Calix's Q4 revenue?"])
    history: list[Turn] = Field(default_factory=list, description="Earlier turns, oldest first.")
    filters: SearchFilters | None = Field(None, description="Restrict retrieval by ticker, doc type, date, id.")
    k: int | None = Field(None, ge=1, le=50, description="Passages given to the model.")
    model: str | None = Field(None, description="litellm model string; default from settings.",
                              examples=["local/extractive"])
    stream: bool = Field(False, description="Server-Sent Events: the checked answer text a sentence at a time "
                         "(`token`), then the Answer (`answer`).")


class SearchRequest(Strict):
    query: str = Field(min_length=1, examples=["Which customer saw ARPU rise 17%?"])
    k: int = Field(5, ge=1, le=100)
    filters: SearchFilters | None = None
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"


class SearchResponse(BaseModel):
    passages: list[Passage]


class DocumentIn(Strict):
    """A document sent as JSON text (for files, send multipart/form-data with `file` and optional
    `metadata` JSON instead)."""

    text: str = Field(min_length=1)
    id: str | None = Field(None, description="Default: derived from the title or a content hash.")
    title: str | None = None
    tickers: list[str] = Field(default_factory=list)
    date: Date | None = None
    source_url: str | None = None
    doc_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class IngestResponse(BaseModel):
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    chunks: int
    generation: int | None


class Health(BaseModel):
    status: Literal["ok", "empty"]
    index_loaded: bool
    index_dir: str
    generation: int | None = None
    documents: int = 0
    chunks: int = 0
    model: str = Field(description="The answer model.")
    models: dict[str, str] = Field(default_factory=dict, description="The model of each task (answer, rewrite, "
                                   "sentiment) as configured.")
    embedding_model: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """OpenAI-compatible; sampling options other clients send are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field("rag", description="'rag' (or any name without a '/') uses the configured model; "
                       "a litellm string such as 'openai/gpt-4o-mini' picks that model.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


class ErrorBody(BaseModel):
    error: dict[str, Any] = Field(examples=[{"type": "bad_input", "message": "question is empty"}])
