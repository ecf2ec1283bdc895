"""Stand-ins for what is truly outside: a paid LLM. Registered through the same provider registry as the
built-in models (which installs them into litellm's custom-provider map), or served as an OpenAI-compatible
HTTP server on loopback, like a real provider."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rag.providers import registry
from rag.providers.registry import LocalCall, RegisteredModel


class ScriptedLLM:
    """Replies with the next scripted item (the last one repeats); an Exception item is raised instead."""

    def __init__(self, replies: list[Any]) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict]] = []
        self.tasks: list[str] = []

    def __call__(self, call: LocalCall) -> str:
        self.calls.append(call.messages)
        self.tasks.append(call.task)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


FAKE_MODELS = ("fake/model", "fake/m", "fake/x", "fake/bad")


@contextmanager
def scripted_provider(replies: list[Any], names: tuple[str, ...] = FAKE_MODELS) -> Iterator[ScriptedLLM]:
    """A stand-in for a paid LLM, registered exactly as the built-in offline models are (not offline itself:
    it plays a language model)."""
    provider = ScriptedLLM(replies)
    for name in names:
        registry.register(RegisteredModel(name=name, tasks=frozenset(registry.TASKS), handler=provider,
                                          offline=False))
    try:
        yield provider
    finally:
        for name in names:
            registry.unregister(name)


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
