"""The one place that calls litellm. Every call names its task (answer, rewrite, sentiment): a registered offline
model asked for a task it does not do is refused before any call (rag.providers.registry), and litellm is
imported only when a model is really called (its import costs seconds). Provider failures become domain errors."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rag.errors import BadInputError, ProviderError, ProviderTimeoutError
from rag.providers import registry
from rag.providers.registry import LocalCall, Task
from rag.settings import LLMSettings

if TYPE_CHECKING:
    from rag.embedding import Embedder


def litellm_module() -> Any:
    """litellm, imported on first use with the offline providers installed into its custom-provider map."""
    # Without this, importing litellm fetches its model cost map from the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    registry.install(litellm)
    return litellm


def check_model(model: str, task: Task) -> str:
    registry.check(model, task)
    return model


def is_offline(model: str) -> bool:
    return registry.is_offline(model)


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


_CONFIG_PROBLEMS = ("AuthenticationError", "BadRequestError", "NotFoundError", "PermissionDeniedError",
                    "UnsupportedParamsError")


def _translate(exc: Exception, model: str) -> Exception:
    litellm = litellm_module()
    if isinstance(exc, litellm.Timeout):
        return ProviderTimeoutError(f"model {model} timed out: {exc}")
    # litellm messages can carry a whole traceback; the caller gets the first line only.
    message = (getattr(exc, "message", None) or str(exc)).split("\n", 1)[0]
    message = re.sub(r"^(litellm\.\w+:\s*)+", "", message)
    if type(exc).__name__ in _CONFIG_PROBLEMS or "LLM Provider NOT provided" in message:
        # Wrong model name, missing credentials, unknown provider: the caller must change something; a retry
        # cannot help. Local OpenAI-compatible servers need any non-empty key (RAG_LLM__API_KEY=dummy).
        return BadInputError(f"model {model} refused the request: {type(exc).__name__}: {message}"[:500])
    status = getattr(exc, "status_code", None)
    retryable = isinstance(exc, litellm.APIConnectionError) or (
        isinstance(status, int) and (status == 429 or status >= 500))
    return ProviderError(f"model {model} failed: {type(exc).__name__}: {message}"[:500], retryable=retryable)


def _content(response: Any) -> str:
    return response.choices[0].message.content or ""


def _call_kwargs(settings: LLMSettings, model: str | None, task: Task, embedder: Embedder | None) -> dict[str, Any]:
    kwargs = _kwargs(settings, model)
    if registry.check(kwargs["model"], task) is not None:
        kwargs["metadata"] = {registry.CALL_KEY: LocalCall(model=kwargs["model"], task=task, embedder=embedder)}
    return kwargs


@contextmanager
def _errors(model: str) -> Iterator[None]:
    try:
        yield
    except (BadInputError, ProviderError):
        raise
    except Exception as exc:  # litellm raises many provider-specific types; all become domain errors
        raise _translate(exc, model) from exc


async def acomplete(messages: list[dict[str, str]], settings: LLMSettings, task: Task, model: str | None = None,
                    embedder: Embedder | None = None) -> str:
    kwargs = _call_kwargs(settings, model, task, embedder)
    with _errors(kwargs["model"]):
        return _content(await litellm_module().acompletion(messages=messages, **kwargs))


async def astream(messages: list[dict[str, str]], settings: LLMSettings, task: Task, model: str | None = None,
                  embedder: Embedder | None = None) -> AsyncIterator[str]:
    kwargs = _call_kwargs(settings, model, task, embedder)
    with _errors(kwargs["model"]):
        async for chunk in await litellm_module().acompletion(messages=messages, stream=True, **kwargs):
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                yield delta
