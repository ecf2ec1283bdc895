"""Run by test_sentiment in a separate process, to be killed with SIGKILL in the middle of a rescore.
Its provider (a stand-in for a paid LLM) takes 0.3 s per call."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from rag.library import Library
from rag.process import prepare_process
from rag.providers import registry
from rag.providers.registry import LocalCall, RegisteredModel
from rag.sentiment.batch import RescoreRequest
from rag.settings import Settings

VERDICT = '{"score": 0.5, "confidence": 0.8, "evidence": [1], "rationale": "steady"}'


async def slow(call: LocalCall) -> str:
    await asyncio.sleep(0.3)
    return VERDICT


if __name__ == "__main__":
    prepare_process()
    registry.register(RegisteredModel(name="slow/model", tasks=frozenset({"sentiment"}), handler=slow,
                                      offline=False))
    library = Library(Settings(index_dir=Path(sys.argv[1])))
    run = library.prepare_rescore(RescoreRequest(model="slow/model", concurrency=2))
    print(run.job.id, flush=True)
    asyncio.run(run.run())
