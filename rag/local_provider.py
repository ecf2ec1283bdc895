"""The offline default provider, registered with litellm as `local/...` so the rest of the code calls it
exactly like a real model. It is NOT a generative model:

- `local/extractive` answers by quoting the best-matching sentences of the passages in the prompt
  (rag.extractive) and rewrites follow-ups by carrying the previous question along.
- `local/finance-sentiment` classifies each sentence of the passages with a head trained on Financial
  PhraseBank (rag.finance_sentiment; non-commercial) and replies with the JSON the sentiment prompt asks for.

It reads the same prompt a real model gets, finding the passages and question by their tags."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import numpy as np
from litellm import CustomLLM
from litellm.types.utils import GenericStreamingChunk, ModelResponse

from rag import extractive
from rag.finance_sentiment import FinanceSentimentClassifier, load_head
from rag.finance_sentiment import verdict as finance_sentiment_verdict
from rag.llm import LOCAL_MODELS

_PASSAGE = re.compile(r'<passage id="(\d+)"[^>]*>\n?(.*?)\n?</passage>', re.DOTALL)
_TAG = "<{0}>\n?(.*?)\n?</{0}>"
_TURN = re.compile(r"^(user|assistant): (.*)$", re.MULTILINE)


def _tag(text: str, name: str) -> str | None:
    match = re.search(_TAG.format(name), text, re.DOTALL)
    return match.group(1).strip() if match else None


class LocalProvider(CustomLLM):
    """Handles every `local/<name>` model; see module docstring for what each name does."""

    def __init__(self) -> None:
        super().__init__()
        self.embed: Callable[[list[str]], np.ndarray] | None = None
        self._classifier: FinanceSentimentClassifier | None = None

    def respond(self, model: str, messages: list[dict[str, Any]]) -> str:
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        name = model.split("/", 1)[-1]
        if name == "finance-sentiment":
            return self._sentiment(prompt)
        if name != "extractive":
            raise ValueError(f"unknown local model {model!r}; available: {', '.join(LOCAL_MODELS)}")
        followup = _tag(prompt, "followup")
        if followup is not None:
            history = [(m.group(1), m.group(2)) for m in _TURN.finditer(_tag(prompt, "history") or "")]
            return extractive.rewrite(history, followup)
        question = _tag(prompt, "question")
        if question is None:
            raise ValueError("local/extractive needs a prompt with <question> and <passages> (answer.vN)")
        passages = {int(n): text for n, text in _PASSAGE.findall(prompt)}
        return extractive.answer(question, passages, self.embed)

    def _sentiment(self, prompt: str) -> str:
        # Only the first user turn holds the document; a repair turn repeats nothing we need.
        passages = {int(n): text for n, text in _PASSAGE.findall(prompt)}
        if not passages:
            raise ValueError("local/finance-sentiment needs a prompt with numbered <passage> tags (sentiment.vN)")
        if self.embed is None:
            raise ValueError("local/finance-sentiment needs an embedder: call rag.llm.configure_local_provider")
        if self._classifier is None or self._classifier.embed != self.embed:
            self._classifier = FinanceSentimentClassifier(load_head(), self.embed)
        return json.dumps(finance_sentiment_verdict(self._classifier, passages))

    def _response(self, model: str, messages: list, model_response: ModelResponse) -> ModelResponse:
        text = self.respond(model, messages)
        model_response.choices[0].message.content = text  # type: ignore[union-attr]  # non-streaming choice
        model_response.model = model
        model_response.created = int(time.time())
        return model_response

    def _chunks(self, model: str, messages: list) -> Iterator[GenericStreamingChunk]:
        words = self.respond(model, messages).split(" ")
        for i, word in enumerate(words):
            last = i == len(words) - 1
            yield GenericStreamingChunk(text=word if last else word + " ", is_finished=last,
                                        finish_reason="stop" if last else "", usage=None, index=0)

    def completion(self, model: str, messages: list, *args: Any, model_response: ModelResponse,
                   **kwargs: Any) -> ModelResponse:
        return self._response(model, messages, model_response)

    async def acompletion(self, model: str, messages: list, *args: Any, model_response: ModelResponse,
                          **kwargs: Any) -> ModelResponse:
        # CPU-bound (embedding, classification): keep the event loop free for other requests.
        return await asyncio.to_thread(self._response, model, messages, model_response)

    def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator[GenericStreamingChunk]:
        yield from self._chunks(model, messages)

    async def astreaming(self, model: str, messages: list, *args: Any,
                         **kwargs: Any) -> AsyncIterator[GenericStreamingChunk]:
        for chunk in self._chunks(model, messages):
            yield chunk
