"""Stand-ins for what is truly outside: a paid LLM. Registered through litellm's own mechanisms
(custom provider map, or an OpenAI-compatible HTTP server on loopback), like a real provider."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import litellm
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from litellm import CustomLLM
from litellm.types.utils import ModelResponse


class ScriptedLLM(CustomLLM):
    """Replies with the next scripted item; an Exception item is raised instead."""

    def __init__(self, replies: list[Any]) -> None:
        super().__init__()
        self.replies = list(replies)
        self.calls: list[list[dict]] = []

    def _next(self, messages: list) -> str:
        self.calls.append(messages)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def completion(self, model: str, messages: list, *args: Any, model_response: ModelResponse,
                   **kwargs: Any) -> ModelResponse:
        model_response.choices[0].message.content = self._next(messages)  # type: ignore[union-attr]
        return model_response

    async def acompletion(self, model: str, messages: list, *args: Any, model_response: ModelResponse,
                          **kwargs: Any) -> ModelResponse:
        return self.completion(model, messages, model_response=model_response)


@contextmanager
def scripted_provider(replies: list[Any], name: str = "fake") -> Iterator[ScriptedLLM]:
    from rag import llm

    llm._litellm()  # the local provider must be registered first so we add beside it
    provider = ScriptedLLM(replies)
    before = list(litellm.custom_provider_map)
    litellm.custom_provider_map = [*before, {"provider": name, "custom_handler": provider}]
    try:
        yield provider
    finally:
        litellm.custom_provider_map = before


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def fake_openai_server(content: str, status: int = 200) -> Iterator[tuple[str, list[dict]]]:
    """An OpenAI-compatible /v1/chat/completions on loopback; yields (api_base, received requests)."""
    app = FastAPI()
    received: list[dict] = []

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        received.append(body)
        if status != 200:
            return JSONResponse({"error": {"message": "upstream broke", "type": "server_error"}}, status_code=status)
        return JSONResponse({
            "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        })

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started:
        assert time.time() < deadline, "fake server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1", received
    finally:
        server.should_exit = True
        thread.join(5)
