"""The question-answering pipeline, written once (async): check the question, rewrite a follow-up against the
history, retrieve, abstain when nothing is relevant, prompt the model, check the answer. `ask` is a thin sync
wrapper for callers without an event loop."""

from __future__ import annotations

import asyncio
import atexit
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from rag import llm
from rag.answer import ABSTAIN_MESSAGE, AnswerChecker, abstention, answer_messages
from rag.errors import BadInputError
from rag.models import Answer, Passage, SearchFilters, Turn
from rag.prompt_tags import format_history
from rag.prompts import load_prompt
from rag.retrieve import Retrieval
from rag.settings import Settings
from rag.text import is_subject

if TYPE_CHECKING:
    from rag.embedding import Embedder

T = TypeVar("T")
Search = Callable[[str, int | None, SearchFilters | None], Retrieval]


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
            # Stopped before any atexit handler runs: litellm registers its logging worker's exit flush when that
            # module is first imported, at the first call's logging, after this loop exists, and atexit runs the
            # last registered first, so its flush ran on the main thread while this loop still ran the same
            # callbacks ("LoggingWorker error: cannot reuse already awaited coroutine"). threading's exit hooks
            # (what concurrent.futures uses to stop its workers) run before atexit's.
            getattr(threading, "_register_atexit", atexit.register)(_stop_loop, _loop)
    return asyncio.run_coroutine_threadsafe(coro, _loop).result()


def _stop_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what still runs there (litellm's logging worker) so the interpreter exits without warnings."""
    async def cancel_all() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=2)
    except Exception:  # noqa: BLE001  # best effort at exit: a stuck task must not block the interpreter
        pass
    loop.call_soon_threadsafe(loop.stop)


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
                  timings: dict[str, float]) -> tuple[list[Passage], str | None]:
        """Passages to answer from, and the reason to abstain without asking a model, if there is one: nothing
        relevant enough, or the question names a company the index does not hold (then the passages found are
        kept as the closest ones, for the reader, never as an answer)."""
        started = time.perf_counter()
        found = self.search(standalone, k or self.settings.retrieval.answer_k, filters)
        timings["retrieve"] = _ms(started)
        best = max((p.dense_score or 0.0 for p in found.passages), default=0.0)
        if not found.passages or best < self.settings.retrieval.min_dense_score:
            return [], ABSTAIN_MESSAGE
        # A name the index links to no company (e.g. "Apple's", "did Tesla") that no passage has as the subject of
        # a sentence: the question is about something the documents do not cover ("with the Apple launch" in
        # ZAGG's call says nothing of Apple's revenue). A name a passage does speak about ("Highline reported
        # ...", a customer in a customer map) is left to the model, which must quote that passage.
        absent = [name for name in found.unknown if not any(is_subject(p.text, name) for p in found.passages)]
        if absent:
            return found.passages, f"{ABSTAIN_MESSAGE} No indexed document is about {' or '.join(absent)}."
        return found.passages, None

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
        passages, reason = await asyncio.to_thread(self._retrieve, standalone, k, filters, timings)
        model = answer_call.model
        if reason is not None:
            answer = abstention(question, standalone, passages, model, template, timings, reason)
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
