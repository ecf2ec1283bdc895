"""Every model call goes through litellm. Registers the offline `local/...` provider and maps provider
failures to domain errors."""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from rag.errors import BadInputError, ProviderError, ProviderTimeoutError
from rag.settings import LLMSettings

_registered = threading.Lock()
_provider = None


def _litellm() -> Any:
    """Import litellm on first use (its import costs seconds) and register the local provider once."""
    global _provider
    import litellm

    with _registered:
        if _provider is None:
            from rag.local_provider import LocalProvider

            _provider = LocalProvider()
            litellm.custom_provider_map = [
                *[p for p in litellm.custom_provider_map if p["provider"] != "local"],
                {"provider": "local", "custom_handler": _provider},
            ]
            litellm.suppress_debug_info = True
    return litellm


def configure_local_provider(embed: Callable[[list[str]], np.ndarray]) -> None:
    """Give the offline provider the library's embedder (for sentence similarity)."""
    _litellm()
    assert _provider is not None
    _provider.embed = embed


LOCAL_MODELS = ("local/extractive", "local/finance-sentiment")


def is_local(model: str) -> bool:
    return model.startswith("local/")


def check_model(model: str) -> str:
    """Refuse unknown offline model names up front: litellm would report them as (retryable) connection errors."""
    if is_local(model) and model not in LOCAL_MODELS:
        raise BadInputError(f"unknown offline model {model!r}; available: {', '.join(LOCAL_MODELS)}")
    return model


def _kwargs(settings: LLMSettings, model: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": model or settings.model, "timeout": settings.timeout, "num_retries": settings.num_retries,
        "temperature": settings.temperature, "max_tokens": settings.max_tokens,
    }
    if settings.api_base:
        kwargs["api_base"] = settings.api_base
    if settings.api_key:
        kwargs["api_key"] = settings.api_key.get_secret_value()
    return kwargs


def _translate(exc: Exception, model: str) -> ProviderError:
    litellm = _litellm()
    if isinstance(exc, litellm.Timeout):
        return ProviderTimeoutError(f"model {model} timed out: {exc}")
    # litellm messages can carry a whole traceback; the caller gets the first line only.
    message = (getattr(exc, "message", None) or str(exc)).split("\n", 1)[0]
    message = re.sub(r"^(litellm\.\w+:\s*)+", "", message)
    status = getattr(exc, "status_code", None)
    retryable = isinstance(exc, litellm.APIConnectionError) or (
        isinstance(status, int) and (status == 429 or status >= 500))
    return ProviderError(f"model {model} failed: {type(exc).__name__}: {message}"[:500], retryable=retryable)


def _content(response: Any) -> str:
    return response.choices[0].message.content or ""


def complete(messages: list[dict[str, str]], settings: LLMSettings, model: str | None = None) -> str:
    litellm = _litellm()
    kwargs = _kwargs(settings, model)
    try:
        return _content(litellm.completion(messages=messages, **kwargs))
    except Exception as exc:  # litellm raises many provider-specific types; all become ProviderError
        raise _translate(exc, kwargs["model"]) from exc


async def acomplete(messages: list[dict[str, str]], settings: LLMSettings, model: str | None = None) -> str:
    litellm = _litellm()
    kwargs = _kwargs(settings, model)
    try:
        return _content(await litellm.acompletion(messages=messages, **kwargs))
    except Exception as exc:  # see complete()
        raise _translate(exc, kwargs["model"]) from exc


async def astream(messages: list[dict[str, str]], settings: LLMSettings,
                  model: str | None = None) -> AsyncIterator[str]:
    litellm = _litellm()
    kwargs = _kwargs(settings, model)
    try:
        async for chunk in await litellm.acompletion(messages=messages, stream=True, **kwargs):
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                yield delta
    except Exception as exc:  # see complete()
        raise _translate(exc, kwargs["model"]) from exc
