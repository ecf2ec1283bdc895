"""GET /health and GET /metrics."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag import llm
from rag.api.deps import LibraryDep, MetricsDep, require_read_key
from rag.api.schemas import ErrorBody, Health
from rag.providers.registry import TASKS

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, response_model_exclude_none=True,
            responses={503: {"model": ErrorBody, "description": "The index is damaged and no older generation is "
                             "intact (the message says which file)."}},
            summary="Liveness and index status")
def health(request: Request, library: LibraryDep) -> Health:
    """Status for anyone (load balancers send no key); with RAG_SERVER__AUTH_READS=true, index details only to
    callers with a key. A damaged index is 503 with the reason."""
    settings = library.settings
    try:
        require_read_key(request, settings)
        details = True
    except HTTPException:
        details = False
    models = {task: llm.resolve(settings.llm, task).model for task in TASKS}
    base = {"index_name": settings.index_dir.name, "model": models["answer"], "models": models,
            "embedding_model": settings.embedding.model_name} if details else {}
    if not library.exists():
        return Health(status="empty", index_loaded=False, **base)
    stats = library.stats()  # IndexDamagedError -> 503 by the app's error mapping
    if not details:
        return Health(status="degraded" if stats["fallback"] else "ok", index_loaded=True)
    return Health(status="degraded" if stats["fallback"] else "ok", index_loaded=True,
                  generation=stats["generation"], documents=stats["documents"], chunks=stats["chunks"],
                  note=stats["fallback"], **base)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
