"""POST /v1/ask: a cited answer, or Server-Sent Events (token..., answer) with stream=true."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette.sse import EventSourceResponse

from rag.api.deps import LibraryDep, MetricsDep, ReadAuth, check_model
from rag.api.schemas import AskRequest, ErrorBody
from rag.errors import RagError
from rag.models import Answer

router = APIRouter(tags=["answers"], dependencies=[ReadAuth])


@router.post("/v1/ask", response_model=Answer, responses={400: {"model": ErrorBody}, 502: {"model": ErrorBody}},
             summary="Answer a question with citations")
async def ask(body: AskRequest, library: LibraryDep, metrics: MetricsDep) -> Answer | EventSourceResponse:
    """Retrieves passages, asks the model, checks citations, numbers and support per sentence. With
    `stream=true` the response is `text/event-stream`: `token` events carry the checked answer text, released a
    sentence at a time once checked (their concatenation is exactly the final `answer`; nothing shown is taken
    back), then one `answer` event carries the checked Answer JSON with its flags (or an `error` event)."""
    check_model(library.settings, body.model)
    if not body.stream:
        answer = await library.aask(body.question, body.history, body.k, body.filters, body.model)
        metrics.observe_answer(answer.model, answer.timings_ms)
        return answer

    events = library.astream_ask(body.question, body.history, body.k, body.filters, body.model)

    # Validate and fail before the stream opens, so bad input is still a plain 4xx.
    first = await anext(events)

    async def sse() -> AsyncIterator[dict[str, str]]:
        event: str | Answer = first
        try:
            while True:
                if isinstance(event, Answer):
                    metrics.observe_answer(event.model, event.timings_ms)
                    yield {"event": "answer", "data": event.model_dump_json()}
                    return
                yield {"event": "token", "data": event}
                event = await anext(events)
        except RagError as exc:
            yield {"event": "error", "data": ErrorBody(error={"type": type(exc).__name__,
                                                              "message": str(exc)}).model_dump_json()}

    return EventSourceResponse(sse())
