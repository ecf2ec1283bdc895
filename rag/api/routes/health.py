"""GET /health and GET /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag import llm
from rag.api.deps import LibraryDep, MetricsDep
from rag.api.schemas import Health
from rag.providers.registry import TASKS

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, summary="Liveness and index status")
def health(library: LibraryDep) -> Health:
    settings = library.settings
    models = {task: llm.resolve(settings.llm, task).model for task in TASKS}
    base = {"index_dir": str(settings.index_dir), "model": models["answer"], "models": models,
            "embedding_model": settings.embedding.model_name}
    if not library.exists():
        return Health(status="empty", index_loaded=False, **base)
    stats = library.stats()
    return Health(status="ok", index_loaded=True, generation=stats["generation"], documents=stats["documents"],
                  chunks=stats["chunks"], **base)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
