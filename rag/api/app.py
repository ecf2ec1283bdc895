"""Assembles the FastAPI app: routes, error mapping, size limits, metrics. `create_app()` is also the
uvicorn factory used by `rag serve`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag import __version__
from rag.api.metrics import Metrics
from rag.api.routes import ask, chat, documents, health, search, sentiment, web
from rag.api.routes import models as model_list
from rag.errors import RagError
from rag.library import Library
from rag.offline import use_offline_environment
from rag.settings import Settings

log = logging.getLogger("rag.api")


def _error(status: int, kind: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


class LimitsAndMetrics:
    """Refuses oversized bodies up front and records per-route counts and latency. Plain ASGI rather than
    @app.middleware("http"), whose BaseHTTPMiddleware re-wraps every request and response (it cost ~1 ms per
    request in bench/http_service.py)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        length = dict(scope["headers"]).get(b"content-length", b"")
        try:
            if length.isdigit() and int(length) > self.max_bytes:
                await _error(413, "too_large", f"request body exceeds {self.max_bytes} bytes")(
                    scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            # The router records the matched route in the scope; unmatched paths share one label.
            label = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(label, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)


def create_app(settings: Settings | None = None, library: Library | None = None) -> FastAPI:
    use_offline_environment()
    library = library or Library(settings or Settings())
    settings = library.settings

    def index_size() -> float:
        return float(library.stats()["chunks"]) if library.exists() else 0.0  # type: ignore[arg-type]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.server.auth_disabled:
            log.warning("API-key auth is DISABLED (RAG_SERVER__AUTH_DISABLED=true): anyone who can reach this "
                        "server can upload and delete documents")
        elif not settings.server.api_keys:
            log.warning("no API keys configured (RAG_SERVER__API_KEYS): write endpoints will refuse every request")
        # Load the model and the index now, not on the first request.
        await run_in_threadpool(lambda: library.embedder)
        if library.exists():
            await run_in_threadpool(library.snapshot)
        yield
        # Running rescore jobs are journaled as interrupted; rerunning the same rescore resumes them.
        for task in list(app.state.jobs):
            task.cancel()
        await asyncio.gather(*app.state.jobs, return_exceptions=True)

    # docs_url/redoc_url None: rag.api.routes.web serves both from assets shipped in the package, not a CDN.
    app = FastAPI(title="rag", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Cited answers, search and documents over financial research. "
                  "Writes need `Authorization: Bearer <key>`.")
    app.state.library = library
    app.state.metrics = Metrics(index_size)
    app.state.jobs = set()
    for module in (ask, chat, search, documents, sentiment, health):
        app.include_router(module.router)
    app.include_router(model_list.router)
    app.include_router(web.router)
    app.mount(web.STATIC_PREFIX, web.static_files(), name="static")

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        return _error(exc.http_status, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        return _error(422, "validation_error", f"{where}: {first['msg']}" if where else first["msg"],
                      details=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in errors])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _error(exc.status_code, "http_error", str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error(500, "internal_error", "internal error; see the server log")

    app.add_middleware(LimitsAndMetrics, metrics=app.state.metrics, max_bytes=settings.server.max_upload_bytes)
    return app
