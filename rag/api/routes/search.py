"""POST /v1/search: ranked passages, for UIs and debugging retrieval."""

from __future__ import annotations

from fastapi import APIRouter

from rag.api.deps import LibraryDep, ReadAuth
from rag.api.schemas import ErrorBody, SearchRequest, SearchResponse

router = APIRouter(tags=["search"], dependencies=[ReadAuth])


@router.post("/v1/search", response_model=SearchResponse, responses={400: {"model": ErrorBody}},
             summary="Hybrid search over the index")
def search(body: SearchRequest, library: LibraryDep) -> SearchResponse:
    """Dense + BM25 fused by reciprocal rank; each passage has its fused, cosine and BM25 scores."""
    return SearchResponse(passages=library.search(body.query, k=body.k, filters=body.filters, mode=body.mode))
