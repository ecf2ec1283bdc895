"""Ingest embedding on Ray: 1 vs 2 local workers vs the single-process path, same chunks (issue #16).

Each run ingests the same earnings-call transcripts into a fresh index (chunking, embedding, segment writes),
so the figure is what `rag ingest PATH --ray` gains end to end. This machine has 2 cores, so 2 workers is the
most it can show; a cluster scales the embedding part by its worker count while this process chunks, writes
segments and journals (see docs/benchmarks.md for the projection).

    python bench/ray_scaling.py [--docs 6]"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_transcripts, print_table, write_result  # noqa: E402
from rag.embedding.factory import make_embedder  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=6, help="Transcripts to ingest.")
    args = parser.parse_args()
    import ray

    from rag.embedding.ray import RayEmbedder

    settings = Settings()
    docs = load_transcripts(args.docs)
    local = make_embedder(settings.embedding)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    rows = []
    for label, workers in (("single process", 0), ("ray, 1 worker", 1), ("ray, 2 workers", 2)):
        embedder = RayEmbedder(settings.embedding, local, workers=workers) if workers else local
        if workers:
            embedder.embed_batch(["warm-up: every actor loads its model"] * workers)
        with tempfile.TemporaryDirectory() as tmp:
            lib = Library(settings.model_copy(update={"index_dir": Path(tmp) / "index"}), embedder=embedder)
            started = time.perf_counter()
            report = lib.add_documents(docs)
            seconds = time.perf_counter() - started
        if workers:
            embedder.close()
        rows.append({"path": label, "chunks": report.chunks, "seconds": round(seconds, 1),
                     "chunks_per_s": round(report.chunks / seconds, 1)})
        print_table(rows[-1:], list(rows[-1]))
    ray.shutdown()
    base = rows[0]["chunks_per_s"]
    for row in rows:
        row["vs_single"] = round(row["chunks_per_s"] / base, 2)
    print()
    print_table(rows, list(rows[0]))
    print(f"\nwrote {write_result('ray_scaling', {'docs': args.docs, 'rows': rows})}")


if __name__ == "__main__":
    main()
