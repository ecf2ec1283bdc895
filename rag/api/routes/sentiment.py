"""Sentiment: per ticker and per document (computed on first request, then served from the journal), score
history, and batch rescoring jobs."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Query, Request, status
from starlette.concurrency import run_in_threadpool

from rag.api.deps import LibraryDep, ReadAuth, WriteAuth, check_model
from rag.api.schemas import ErrorBody
from rag.errors import BadInputError
from rag.sentiment.batch import RescoreRequest
from rag.sentiment.relative import RelativeTickerSentiment
from rag.sentiment.scoring import DocumentSentiment
from rag.sentiment.store import RescoreJob

router = APIRouter(tags=["sentiment"])
_ERRORS = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}, 502: {"model": ErrorBody}}
ModelQuery = Query(None, max_length=200, description="litellm model (from RAG_SERVER__ALLOWED_MODELS); default: the "
                   "configured sentiment model.")
PromptQuery = Query(None, max_length=200, description="Prompt template, e.g. sentiment.v1; default: configured.")


@router.get("/v1/sentiment", response_model=RelativeTickerSentiment, dependencies=[ReadAuth], responses=_ERRORS,
            summary="A ticker's sentiment, rolled up over its documents, with its baselines and trend")
async def ticker_sentiment(library: LibraryDep, ticker: str = Query(min_length=1, max_length=100, examples=["CALX"]),
                           model: str | None = ModelQuery, prompt: str | None = PromptQuery,
                           baseline: Literal["corpus", "sector"] = Query(
                               "corpus", description="Peer group of the percentiles: every scored document of the "
                               "corpus, or those of the newest document's sector.")) -> RelativeTickerSentiment:
    check_model(library.settings, model)
    return await library.aticker_sentiment(ticker, model, prompt, baseline)


@router.get("/v1/sentiment/history", response_model=list[DocumentSentiment], dependencies=[ReadAuth],
            responses=_ERRORS, summary="Every stored score of a ticker's or a document's, all models and prompts")
def sentiment_history(library: LibraryDep, ticker: str | None = Query(None, max_length=100),
                      doc_id: str | None = Query(None, max_length=200)) -> list[DocumentSentiment]:
    if (ticker is None) == (doc_id is None):
        raise BadInputError("give exactly one of ticker or doc_id")
    return library.sentiment_history(doc_id=doc_id, ticker=ticker)


@router.get("/v1/documents/{doc_id}/sentiment", response_model=DocumentSentiment, dependencies=[ReadAuth],
            responses=_ERRORS, summary="One document's sentiment with its evidence passages")
async def document_sentiment(doc_id: str, library: LibraryDep, model: str | None = ModelQuery,
                             prompt: str | None = PromptQuery) -> DocumentSentiment:
    check_model(library.settings, model)
    return await library.adocument_sentiment(doc_id, model, prompt)


@router.post("/v1/rescore", response_model=RescoreJob, status_code=status.HTTP_202_ACCEPTED,
             dependencies=[WriteAuth], responses={**_ERRORS, 401: {"model": ErrorBody}},
             summary="Start a batch rescoring job")
async def start_rescore(body: RescoreRequest, request: Request, library: LibraryDep) -> RescoreJob:
    """Scores every matching document that has no score for this model + prompt; poll GET /v1/jobs/{id}."""
    check_model(library.settings, body.model)
    run = await run_in_threadpool(library.prepare_rescore, body)
    task = asyncio.create_task(run.run())
    jobs: set[asyncio.Task] = request.app.state.jobs
    jobs.add(task)  # keep a reference until done (the loop holds tasks weakly)
    task.add_done_callback(jobs.discard)
    return run.job


@router.get("/v1/jobs/{job_id}", response_model=RescoreJob, dependencies=[ReadAuth],
            responses={404: {"model": ErrorBody}}, summary="Progress of a rescoring job")
def job_status(job_id: str, library: LibraryDep) -> RescoreJob:
    return library.job(job_id)
