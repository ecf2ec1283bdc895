"""Assembles the FastAPI app: routes, error mapping, size limits, metrics. `create_app()` is also the
uvicorn factory used by `rag serve`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag import __version__
from rag.api.metrics import Metrics
from rag.api.routes import ask, chat, documents, health, search, sentiment, web
from rag.api.routes import models as model_list
from rag.embedding.base import usable_cores
from rag.errors import RagError
from rag.library import Library
from rag.process import prepare_process
from rag.settings import Settings

log = logging.getLogger("rag.api")


def _error(status: int, kind: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body exceeds {max_bytes} bytes")


class LimitsAndMetrics:
    """Refuses oversized bodies and records per-route counts and latency. Plain ASGI rather than
    @app.middleware("http"), whose BaseHTTPMiddleware re-wraps every request and response (it cost ~1 ms per
    request in bench/http_service.py).

    The size limit is checked twice: from Content-Length before the app runs, and on the body as it streams in,
    since a chunked request has no Content-Length (an 11 MB chunked JSON body was stored before this). Going over
    raises an HTTPException(413) from `receive`, which FastAPI and the routes pass through to the error handler."""

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

        response_started = [False]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                response_started[0] = True
            await send(message)

        received = [0]

        async def receive_counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        length = dict(scope["headers"]).get(b"content-length", b"")
        try:
            if length.isdigit() and int(length) > self.max_bytes:
                await _error(413, "too_large", f"request body exceeds {self.max_bytes} bytes")(
                    scope, receive, send_status)
            else:
                await self.app(scope, receive_counted, send_status)
        except BodyTooLarge as exc:
            # Raised outside a route's handlers (e.g. while a streaming response reads on): answer if we still can.
            if status[0] == 500 and not response_started[0]:
                await _error(413, "too_large", str(exc.detail))(scope, receive, send_status)
        finally:
            # The router records the matched route in the scope; unmatched paths share one label.
            label = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(label, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)


def serving(settings: Settings) -> Settings:
    """A server embeds uploads while it answers searches: unless configured, documents get all cores but one
    (onnx backends; torch has one process-wide pool). Each of `rag serve --workers N` applies this on its own."""
    if settings.embedding.document_threads is not None:
        return settings
    threads = max(1, usable_cores() - 1)
    embedding = settings.embedding.model_copy(update={"document_threads": threads})
    return settings.model_copy(update={"embedding": embedding})


def create_app(settings: Settings | None = None, library: Library | None = None) -> FastAPI:
    prepare_process()
    library = library or Library(serving(settings or Settings()))
    settings = library.settings

    def index_size() -> float:
        try:
            return float(library.stats()["chunks"]) if library.exists() else 0.0  # type: ignore[arg-type]
        except RagError:
            return float("nan")  # a damaged index must not turn /metrics into a 500; /health says why

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
            await run_in_threadpool(library.store.remove_stale)  # staging folders of writers that crashed
            try:
                await run_in_threadpool(library.load_index)
            except RagError as exc:
                # Serve anyway: /health and every index route answer 503 with the reason until it is repaired.
                log.error("index not usable: %s", exc)
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

    _document_errors(app)
    if settings.server.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.server.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])
    # Added last, so outermost: it also counts preflight requests and bodies of every route.
    app.add_middleware(LimitsAndMetrics, metrics=app.state.metrics, max_bytes=settings.server.max_upload_bytes)
    return app


def _document_errors(app: FastAPI) -> None:
    """Add the error responses every route can return to the OpenAPI spec (routes list their specific ones), as
    ErrorBody, which is what the handlers above send (FastAPI's default 422 schema is not)."""
    generate = app.openapi

    def entry(description: str) -> dict[str, object]:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}

    common = {
        "400": entry("Bad input (the message says which)."),
        "401": entry("Missing or invalid API key (writes; reads too with RAG_SERVER__AUTH_READS)."),
        "403": entry("A `model` outside RAG_SERVER__ALLOWED_MODELS."),
        "404": entry("No such document, ticker, job, or no index yet."),
        "503": entry("The index is damaged and no older generation is intact; the message names the file."),
        "507": entry("The disk filled up during a write; the index is unchanged."),
    }

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for path, operations in schema["paths"].items():
            for method, op in operations.items():
                responses = op.setdefault("responses", {})
                if path.startswith("/v1/"):
                    for code, body in common.items():
                        if code != "507" or method in ("post", "delete"):
                            responses.setdefault(code, body)
                if method == "post":
                    responses.setdefault("413", entry("Body over RAG_SERVER__MAX_UPLOAD_BYTES (or an upload over "
                                                      "RAG_SERVER__MAX_INGEST_CHUNKS)."))
                responses["422"] = entry("The request does not match the schema.")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the spec
