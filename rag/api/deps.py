"""Annotated dependencies: the library, settings, metrics and API-key checks. Tests override these
through the app instead of patching globals."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from rag.api.metrics import Metrics
from rag.errors import ModelNotAllowedError
from rag.library import Library
from rag.settings import Settings


def get_library(request: Request) -> Library:
    return request.app.state.library


def get_settings(request: Request) -> Settings:
    return request.app.state.library.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


LibraryDep = Annotated[Library, Depends(get_library)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def _check_key(request: Request, settings: Settings) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # Compare bytes: compare_digest refuses non-ASCII str (a 500 on "Bearer k1secré"). Starlette decodes header
    # bytes as latin-1, so encoding back gives the bytes sent, which match a key's UTF-8 bytes.
    sent = token.encode("latin-1", "replace")
    keys = [k.get_secret_value().encode("utf-8") for k in settings.server.api_keys]
    if not keys:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "no API keys are configured: set RAG_SERVER__API_KEYS (or, knowingly, "
                            "RAG_SERVER__AUTH_DISABLED=true)")
    if scheme.lower() != "bearer" or not any(secrets.compare_digest(sent, k) for k in keys):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid API key (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})


def require_write_key(request: Request, settings: SettingsDep) -> None:
    if not settings.server.auth_disabled:
        _check_key(request, settings)


def require_read_key(request: Request, settings: SettingsDep) -> None:
    if settings.server.auth_reads and not settings.server.auth_disabled:
        _check_key(request, settings)


WriteAuth = Depends(require_write_key)
ReadAuth = Depends(require_read_key)


def allowed_models(settings: Settings) -> set[str] | None:
    """Models HTTP callers may name; None means any (allowed_models = ["*"])."""
    from rag import llm
    from rag.providers import registry

    configured = settings.server.allowed_models
    if configured is not None:
        return None if "*" in configured else set(configured)
    offline = {m.name for m in registry.models() if m.offline}
    return {llm.resolve(settings.llm, task).model for task in registry.TASKS} | offline


def check_model(settings: Settings, model: str | None) -> None:
    """Refuse a caller-chosen model outside the allow-list: the server would call that provider with its own
    credentials (RAG_SERVER__ALLOWED_MODELS)."""
    if model is None:
        return
    allowed = allowed_models(settings)
    if allowed is not None and model not in allowed:
        raise ModelNotAllowedError(f"model {model[:100]!r} is not allowed on this server; allowed: "
                                   f"{', '.join(sorted(allowed))} (RAG_SERVER__ALLOWED_MODELS)")
