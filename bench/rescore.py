"""Batch rescoring throughput against a simulated provider with a fixed 200 ms latency, at several
concurrencies, through the real path (a registered provider called through litellm, journal writes, document loads).
Efficiency = measured documents/s / ideal (concurrency / latency). Goal: >= 0.8 at concurrency 32.

    python bench/rescore.py [--latency 0.2] [--concurrency 1 8 32]"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_transcripts, peak_rss_mb, print_table, write_result  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.models import Document  # noqa: E402
from rag.process import prepare_process  # noqa: E402
from rag.providers import registry  # noqa: E402
from rag.providers.registry import LocalCall, RegisteredModel  # noqa: E402
from rag.sentiment.batch import RescoreRequest  # noqa: E402
from rag.settings import Settings  # noqa: E402


def simulated(latency: float) -> registry.Handler:
    async def respond(call: LocalCall) -> str:
        await asyncio.sleep(latency)
        return '{"score": 0.25, "confidence": 0.6, "evidence": [1, 2, 3], "rationale": "simulated"}'

    return respond


def corpus(n: int) -> list[Document]:
    """n documents of ~3 chunks each, cut from earnings-call transcripts (realistic text, cheap to embed)."""
    docs = []
    for call in load_transcripts(10_000):
        for part in range(0, len(call.text) - 2000, 2000):
            docs.append(Document(id=f"{call.id}-{part}", text=call.text[part:part + 2000], title=call.title,
                                 tickers=call.tickers))
            if len(docs) == n:
                return docs
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.2, help="Seconds per simulated model call.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=8.0, help="Target duration of each run at ideal speed.")
    args = parser.parse_args()

    prepare_process()
    for concurrency in args.concurrency:
        registry.register(RegisteredModel(name=f"sim/c{concurrency}", tasks=frozenset({"sentiment"}),
                                          handler=simulated(args.latency), offline=False))
    # Enough documents that every run lasts ~`seconds` at ideal speed.
    sizes = {c: max(c * 4, round(args.seconds * c / args.latency)) for c in args.concurrency}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Settings(index_dir=Path(tmp) / "index"))
        started = time.perf_counter()
        library.add_documents(corpus(max(sizes.values())))
        print(f"corpus: {max(sizes.values())} documents indexed in {time.perf_counter() - started:.1f}s")
        all_docs = [d.id for d in library.list_documents()]
        for concurrency in args.concurrency:
            n = sizes[concurrency]
            # A model name per run, so no run finds another's scores in the cache.
            request = RescoreRequest(model=f"sim/c{concurrency}", concurrency=concurrency,
                                     filters={"doc_ids": all_docs[:n]})
            run = library.prepare_rescore(request)
            started = time.perf_counter()
            job = asyncio.run(run.run())
            seconds = time.perf_counter() - started
            assert job.scored == n and job.failed == 0, job
            ideal = concurrency / args.latency
            rows.append({"concurrency": concurrency, "documents": n, "seconds": round(seconds, 2),
                         "docs_per_s": round(n / seconds, 1), "ideal_docs_per_s": round(ideal, 1),
                         "efficiency": round(n / seconds / ideal, 3)})
    print_table(rows, ["concurrency", "documents", "seconds", "docs_per_s", "ideal_docs_per_s", "efficiency"])
    path = write_result("rescore", {"latency_s": args.latency, "runs": rows, "peak_rss_mb": round(peak_rss_mb())})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
