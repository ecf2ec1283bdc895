"""Document and ticker sentiment: prompt assembly, validation of the model's JSON, label bands, and the
recency/relevance-weighted ticker roll-up. Any litellm model can score; the offline default is
`local/finance-sentiment` (rag.providers.finance_sentiment), a classifier, not a generative model."""

from __future__ import annotations

import bisect
import html
import json
import math
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from rag import llm, transcript
from rag.errors import MalformedOutputError, ProviderError
from rag.models import Chunk, Citation, Document, Passage
from rag.prompt_tags import format_passages
from rag.prompts import PromptTemplate
from rag.providers import registry
from rag.settings import LLMSettings, SentimentSettings

if TYPE_CHECKING:
    from rag.embedding import Embedder

# Bumped when the way model output becomes a stored score changes; part of the cache key.
# 2: transcripts are sent by section (rag.transcript), without the operator's script and safe-harbour text.
SCORER_VERSION = "2"

# (exclusive upper bound, label); scores of 0.75 and above are "very positive". Symmetric around 0; the seed
# research note calls 0.62 "moderately positive", which these bands agree with.
BANDS: list[tuple[float, str]] = [
    (-0.75, "very negative"),
    (-0.35, "moderately negative"),
    (-0.10, "slightly negative"),
    (0.10, "neutral"),
    (0.35, "slightly positive"),
    (0.75, "moderately positive"),
]


def label_for(score: float) -> str:
    return next((label for bound, label in BANDS if score < bound), "very positive")


class ModelVerdict(BaseModel):
    """What the sentiment prompt asks the model to return."""

    model_config = ConfigDict(extra="ignore")

    score: float = Field(ge=-1, le=1)
    confidence: float = Field(ge=0, le=1)
    evidence: list[int] = Field(min_length=1)
    rationale: str = Field("", max_length=2000)


class DocumentSentiment(BaseModel):
    """One stored score of one version of one document by one model + prompt."""

    doc_id: str
    title: str
    tickers: list[str]
    date: str | None
    period: str | None = Field(None, description="The reported period (metadata `quarter`, e.g. \"Q3 2020\"), "
                               "which orders a ticker's undated documents.")
    sector: str | None = Field(None, description="The document's sector (metadata `sector`), for sector baselines.")
    content_hash: str
    score: float
    label: str
    confidence: float
    evidence: list[Citation] = Field(description="The passages that drove the score.")
    rationale: str
    model: str
    offline_provider: bool = Field(
        description="True when rag's offline provider (local/finance-sentiment, a classifier) scored it; False when "
        "a language model did.")
    prompt: str
    prompt_hash: str
    scorer_version: str
    created_at: str
    job_id: str | None = None


class Contribution(BaseModel):
    doc_id: str
    title: str
    date: str | None
    score: float
    label: str
    confidence: float
    weight: float = Field(description="Share of the roll-up (recency x relevance), summing to 1.")


class TickerSentiment(BaseModel):
    ticker: str
    score: float
    label: str
    confidence: float
    documents: list[Contribution]
    model: str
    prompt: str
    prompt_hash: str
    method: str = Field(
        "weighted mean of document scores; weight = recency (half-life from the newest document) x confidence "
        "x focus (1 / number of tickers the document covers)"
    )


def scorer_version(model: str) -> str:
    """Part of the cache key: a registered model with weights of its own (the offline classifier) adds their
    version, so retrained weights rescore instead of reusing old scores."""
    entry = registry.get(model)
    return f"{SCORER_VERSION}+{entry.version()}" if entry and entry.version else SCORER_VERSION


def document_passages(doc: Document, chunks: list[Chunk], max_passages: int,
                      target_chars: int = 700) -> list[Passage]:
    """The document as numbered passages. A transcript is cut by who speaks (rag.transcript): prepared remarks,
    questions and answers become passages labelled with their section, packed to about `target_chars` (more when
    needed to fit everything in `max_passages`), and the operator's script, safe-harbour and courtesy lines are
    left out. Any other document is its chunks, sampled evenly to `max_passages`. Passages keep exact spans."""
    if transcript.is_transcript(doc.text):
        return _transcript_passages(doc, chunks, max_passages, target_chars)
    if len(chunks) > max_passages:
        step = len(chunks) / max_passages
        chunks = [chunks[int(i * step)] for i in range(max_passages)]
    return [_passage(doc, c.id, c.start, c.end, c.page) for c in chunks]


def _passage(doc: Document, chunk_id: str, start: int, end: int, page: int | None,
             section: str | None = None) -> Passage:
    return Passage(chunk_id=chunk_id, doc_id=doc.id, title=doc.title, text=doc.text[start:end], start=start, end=end,
                   page=page, source_url=doc.source_url, tickers=doc.tickers, doc_type=doc.doc_type, date=doc.date,
                   section=section, score=0.0)


def _transcript_passages(doc: Document, chunks: list[Chunk], max_passages: int, target_chars: int) -> list[Passage]:
    kept = [s for s in transcript.segments(doc.text) if s.section not in transcript.SKIPPED]
    size = max(target_chars, sum(s.end - s.start for s in kept) // max(1, max_passages) + 1)
    groups: list[list[transcript.Segment]] = []
    for seg in kept:
        last = groups[-1] if groups else None
        if last and last[0].section == seg.section and seg.end - last[0].start <= size:
            last.append(seg)
        else:
            groups.append([seg])
    if len(groups) > max_passages:  # many short turns: sample evenly, as for chunks
        step = len(groups) / max_passages
        groups = [groups[int(i * step)] for i in range(max_passages)]
    starts = [c.start for c in chunks]

    def chunk_at(offset: int) -> Chunk | None:
        i = bisect.bisect_right(starts, offset) - 1
        return chunks[i] if i >= 0 else None

    passages = []
    for group in groups:
        start, end = group[0].start, group[-1].end
        chunk = chunk_at(start)
        passages.append(_passage(doc, chunk.id if chunk else f"{doc.id}:{start}", start, end,
                                 chunk.page if chunk else None, group[0].section))
    return passages


def sentiment_messages(template: PromptTemplate, doc: Document, passages: list[Passage]) -> list[dict[str, str]]:
    return template.messages(
        doc_id=html.escape(doc.id), title=html.escape(doc.title), tickers=html.escape(",".join(doc.tickers)),
        date=doc.date.isoformat() if doc.date else "", passages=format_passages(passages),
    )


_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_verdict(raw: str, n_passages: int) -> ModelVerdict:
    """The model's JSON (code fences and surrounding prose tolerated); evidence outside 1..n is dropped."""
    match = _JSON_OBJECT.search(raw)
    if not match:
        raise MalformedOutputError(f"no JSON object in the model output: {raw[:200]!r}")
    try:
        verdict = ModelVerdict.model_validate(json.loads(match.group(0)))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise MalformedOutputError(f"model output is not a valid verdict: {str(exc).splitlines()[0]}") from exc
    evidence = list(dict.fromkeys(n for n in verdict.evidence if 1 <= n <= n_passages))
    if not evidence:
        raise MalformedOutputError(f"evidence {verdict.evidence} names none of passages 1..{n_passages}")
    return verdict.model_copy(update={"evidence": evidence[:5]})


def _repair_messages(messages: list[dict[str, str]], raw: str, error: str) -> list[dict[str, str]]:
    return [*messages, {"role": "assistant", "content": raw},
            {"role": "user", "content": f"That reply was not usable ({error}). Reply with the JSON object only."}]


async def score_document(doc: Document, chunks: list[Chunk], template: PromptTemplate, model: str, version: str,
                         llm_settings: LLMSettings, settings: SentimentSettings,
                         before_call: Callable[[], Awaitable[None]] | None = None,
                         job_id: str | None = None, embedder: Embedder | None = None) -> DocumentSentiment:
    """Score one document; `version` is `scorer_version(model)`, computed once by the caller. Transient provider
    errors are retried with exponential backoff; malformed output is re-asked up to `malformed_retries` times and
    then raised, never turned into a made-up score."""
    passages = document_passages(doc, chunks, settings.max_passages, settings.passage_chars)
    if not passages:
        raise MalformedOutputError(f"document {doc.id} has no text to score")
    messages = sentiment_messages(template, doc, passages)

    async def call(msgs: list[dict[str, str]]) -> str:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(settings.max_attempts),
            wait=wait_exponential_jitter(initial=settings.backoff_seconds, max=settings.max_backoff_seconds),
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
            reraise=True,
        ):
            with attempt:
                if before_call:
                    await before_call()
                # retries=0: this loop retries, with its own backoff, the whole attempt count of the job.
                return await llm.acomplete(msgs, llm_settings, "sentiment", model, embedder, retries=0)
        raise AssertionError("unreachable: AsyncRetrying reraises")

    raw = await call(messages)
    for attempt in range(settings.malformed_retries + 1):
        try:
            verdict = parse_verdict(raw, len(passages))
            break
        except MalformedOutputError as exc:
            if attempt == settings.malformed_retries:
                raise MalformedOutputError(
                    f"{exc} (after {settings.malformed_retries + 1} tries)") from exc
            messages = _repair_messages(messages, raw, str(exc))
            raw = await call(messages)
    evidence = [Citation.from_passage(n, passages[n - 1]) for n in verdict.evidence]
    return DocumentSentiment(
        doc_id=doc.id, title=doc.title, tickers=doc.tickers, date=doc.date.isoformat() if doc.date else None,
        period=_text_or_none(doc.metadata.get("quarter")), sector=_text_or_none(doc.metadata.get("sector")),
        content_hash=doc.content_hash, score=round(verdict.score, 4), label=label_for(verdict.score),
        confidence=round(verdict.confidence, 4), evidence=evidence, rationale=verdict.rationale, model=model,
        offline_provider=llm.is_offline(model), prompt=template.name, prompt_hash=template.hash,
        scorer_version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), job_id=job_id,
    )


def _text_or_none(value: object) -> str | None:
    return str(value).strip() or None if value is not None else None


def rollup(ticker: str, scores: list[DocumentSentiment], half_life_days: float) -> TickerSentiment:
    """Weighted mean of the latest score of each document covering `ticker` (see TickerSentiment.method).
    Undated documents count as old as the oldest dated one."""
    if not scores:
        raise ValueError("no document scores to roll up")
    dates = [datetime.fromisoformat(s.date) for s in scores if s.date]
    newest = max(dates, default=None)
    oldest_age = (newest - min(dates)).days if newest and dates else 0

    def weight(s: DocumentSentiment) -> float:
        age = (newest - datetime.fromisoformat(s.date)).days if newest and s.date else oldest_age
        recency = math.pow(0.5, age / half_life_days)
        focus = 1.0 / max(1, len(s.tickers))
        # A zero-confidence score still counts a little, so a ticker whose documents are all unclear gets a score.
        return recency * max(s.confidence, 0.05) * focus

    raw_weights = [weight(s) for s in scores]
    total = sum(raw_weights)
    shares = [w / total for w in raw_weights]
    score = sum(w * s.score for w, s in zip(shares, scores, strict=True))
    confidence = sum(w * s.confidence for w, s in zip(shares, scores, strict=True))
    first = scores[0]
    contributions = sorted(
        (Contribution(doc_id=s.doc_id, title=s.title, date=s.date, score=s.score, label=s.label,
                      confidence=s.confidence, weight=round(w, 4)) for w, s in zip(shares, scores, strict=True)),
        key=lambda c: -c.weight,
    )
    return TickerSentiment(ticker=ticker, score=round(score, 4), label=label_for(score),
                           confidence=round(confidence, 4), documents=contributions, model=first.model,
                           prompt=first.prompt, prompt_hash=first.prompt_hash)
