"""The question-answering pipeline, written once (async): check the question, rewrite a follow-up against the
history, retrieve, abstain when nothing is relevant, prompt the model, check the answer. `ask` is a thin sync
wrapper for callers without an event loop."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from rag import llm
from rag.answer import AnswerChecker, abstention, answer_messages
from rag.errors import BadInputError
from rag.models import Answer, Passage, SearchFilters, Turn
from rag.prompt_tags import format_history
from rag.prompts import load_prompt
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.embedding import Embedder

T = TypeVar("T")
Search = Callable[[str, int | None, SearchFilters | None], list[Passage]]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _pieces(text: str) -> list[str]:
    """Checked text as word-sized deltas (each word with the whitespace before it), so clients render it as it
    comes; concatenated they are the text."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p]


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code on one long-lived background event loop. A fresh loop per call
    (asyncio.run) strands litellm's logging worker, which is bound to the first loop it saw and warns on each
    new one."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="rag-sync-loop", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(coro, _loop).result()


class QuestionAnswerer:
    def __init__(self, settings: Settings, search: Search, embedder: Callable[[], Embedder],
                 require_index: Callable[[], object]) -> None:
        self.settings = settings
        self.search = search
        self.embedder = embedder  # called only when an offline model needs it
        self.require_index = require_index  # raises IndexMissingError: "no index" before any model is loaded

    def check_question(self, question: str) -> str:
        question = question.strip()
        if not question:
            raise BadInputError("question is empty")
        if len(question) > self.settings.max_question_chars:
            raise BadInputError(f"question is longer than {self.settings.max_question_chars} characters")
        return question

    def _retrieve(self, standalone: str, k: int | None, filters: SearchFilters | None,
                  timings: dict[str, float]) -> list[Passage] | None:
        """Passages to answer from, or None when nothing relevant enough was found (abstain)."""
        started = time.perf_counter()
        passages = self.search(standalone, k, filters)
        timings["retrieve"] = _ms(started)
        best = max((p.dense_score or 0.0 for p in passages), default=0.0)
        return passages if passages and best >= self.settings.retrieval.min_dense_score else None

    async def astream(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
                      filters: SearchFilters | None = None, model: str | None = None,
                      stream: bool = True) -> AsyncIterator[str | Answer]:
        """Yields the answer's checked text in pieces (only when `stream`), then the checked Answer. Nothing the
        checks would change is shown: each sentence is released once it is complete and checked (markers pointing
        at no passage removed) and the answer is known not to be an abstention, so the pieces, concatenated, are
        exactly `Answer.answer` (the abstention message on abstention). Flags (uncited, unsupported, ungrounded)
        ride in the Answer; the flagged sentences are shown."""
        question = self.check_question(question)
        self.require_index()
        # Both calls are checked before any work, so a misconfigured model is a 400 before retrieval or streaming.
        answer_call = llm.prepare(self.settings.llm, "answer", model)
        rewrite_call = llm.prepare(self.settings.llm, "rewrite", model) if history else None
        template = load_prompt(self.settings.prompts_dir, self.settings.llm.answer_prompt)
        offline = llm.is_offline(answer_call.model) or (rewrite_call is not None and llm.is_offline(rewrite_call.model))
        embedder = self.embedder() if offline else None
        timings: dict[str, float] = {}
        standalone = question
        if history:
            rewrite = load_prompt(self.settings.prompts_dir, self.settings.llm.rewrite_prompt).messages(
                history=format_history(list(history)), question=question)
            started = time.perf_counter()
            reply = await llm.acomplete(rewrite, self.settings.llm, "rewrite", model, embedder)
            # The rewritten question is the reply's first line: chatty models add an explanation after it.
            standalone = next((line.strip() for line in reply.splitlines() if line.strip()), "") or question
            timings["rewrite"] = _ms(started)
        passages = await asyncio.to_thread(self._retrieve, standalone, k, filters, timings)
        model = answer_call.model
        if passages is None:
            answer = abstention(question, standalone, [], model, template, timings)
            if stream:
                for piece in _pieces(answer.answer):
                    yield piece
            yield answer
            return
        started = time.perf_counter()
        messages = answer_messages(template, standalone, passages)
        checker = AnswerChecker(passages, template)
        if stream:
            async for delta in llm.astream(messages, self.settings.llm, "answer", model, embedder):
                for piece in _pieces(checker.feed(delta)):
                    yield piece
        else:
            checker.feed(await llm.acomplete(messages, self.settings.llm, "answer", model, embedder))
        tail = checker.finish()
        timings["llm"] = _ms(started)
        if stream:
            for piece in _pieces(tail):
                yield piece
        yield checker.result(question, standalone, model, timings)

    async def aask(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
                   filters: SearchFilters | None = None, model: str | None = None) -> Answer:
        async for event in self.astream(question, history, k, filters, model, stream=False):
            if isinstance(event, Answer):
                return event
        raise AssertionError("the pipeline always ends with an Answer")

    def ask(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
            filters: SearchFilters | None = None, model: str | None = None) -> Answer:
        return run_sync(self.aask(question, history, k, filters, model))
