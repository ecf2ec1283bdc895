"""POST /v1/chat/completions: OpenAI-compatible, so any OpenAI client or chat UI can use the index.
The last user message is the question, earlier user/assistant messages the history; the reply is the
grounded answer followed by its sources, and the full citations and checks ride along in extra fields. Streamed,
the deltas are the checked answer (see rag.qa), so the concatenated content equals the non-streaming reply."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from rag import llm
from rag.api.deps import LibraryDep, MetricsDep, ReadAuth, check_model
from rag.api.schemas import ChatCompletionRequest, ErrorBody
from rag.errors import BadInputError, RagError
from rag.models import Answer, Turn

router = APIRouter(tags=["openai-compatible"], dependencies=[ReadAuth])


def _split(body: ChatCompletionRequest) -> tuple[str, list[Turn], str | None]:
    turns = [Turn(role=m.role, content=m.text()) for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].content.strip():
        raise BadInputError("the last message must be a non-empty user message")
    model = body.model if "/" in body.model else None
    return turns[-1].content, turns[:-1], model


def sources_text(answer: Answer) -> str:
    if not answer.citations:
        return ""
    lines = [f"[{c.n}] {c.title} ({c.doc_id}, chars {c.start}-{c.end})" + (f" {c.source_url}" if c.source_url else "")
             for c in answer.citations]
    return "\n\nSources:\n" + "\n".join(lines)


def _extras(answer: Answer) -> dict[str, Any]:
    return {"citations": [c.model_dump(mode="json") for c in answer.citations], "abstained": answer.abstained,
            "offline_provider": answer.offline_provider, "prompt_hash": answer.prompt_hash,
            "ungrounded_numbers": answer.ungrounded_numbers, "removed_citations": answer.removed_citations,
            "uncited": answer.uncited, "unsupported": [u.model_dump() for u in answer.unsupported]}


@router.post("/v1/chat/completions", responses={400: {"model": ErrorBody}, 502: {"model": ErrorBody}},
             summary="OpenAI-compatible chat completions grounded in the index")
async def chat_completions(body: ChatCompletionRequest, library: LibraryDep, metrics: MetricsDep) -> Any:
    question, history, model = _split(body)
    check_model(library.settings, model)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not body.stream:
        answer = await library.aask(question, history, model=model)
        metrics.observe_answer(answer.model, answer.timings_ms)
        return {
            "id": completion_id, "object": "chat.completion", "created": created, "model": answer.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer.answer + sources_text(answer)}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            **_extras(answer),
        }

    events = library.astream_ask(question, history, model=model)
    first = await anext(events)  # errors before streaming starts stay plain 4xx/5xx
    answer_model = llm.resolve(library.settings.llm, "answer", model).model

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                   "model": answer_model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(payload)}\n\n"

    async def stream() -> AsyncIterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        event: str | Answer = first
        try:
            while not isinstance(event, Answer):
                yield chunk({"content": event})
                event = await anext(events)
            metrics.observe_answer(event.model, event.timings_ms)
            # The deltas were the checked answer text itself (rag.qa), so the streamed content ends up exactly as
            # the non-streaming reply's: the answer, then its sources.
            yield chunk({"content": sources_text(event)}, **_extras(event))
            yield chunk({}, finish="stop")
        except RagError as exc:
            yield f"data: {json.dumps({'error': {'type': type(exc).__name__, 'message': str(exc)}})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")
