"""Stand-ins for what is truly outside: a paid LLM. Registered through the same provider registry as the
built-in models (which installs them into litellm's custom-provider map), or served as an OpenAI-compatible
HTTP server on loopback, like a real provider."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

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


def kill_9_at(proc: subprocess.Popen, marker: Path, timeout: float = 120) -> None:
    """SIGKILL `proc` once it has written `marker` (the point it stalls at), then reap it."""
    try:
        deadline = time.time() + timeout
        while not marker.exists():
            assert proc.poll() is None, f"the process exited before writing {marker.name}"
            assert time.time() < deadline
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()


def wait_until_serving(proc: subprocess.Popen, base: str, timeout: float = 120) -> None:
    """Poll a `rag serve` process's /health until it answers 200."""
    deadline = time.time() + timeout
    while True:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "server exited"
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.time() < deadline, "server did not come up"
        time.sleep(0.3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Status:
    """An HTTP error reply, e.g. Status(429) or Status(400, "the request exceeds the available context size")."""

    code: int
    message: str = "upstream broke"


@dataclass(frozen=True)
class Stall:
    """Hold the request open until the client gives up (or `seconds` pass); `after` is streamed first."""

    seconds: float = 30.0
    after: str = ""


ECHO = object()  # reply with the prompt itself, as a model without its chat template does


class Received(dict):
    """One request body as received, with its Authorization header."""

    authorization: str | None = None


def _echo(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in body["messages"])


def _apply_stop(content: str, stop: Any) -> str:
    """Cut at the first stop sequence, as llama.cpp and OpenAI do."""
    for s in [stop] if isinstance(stop, str) else (stop or []):
        if s in content:
            content = content[:content.index(s)]
    return content


@contextmanager
def fake_openai_server(content: Any = "", status: int = 200,
                       api_key: str | None = None) -> Iterator[tuple[str, list[Received]]]:
    """A scripted OpenAI-compatible /v1/chat/completions on loopback, like llama.cpp's server; yields (api_base,
    received requests). `content` is one reply or a list of them, consumed one per request (the last repeats):
    a string, ECHO, Status(...) or Stall(...). With `api_key`, requests without that bearer key get a 401.
    Honours `stop` and `stream` as real servers do."""
    script = list(content) if isinstance(content, list) else [content if status == 200 else Status(status)]
    app = FastAPI()
    received: list[Received] = []

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = Received(await request.json())
        body.authorization = request.headers.get("authorization")
        received.append(body)
        if api_key is not None and body.authorization != f"Bearer {api_key}":
            return JSONResponse({"error": {"message": "Invalid API Key", "type": "authentication_error"}},
                                status_code=401)
        reply = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(reply, Status):
            return JSONResponse({"error": {"message": reply.message, "type": "server_error"}}, status_code=reply.code)
        if isinstance(reply, Stall) and not body.get("stream"):
            await _stall(request, reply.seconds)
            return JSONResponse({"error": {"message": "stalled"}}, status_code=500)
        text = _echo(body) if reply is ECHO else reply.after if isinstance(reply, Stall) else reply
        text = _apply_stop(text, body.get("stop"))
        base = {"id": "chatcmpl-1", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            return JSONResponse({
                **base, "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            })

        async def events() -> AsyncIterator[str]:
            words = text.split(" ")
            for i, word in enumerate(words):
                delta = {"content": word if i == len(words) - 1 else word + " "}
                yield "data: " + json.dumps({**base, "object": "chat.completion.chunk", "choices": [
                    {"index": 0, "delta": delta, "finish_reason": None}]}) + "\n\n"
            if isinstance(reply, Stall):
                await _stall(request, reply.seconds)
                return
            yield "data: " + json.dumps({**base, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    with serve_in_thread(app, start_seconds=10) as base:
        yield f"{base}/v1", received


@contextmanager
def serve_in_thread(app: Any, start_seconds: float = 30) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port in a daemon thread (sharing this process's loaded models);
    yields its base URL once it accepts connections, stops it on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + start_seconds
    while not server.started:
        assert thread.is_alive() and time.time() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


async def _stall(request: Request, seconds: float) -> None:
    """Wait until the client disconnects, so a stalled request ends with the test that made it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not await request.is_disconnected():
        await asyncio.sleep(0.05)
