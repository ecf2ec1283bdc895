"""Ingest throughput (chunks/s) of Library.add_documents vs bare model.encode on the same chunk texts,
in one run. Goal: ratio >= 0.85.   python bench/ingest.py [--docs 8]"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_transcripts, peak_rss_mb, print_table, write_result  # noqa: E402
from rag.chunking import chunk_document  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=8, help="Transcripts to ingest.")
    args = parser.parse_args()

    docs = load_transcripts(args.docs)
    settings = Settings()
    embedder = settings.make_embedder()
    texts = [c.text for d in docs for c in chunk_document(d, settings.chunking)]
    embedder.embed_batch(texts[:64])  # warm-up: first call pays one-off costs

    t0 = time.perf_counter()
    embedder.model.encode(texts, batch_size=settings.embedding.batch_size, normalize_embeddings=True,
                          show_progress_bar=False)
    bare_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(settings.model_copy(update={"index_dir": Path(tmp) / "index"}), embedder=embedder)
        t0 = time.perf_counter()
        report = lib.add_documents(docs)
        rag_s = time.perf_counter() - t0
    assert report.chunks == len(texts)

    rows = [
        {"path": "bare model.encode", "chunks": len(texts), "seconds": round(bare_s, 2),
         "chunks_per_s": round(len(texts) / bare_s, 1)},
        {"path": "rag ingest (chunk+embed+index)", "chunks": len(texts), "seconds": round(rag_s, 2),
         "chunks_per_s": round(len(texts) / rag_s, 1)},
    ]
    ratio = bare_s / rag_s
    print_table(rows, ["path", "chunks", "seconds", "chunks_per_s"])
    print(f"ratio rag/bare throughput: {ratio:.3f} (goal >= 0.85); peak RSS {peak_rss_mb():.0f} MB")
    out = write_result("ingest", {"docs": len(docs), "rows": rows, "ratio": round(ratio, 3), "goal": 0.85,
                                  "peak_rss_mb": round(peak_rss_mb())})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
