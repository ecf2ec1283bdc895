"""Run by test_sentiment in a separate process, to be killed with SIGKILL in the middle of a rescore.
Its provider (a stand-in for a paid LLM) takes 0.3 s per call."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import litellm
from litellm import CustomLLM
from litellm.types.utils import ModelResponse

from rag import llm
from rag.library import Library
from rag.rescore import RescoreRequest
from rag.settings import Settings

VERDICT = '{"score": 0.5, "confidence": 0.8, "evidence": [1], "rationale": "steady"}'


class SlowLLM(CustomLLM):
    async def acompletion(self, model: str, messages: list, *args: Any, model_response: ModelResponse,
                          **kwargs: Any) -> ModelResponse:
        await asyncio.sleep(0.3)
        model_response.choices[0].message.content = VERDICT  # type: ignore[union-attr]
        return model_response


if __name__ == "__main__":
    llm._litellm()
    litellm.custom_provider_map = [*litellm.custom_provider_map, {"provider": "slow", "custom_handler": SlowLLM()}]
    library = Library(Settings(index_dir=Path(sys.argv[1])))
    run = library.prepare_rescore(RescoreRequest(model="slow/model", concurrency=2))
    print(run.job.id, flush=True)
    asyncio.run(run.run())
