"""Ingest throughput (chunks/s) of Library.add_documents per embedding backend (torch, onnx, onnx-int8) vs bare
sentence-transformers `model.encode` on the same chunk texts, in one run; peak RSS.
Goal: the default backend >= 0.85 x bare.   python bench/ingest.py [--docs 8] [--backends torch onnx onnx-int8]"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_transcripts, peak_rss_mb, print_table, write_result  # noqa: E402
from rag.chunking import chunk_document  # noqa: E402
from rag.embedding.factory import bundled_model_path, make_embedder  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=8, help="Transcripts to ingest.")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx", "onnx-int8"])
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    docs = load_transcripts(args.docs)
    settings = Settings()
    default_backend = settings.embedding.backend
    counter = make_embedder(settings.embedding).count_tokens
    texts = [c.text for d in docs for c in chunk_document(d, settings.chunking, counter)]
    bare = SentenceTransformer(bundled_model_path(), device="cpu")
    bare.encode(texts[:64])  # warm-up: first call pays one-off costs
    t0 = time.perf_counter()
    bare.encode(texts, batch_size=settings.embedding.batch_size, normalize_embeddings=True, show_progress_bar=False)
    bare_s = time.perf_counter() - t0
    rows = [{"path": "bare sentence-transformers encode", "chunks": len(texts), "seconds": round(bare_s, 2),
             "chunks_per_s": round(len(texts) / bare_s, 1), "ratio_to_bare": 1.0}]

    for backend in args.backends:
        backend_settings = settings.model_copy(update={
            "embedding": settings.embedding.model_copy(update={"backend": backend})})
        embedder = make_embedder(backend_settings.embedding)
        embedder.embed_batch(texts[:64])
        with tempfile.TemporaryDirectory() as tmp:
            lib = Library(backend_settings.model_copy(update={"index_dir": Path(tmp) / "index"}), embedder=embedder)
            t0 = time.perf_counter()
            report = lib.add_documents(docs)
            rag_s = time.perf_counter() - t0
        assert report.chunks == len(texts)
        rows.append({"path": f"rag ingest, {backend} (chunk+embed+index)", "chunks": len(texts),
                     "seconds": round(rag_s, 2), "chunks_per_s": round(len(texts) / rag_s, 1),
                     "ratio_to_bare": round(bare_s / rag_s, 3)})
    print_table(rows, ["path", "chunks", "seconds", "chunks_per_s", "ratio_to_bare"])
    ratio = next(r["ratio_to_bare"] for r in rows if r["path"].startswith(f"rag ingest, {default_backend} "))
    print(f"default backend {default_backend}: {ratio:.3f} x bare (goal >= 0.85); peak RSS {peak_rss_mb():.0f} MB")
    out = write_result("ingest", {"docs": len(docs), "rows": rows, "default_backend": default_backend,
                                  "ratio": ratio, "goal": 0.85, "peak_rss_mb": round(peak_rss_mb())})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
