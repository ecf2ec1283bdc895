"""The one place that calls litellm. Every call names its task (answer, rewrite, sentiment), and `resolve` turns
the settings into that call's model, server, key, deadline, retries, max tokens and stop sequences.

- A model's api_base/api_key belong to the model they are configured with: a task group naming its own model
  gets only its own connection, and a per-call model override (`--model`, an HTTP `model`) gets none, so
  openai/gpt-4o-mini is never sent to the local server configured for another model.
- Configuration problems (no credentials, unknown provider, no model name, wrong task) are refused before any
  call where they can be seen, and translated to ConfigError (HTTP 400, exit 2) with a one-line hint when the
  provider reports them. They are never retried.
- Retries are ours, not litellm's (its num_retries also retries 401s, and the OpenAI SDK under it retries again:
  one stalled request became five), and the whole call, retries included, runs under one hard wall-clock
  deadline (asyncio.wait_for).

litellm is imported only when a model is really called (its import costs seconds)."""

from __future__ import annotations

import asyncio
import os
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr

from rag.errors import BadInputError, ConfigError, ProviderError, ProviderTimeoutError
from rag.providers import registry
from rag.providers.registry import LocalCall, Task
from rag.settings import LLMSettings

if TYPE_CHECKING:
    from rag.embedding import Embedder

T = TypeVar("T")

# Used when neither RAG_LLM__<TASK>__X nor RAG_LLM__X is set. A rewritten question is one line; a sentiment
# verdict is a small JSON object with a one-sentence rationale.
TASK_DEFAULTS: dict[Task, dict[str, Any]] = {
    "answer": {"max_tokens": 512, "stop": None},
    "rewrite": {"max_tokens": 128, "stop": None},
    "sentiment": {"max_tokens": 512, "stop": None},
}
BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0

Source = Literal["task", "default", "fallback", "override"]


class ModelCall(BaseModel):
    """Everything one model call needs, resolved from the settings for one task."""

    model_config = ConfigDict(frozen=True)

    task: Task
    model: str
    source: Source  # where the model came from: the task group, RAG_LLM__MODEL, the offline fallback, the caller
    api_base: str | None = None
    api_key: SecretStr | None = None
    timeout: float
    num_retries: int
    temperature: float
    max_tokens: int
    stop: list[str] | None = None

    def setting(self, name: str) -> str:
        """The environment variable that configures `name` for this call, for hints."""
        if self.source == "default" and name in ("model", "api_base", "api_key"):
            return f"RAG_LLM__{name.upper()}"
        return f"RAG_LLM__{self.task.upper()}__{name.upper()}"


def resolve(settings: LLMSettings, task: Task, model: str | None = None) -> ModelCall:
    """The call settings of `task`; `model` is a per-call override."""
    own = getattr(settings, task)
    source: Source
    if own.model:
        chosen, api_base, api_key, source = own.model, own.api_base, own.api_key, "task"
    else:
        chosen, source = settings.model, "default"
        api_base, api_key = own.api_base or settings.api_base, own.api_key or settings.api_key
        entry = registry.get(chosen)
        if entry is not None and task not in entry.tasks:
            # The default model is offline and does not do this task (local/extractive cannot score): use the
            # offline model registered for it, as the default configuration always has.
            fallback = next((m.name for m in registry.models() if m.offline and task in m.tasks), None)
            if fallback is not None:
                chosen, api_base, api_key, source = fallback, None, None, "fallback"
    if model and model != chosen:
        chosen, api_base, api_key, source = model, None, None, "override"

    def pick(name: str) -> Any:
        for value in (getattr(own, name), getattr(settings, name)):
            if value is not None:
                return value
        return TASK_DEFAULTS[task][name]

    return ModelCall(task=task, model=chosen, source=source, api_base=api_base, api_key=api_key,
                     timeout=pick("timeout"), num_retries=pick("num_retries"), temperature=pick("temperature"),
                     max_tokens=pick("max_tokens"), stop=pick("stop"))


def litellm_module() -> Any:
    """litellm, imported on first use with the offline providers installed into its custom-provider map."""
    # Without this, importing litellm fetches its model cost map from the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    registry.install(litellm)
    return litellm


def _override_hint(call: ModelCall) -> str:
    return (f" (a per-call model gets no api_base/api_key from the configured one: configure it as "
            f"RAG_LLM__{call.task.upper()}__MODEL with RAG_LLM__{call.task.upper()}__API_BASE/API_KEY)"
            if call.source == "override" else "")


def _credentials_hint(call: ModelCall, missing: str | None = None) -> str:
    if call.api_base:
        return (f"a local OpenAI-compatible server needs any non-empty key: {call.setting('api_key')}=dummy"
                + _override_hint(call))
    env = f" or {missing}" if missing else ""
    return f"set {call.setting('api_key')}{env}" + _override_hint(call)


def prepare(settings: LLMSettings, task: Task, model: str | None = None) -> ModelCall:
    """Resolve and check a call before any work is done: a registered model must do the task; any other must name
    a provider litellm knows, a model, and (when the provider needs one and no api_base says otherwise) a key."""
    call = resolve(settings, task, model)
    if registry.check(call.model, task) is not None:
        return call
    provider, _, name = call.model.partition("/")
    if "/" in call.model and not name.strip():
        raise ConfigError(f"model {call.model!r} ({task}) names no model after the provider; e.g. "
                          f"{provider}/gpt-4o-mini (set {call.setting('model')})")
    litellm = litellm_module()
    try:
        _, found_provider, _, _ = litellm.get_llm_provider(call.model, api_base=call.api_base)
    except Exception as exc:  # litellm raises BadRequestError "LLM Provider NOT provided" for unknown prefixes
        raise ConfigError(f"model {call.model!r} ({task}): litellm knows no provider {provider!r}; model names look "
                          f"like openai/gpt-4o-mini, anthropic/..., ollama/llama3, or openai/NAME with an api_base "
                          f"(set {call.setting('model')})") from exc
    if call.api_key is None:
        missing = [k for k in litellm.validate_environment(call.model).get("missing_keys", [])
                   if k.endswith("_API_KEY")]
        if missing:
            raise ConfigError(f"model {call.model} ({task}) has no API key ({found_provider} needs one): "
                              + _credentials_hint(call, missing[0]))
    return call


def is_offline(model: str) -> bool:
    return registry.is_offline(model)


# Errors about the configuration (every call would fail the same way) and about one request (another may pass).
_CONFIG_PROBLEMS = ("AuthenticationError", "PermissionDeniedError", "NotFoundError", "UnsupportedParamsError")
_REQUEST_PROBLEMS = ("BadRequestError", "ContextWindowExceededError", "ContentPolicyViolationError",
                     "UnprocessableEntityError")
# Raised by the OpenAI client before any request when it has no key; litellm reports it as a server error.
_NO_CREDENTIALS = re.compile(r"Missing credentials|api_key client option must be set", re.IGNORECASE)
_CONTEXT = re.compile(r"context (?:length|window|size)|maximum context|exceeds the available context|"
                      r"too many tokens", re.IGNORECASE)


def _hint(call: ModelCall, kind: str, message: str) -> str:
    if kind == "ContextWindowExceededError" or _CONTEXT.search(message):
        return ("the prompt is longer than the model's context: give the server a larger one (llama.cpp: -c 4096 "
                "or more; sentiment prompts reach ~3,400 tokens with a repair turn) or lower RAG_RETRIEVAL__K / "
                "RAG_SENTIMENT__MAX_PASSAGES")
    if kind in ("AuthenticationError", "PermissionDeniedError") or _NO_CREDENTIALS.search(message):
        return _credentials_hint(call)
    if kind == "NotFoundError":
        return f"check the model name ({call.setting('model')}) and api_base ({call.setting('api_base')})"
    if "LLM Provider NOT provided" in message:
        return f"model names need a litellm provider prefix, e.g. openai/gpt-4o-mini ({call.setting('model')})"
    if kind == "UnsupportedParamsError":
        return f"the model rejects a parameter; e.g. set {call.setting('stop')}='[]'"
    return "the provider rejected this request as it is (see its message)"


def _translate(exc: Exception, call: ModelCall) -> Exception:
    litellm = litellm_module()
    model = f"{call.model} ({call.task})"
    if isinstance(exc, litellm.Timeout):
        return ProviderTimeoutError(f"model {model} timed out: {str(exc).splitlines()[0][:300]}")
    # litellm messages can carry a whole traceback; the caller gets the first line only.
    message = (getattr(exc, "message", None) or str(exc)).split("\n", 1)[0]
    message = re.sub(r"^(litellm\.\w+:\s*)+", "", message)[:300]
    kind = type(exc).__name__
    config = (kind in _CONFIG_PROBLEMS or "LLM Provider NOT provided" in message
              or _NO_CREDENTIALS.search(message) is not None)
    if config or kind in _REQUEST_PROBLEMS:
        # The caller must change something; a retry cannot help.
        text = f"model {model} refused the request: {kind}: {message}. Hint: {_hint(call, kind, message)}"
        return ConfigError(text) if config else BadInputError(text)
    status = getattr(exc, "status_code", None)
    retryable = isinstance(exc, litellm.APIConnectionError) or (
        isinstance(status, int) and (status == 429 or status >= 500))
    return ProviderError(f"model {model} failed: {kind}: {message}", retryable=retryable)


@contextmanager
def _errors(call: ModelCall) -> Iterator[None]:
    try:
        yield
    except (BadInputError, ProviderError, StopAsyncIteration):
        raise
    except Exception as exc:  # litellm raises many provider-specific types; all become domain errors
        raise _translate(exc, call) from exc


def _content(response: Any) -> str:
    return response.choices[0].message.content or ""


def _kwargs(call: ModelCall, timeout: float, embedder: Embedder | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": call.model, "timeout": timeout, "temperature": call.temperature, "max_tokens": call.max_tokens,
        # Retries are ours (see the module docstring): none in litellm, none in the OpenAI SDK under it.
        "num_retries": 0, "max_retries": 0,
        # Parameters litellm knows a model rejects (stop or temperature on OpenAI reasoning models) are dropped
        # rather than failing every call.
        "drop_params": True,
    }
    if call.stop:
        kwargs["stop"] = call.stop
    if call.api_base:
        kwargs["api_base"] = call.api_base
    if call.api_key:
        kwargs["api_key"] = call.api_key.get_secret_value()
    if registry.get(call.model) is not None:
        kwargs["metadata"] = {registry.CALL_KEY: LocalCall(model=call.model, task=call.task, embedder=embedder)}
    return kwargs


class _Deadline:
    """One wall-clock budget for a whole call: every wait (attempts, backoff, stream chunks) draws on it."""

    def __init__(self, call: ModelCall) -> None:
        self.call = call
        self.loop = asyncio.get_running_loop()
        self.end = self.loop.time() + call.timeout

    def left(self) -> float:
        return self.end - self.loop.time()

    def expired(self) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"model {self.call.model} ({self.call.task}) did not finish within its {self.call.timeout:g} s deadline "
            f"(retries included; {self.call.setting('timeout')})")

    async def run(self, awaitable: Awaitable[T]) -> T:
        left = self.left()
        if left <= 0:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise self.expired()
        try:
            return await asyncio.wait_for(awaitable, left)
        except TimeoutError:
            raise self.expired() from None


async def _with_retries(call: ModelCall, retries: int, once: Callable[[], Awaitable[T]]) -> T:
    """`once()` again on rate limits, 5xx, connection errors and per-request timeouts, with exponential backoff and
    jitter; configuration errors and malformed requests are raised at once."""
    for attempt in range(retries + 1):
        try:
            return await once()
        except ProviderError as exc:
            if not exc.retryable or attempt == retries:
                raise
        await asyncio.sleep(min(BACKOFF_SECONDS * 2**attempt, MAX_BACKOFF_SECONDS) * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable: the last attempt returns or raises")


async def acomplete(messages: list[dict[str, str]], settings: LLMSettings, task: Task, model: str | None = None,
                    embedder: Embedder | None = None, retries: int | None = None) -> str:
    """The model's reply. `retries` overrides the configured retries (batch jobs retry with their own backoff)."""
    call = prepare(settings, task, model)
    deadline = _Deadline(call)
    litellm = litellm_module()

    async def once() -> str:
        with _errors(call):
            # Each request gets what is left of the deadline, so litellm's own timeout fires first when it can.
            kwargs = _kwargs(call, max(deadline.left(), 0.001), embedder)
            return _content(await litellm.acompletion(messages=messages, **kwargs))

    return await deadline.run(_with_retries(call, call.num_retries if retries is None else retries, once))


async def astream(messages: list[dict[str, str]], settings: LLMSettings, task: Task, model: str | None = None,
                  embedder: Embedder | None = None) -> AsyncIterator[str]:
    """Text deltas of the reply. Opening the stream is retried like `acomplete`; once text has arrived it is not
    (a retry would repeat it). Every wait for the next delta draws on the same deadline."""
    call = prepare(settings, task, model)
    deadline = _Deadline(call)
    litellm = litellm_module()

    async def once() -> Any:
        with _errors(call):
            kwargs = _kwargs(call, max(deadline.left(), 0.001), embedder)
            return await litellm.acompletion(messages=messages, stream=True, **kwargs)

    stream = await deadline.run(_with_retries(call, call.num_retries, once))
    chunks = stream.__aiter__()
    try:
        while True:
            with _errors(call):
                try:
                    chunk = await deadline.run(chunks.__anext__())
                except StopAsyncIteration:
                    return
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                yield delta
    finally:
        # Close the connection on a deadline or an abandoned stream: a local server otherwise keeps generating
        # for nobody (llama.cpp holds the slot until the client goes away).
        close = getattr(stream, "aclose", None)
        if close is not None:
            with suppress(Exception):
                await close()
