"""Models rag can call without a network, as entries of one registry: a name, the tasks it can do, and a handler.
Built-ins (`local/extractive`, `local/finance-sentiment`) register exactly as a third party's or a test's fake
does (see simonw/llm's `register_models` hook), from rag/providers/__init__.py, so they are present whenever
this module is. The registry also installs one litellm custom provider per name
prefix, so the rest of the code calls every model through litellm alike and never special-cases these names.

A handler receives a `LocalCall`: the task, the messages a real model would get, and the caller's embedder.
rag.llm hands it over in litellm's per-call `metadata`, which litellm passes to custom providers untouched.
Structured input (question, passages, history) is read from the messages by rag.prompt_tags, the module that
also renders them."""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rag.errors import ConfigError

if TYPE_CHECKING:
    from rag.embedding import Embedder

Task = Literal["answer", "rewrite", "sentiment"]
TASKS: tuple[Task, ...] = ("answer", "rewrite", "sentiment")


@dataclass(frozen=True)
class LocalCall:
    model: str
    task: Task
    messages: list[dict[str, Any]] = field(default_factory=list)
    embedder: Embedder | None = None


# A plain function runs in a worker thread (CPU-bound offline models); a coroutine function is awaited on the
# event loop (stand-ins for remote models, which wait rather than compute).
Handler = Callable[[LocalCall], str] | Callable[[LocalCall], Awaitable[str]]


@dataclass(frozen=True)
class RegisteredModel:
    name: str  # provider/model, e.g. local/extractive
    tasks: frozenset[Task]
    handler: Handler
    offline: bool = True
    description: str = ""
    # Version of the model's own weights, if it has any: part of the sentiment cache key.
    version: Callable[[], str] | None = None

    @property
    def provider(self) -> str:
        return self.name.split("/", 1)[0]


_models: dict[str, RegisteredModel] = {}
_lock = threading.RLock()
CALL_KEY = "rag_call"  # key of the LocalCall in litellm's per-call metadata


def register(model: RegisteredModel) -> None:
    if "/" not in model.name:
        raise ValueError(f"model name {model.name!r} needs a provider prefix, e.g. local/{model.name}")
    if not model.tasks or not model.tasks <= set(TASKS):
        raise ValueError(f"{model.name}: tasks must be a non-empty subset of {TASKS}")
    with _lock:
        _models[model.name] = model
        if "litellm" in sys.modules:  # already installed: add the new prefix too
            install(sys.modules["litellm"])


def unregister(name: str) -> None:
    with _lock:
        _models.pop(name, None)


def models() -> list[RegisteredModel]:
    with _lock:
        return sorted(_models.values(), key=lambda m: m.name)


def get(name: str) -> RegisteredModel | None:
    with _lock:
        return _models.get(name)


def providers() -> set[str]:
    return {m.provider for m in models()}


def check(model: str, task: Task) -> RegisteredModel | None:
    """The registered model behind `model`, or None for an ordinary litellm model. A name under a registered
    prefix that is not registered, or a model asked for a task it does not do, is refused before any call."""
    if not model or not model.strip():
        raise ConfigError("model name is empty")
    entry = get(model)
    if entry is None:
        prefix = model.split("/", 1)[0]
        if "/" in model and prefix in providers():
            names = ", ".join(m.name for m in models() if m.provider == prefix)
            raise ConfigError(f"unknown model {model!r}; {prefix}/ models: {names}")
        return None
    if task not in entry.tasks:
        able = ", ".join(m.name for m in models() if task in m.tasks)
        raise ConfigError(f"model {model} does {', '.join(sorted(entry.tasks))}, not {task}; for {task} use a "
                            f"litellm model or one of: {able}")
    return entry


def is_offline(model: str) -> bool:
    entry = get(model)
    return bool(entry and entry.offline)


def install(litellm: Any) -> None:
    """Point litellm's custom-provider map at the bridge for every registered prefix (idempotent)."""
    with _lock:
        prefixes = {m.provider for m in _models.values()}
        keep = [p for p in litellm.custom_provider_map if p["provider"] not in prefixes]
        bridge = _bridge()
        litellm.custom_provider_map = [*keep, *({"provider": p, "custom_handler": bridge} for p in sorted(prefixes))]
        litellm.suppress_debug_info = True


_bridge_instance: Any = None


def _bridge() -> Any:
    global _bridge_instance
    if _bridge_instance is None:
        _bridge_instance = _make_bridge()
    return _bridge_instance


def _make_bridge() -> Any:
    from litellm import CustomLLM
    from litellm.types.utils import GenericStreamingChunk, ModelResponse

    class Bridge(CustomLLM):
        """litellm's side of the registry: finds the registered model and runs its handler."""

        def _call(self, model: str, messages: list[dict[str, Any]],
                  kwargs: dict[str, Any]) -> tuple[RegisteredModel, LocalCall]:
            # litellm hands over the name without its prefix; the full name and the task come with the call.
            call = ((kwargs.get("litellm_params") or {}).get("metadata") or {}).get(CALL_KEY)
            if not isinstance(call, LocalCall):
                raise ValueError(f"registered model {model!r} is called through rag.llm, which gives it its task")
            entry = get(call.model)
            if entry is None:
                raise ValueError(f"no registered model {call.model!r}")
            return entry, LocalCall(model=call.model, task=call.task, messages=messages, embedder=call.embedder)

        async def _arespond(self, model: str, messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> str:
            entry, call = self._call(model, messages, kwargs)
            if inspect.iscoroutinefunction(entry.handler):
                return await entry.handler(call)
            # CPU-bound handlers (embedding, classification) must not block the event loop.
            return await asyncio.to_thread(entry.handler, call)  # type: ignore[arg-type]  # sync branch

        def _respond(self, model: str, messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> str:
            entry, call = self._call(model, messages, kwargs)
            result = entry.handler(call)
            return asyncio.run(result) if inspect.isawaitable(result) else result  # type: ignore[arg-type]

        @staticmethod
        def _fill(model: str, text: str, model_response: ModelResponse) -> ModelResponse:
            model_response.choices[0].message.content = text  # type: ignore[union-attr]  # non-streaming choice
            model_response.model = model
            model_response.created = int(time.time())
            return model_response

        @staticmethod
        def _chunks(text: str) -> Iterator[GenericStreamingChunk]:
            words = text.split(" ")
            for i, word in enumerate(words):
                last = i == len(words) - 1
                yield GenericStreamingChunk(text=word if last else word + " ", is_finished=last,
                                            finish_reason="stop" if last else "", usage=None, index=0)

        def completion(self, model: str, messages: list, *args: Any, model_response: ModelResponse,
                       **kwargs: Any) -> ModelResponse:
            return self._fill(model, self._respond(model, messages, kwargs), model_response)

        async def acompletion(self, model: str, messages: list, *args: Any, model_response: ModelResponse,
                              **kwargs: Any) -> ModelResponse:
            return self._fill(model, await self._arespond(model, messages, kwargs), model_response)

        def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator[GenericStreamingChunk]:
            yield from self._chunks(self._respond(model, messages, kwargs))

        async def astreaming(self, model: str, messages: list, *args: Any,
                             **kwargs: Any) -> AsyncIterator[GenericStreamingChunk]:
            for chunk in self._chunks(await self._arespond(model, messages, kwargs)):
                yield chunk

    return Bridge()
