"""Request and response bodies of the HTTP API (separate from stored records). Unknown fields are
rejected so a typo in a request is an error, not a silently ignored option."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from rag.models import DOC_ID_PATTERN, IsoDate, Passage, SearchFilters, Turn

# Hard caps at the schema, before any work; the configured max_question_chars (2000 by default) is checked by the
# library for the CLI too. These only stop megabyte strings from reaching it.
MAX_TEXT_FIELD = 100_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskRequest(Strict):
    question: str = Field(min_length=1, max_length=MAX_TEXT_FIELD, description="The analyst's question.",
                          examples=["What was Calix's Q4 revenue?"])
    history: list[Turn] = Field(default_factory=list, max_length=50, description="Earlier turns, oldest first.")
    filters: SearchFilters | None = Field(None, description="Restrict retrieval by ticker, doc type, date, id.")
    k: StrictInt | None = Field(None, ge=1, le=50, description="Passages given to the model (default: settings "
                                "retrieval.answer_k).")
    model: str | None = Field(None, max_length=200, description="litellm model string, one of the server's "
                              "RAG_SERVER__ALLOWED_MODELS (403 otherwise); default from settings.",
                              examples=["local/extractive"])
    stream: StrictBool = Field(False, description="Server-Sent Events: the checked answer text a sentence at a "
                               "time (`token`), then the Answer (`answer`).")


class SearchRequest(Strict):
    query: str = Field(min_length=1, max_length=MAX_TEXT_FIELD, examples=["Which customer saw ARPU rise 17%?"],
                       description="At most RAG_MAX_QUESTION_CHARS characters (400 beyond).")
    k: StrictInt = Field(5, ge=1, le=100)
    filters: SearchFilters | None = None
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"


class SearchResponse(BaseModel):
    passages: list[Passage]


class DocumentIn(Strict):
    """A document sent as JSON: its `text`, or a `url` the server fetches (for files, send multipart/form-data
    with `file` and optional `metadata` JSON instead). Document fields (id, title, tickers, date, source_url,
    doc_type) may also be given inside `metadata`."""

    text: str | None = Field(None, min_length=1, description="The document's text (this or `url`).")
    url: str | None = Field(None, max_length=2000, pattern=r"^https?://", examples=["https://example.com/note.html"],
                            description="Fetch this http(s) URL instead of sending text: HTML pages are reduced to "
                            "their main text; text, Markdown, PDF and JSON lines are read as files. Loopback and "
                            "private addresses are refused unless RAG_SERVER__FETCH_PRIVATE_URLS is set.")
    id: str | None = Field(None, pattern=DOC_ID_PATTERN, description="Letters, digits and . _ : - (at most 200, "
                           "starting with a letter, digit or _). Default: derived from a content hash.")
    title: str | None = Field(None, max_length=1000)
    tickers: list[str] = Field(default_factory=list, max_length=100)
    date: IsoDate | None = None
    source_url: str | None = None
    doc_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _text_or_url(self) -> DocumentIn:
        if (self.text is None) == (self.url is None):
            raise ValueError("send exactly one of 'text' or 'url'")
        return self


class IngestResponse(BaseModel):
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    chunks: int
    generation: int | None


class Health(BaseModel):
    """Index details (counts, models, fallback note) are left out when reads need a key and none was sent; the
    index's absolute path is never shown."""

    status: Literal["ok", "empty", "degraded"] = Field(
        description="degraded: the current generation is damaged and an older intact one is served (see note).")
    index_loaded: bool
    index_name: str | None = Field(None, description="Last folder name of the index directory.")
    generation: int | None = None
    documents: int | None = None
    chunks: int | None = None
    model: str | None = Field(None, description="The answer model.")
    models: dict[str, str] | None = Field(None, description="The model of each task (answer, rewrite, sentiment) "
                                          "as configured.")
    embedding_model: str | None = None
    note: str | None = Field(None, description="What a degraded index is missing, and how to repair it.")


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

    model: str = Field("rag", max_length=200, description="'rag' (or any name without a '/') uses the configured "
                       "model; a litellm string such as 'openai/gpt-4o-mini' picks that model if it is in "
                       "RAG_SERVER__ALLOWED_MODELS (403 otherwise).")
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: StrictBool = False


class ErrorBody(BaseModel):
    error: dict[str, Any] = Field(examples=[{"type": "bad_input", "message": "question is empty"}])
