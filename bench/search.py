"""Query latency of Library.search at 10k and 100k chunks vs a bare script (sentence-transformers encode +
FAISS IndexFlatIP search), and exact vs HNSW (recall@10 against exact).

Corpus: earnings-call transcript chunks embedded for real (--real, default 3000), expanded deterministically to
each size by mixing pairs of real vectors (v = normalise(a + 0.5 b)) so the 100k index has the geometry of real
text without hours of embedding. Queries are sentences from transcripts (not in the index as such), each run
once, after a warm-up.

    python bench/search.py [--sizes 10000 100000] [--real 3000] [--queries 200]"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import load_transcripts, peak_rss_mb, print_table, write_result  # noqa: E402
from rag.chunking import chunk_document, split_sentences  # noqa: E402
from rag.embedding.factory import bundled_model_path, make_embedder  # noqa: E402
from rag.index import DocumentUpsert, IndexStore  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.models import Chunk, Document  # noqa: E402
from rag.settings import AnnSettings, RetrievalSettings, Settings  # noqa: E402

CHUNKS_PER_DOC = 100


def real_chunks(n: int, settings: Settings) -> tuple[list[Chunk], list[str]]:
    """n chunks from transcripts, and query sentences from transcripts that contributed no chunk."""
    chunks: list[Chunk] = []
    queries: list[str] = []
    for doc in load_transcripts(10_000):
        if len(chunks) < n:
            chunks.extend(chunk_document(doc, settings.chunking)[: n - len(chunks)])
        else:
            queries.extend(doc.text[a:b] for a, b in split_sentences(doc.text) if 60 <= b - a <= 200)
            if len(queries) >= 2000:
                break
    return chunks, queries


def expand(chunks: list[Chunk], vectors: np.ndarray, size: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(0)
    texts = [c.text for c in chunks]
    out = [vectors]
    while sum(len(v) for v in out) < size:
        a, b = rng.permutation(len(vectors)), rng.permutation(len(vectors))
        mixed = vectors[a] + 0.5 * vectors[b]
        out.append(mixed / np.linalg.norm(mixed, axis=1, keepdims=True))
        texts += [f"{texts[i]} {texts[j][:200]}" for i, j in zip(a, b, strict=True)]
    return texts[:size], np.vstack(out)[:size].astype(np.float32)


def build(root: Path, texts: list[str], vectors: np.ndarray, settings: Settings, backend: str) -> None:
    upserts = []
    for d, start in enumerate(range(0, len(texts), CHUNKS_PER_DOC)):
        body = texts[start:start + CHUNKS_PER_DOC]
        doc = Document(id=f"doc-{d}", text="\n".join(body), title=f"doc {d}")
        chunks, offset = [], 0
        for i, text in enumerate(body):
            chunks.append(Chunk(id=f"{doc.id}-{i}", doc_id=doc.id, ordinal=i, start=offset, end=offset + len(text),
                                text=text))
            offset += len(text) + 1
        upserts.append(DocumentUpsert(document=doc, chunks=chunks, vectors=vectors[start:start + len(body)]))
    IndexStore(root, settings.embedding.model_name, settings.retrieval.ann).write(upserts, dim=vectors.shape[1],
                                                                                  backend=backend)


def timed(fn, queries: list[str]) -> list[float]:  # noqa: ANN001
    out = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - started) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return round(sorted(values)[min(len(values) - 1, int(len(values) * q))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--real", type=int, default=3000, help="Chunks embedded for real.")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    settings = Settings()
    embedder = make_embedder(settings.embedding)
    chunks, query_pool = real_chunks(args.real, settings)
    queries = query_pool[: args.queries]
    warmup = query_pool[args.queries: args.queries + 20]
    started = time.perf_counter()
    vectors = embedder.embed_batch([c.text for c in chunks])
    print(f"embedded {len(chunks)} real chunks in {time.perf_counter() - started:.0f}s ({embedder.backend})")

    from sentence_transformers import SentenceTransformer

    bare_model = SentenceTransformer(bundled_model_path(), device="cpu")
    rows = []
    hnsw_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            texts, matrix = expand(chunks, vectors, size)
            ann = AnnSettings(method="hnsw", hnsw_min_chunks=1)
            hnsw_settings = settings.model_copy(update={"index_dir": Path(tmp) / f"i{size}",
                                                        "retrieval": RetrievalSettings(ann=ann)})
            started = time.perf_counter()
            build(hnsw_settings.index_dir, texts, matrix, hnsw_settings, embedder.backend)
            build_s = time.perf_counter() - started
            exact_lib = Library(hnsw_settings.model_copy(update={"retrieval": RetrievalSettings()}), embedder=embedder)
            hnsw_lib = Library(hnsw_settings, embedder=embedder)

            bare_index = faiss.IndexFlatIP(matrix.shape[1])
            bare_index.add(matrix)

            def bare(q: str, index: faiss.Index = bare_index) -> None:
                index.search(bare_model.encode([q], normalize_embeddings=True), 10)

            for label, fn in (("rag dense exact", lambda q, lib=exact_lib: lib.search(q, k=10, mode="dense")),
                              ("rag hybrid exact", lambda q, lib=exact_lib: lib.search(q, k=10)),
                              ("rag dense hnsw", lambda q, lib=hnsw_lib: lib.search(q, k=10, mode="dense")),
                              ("bare encode+IndexFlatIP", bare)):
                timed(fn, warmup)
                # Distinct queries, each once: the query-embedding cache never hits.
                embedder._cache.clear()  # noqa: SLF001  # benchmark hygiene
                lat = timed(fn, queries)
                rows.append({"chunks": size, "path": label, "p50_ms": p(lat, 0.5), "p95_ms": p(lat, 0.95)})
            bare_p50 = next(r["p50_ms"] for r in rows if r["chunks"] == size and r["path"].startswith("bare"))
            for r in rows:
                if r["chunks"] == size:
                    r["ratio_to_bare"] = round(r["p50_ms"] / bare_p50, 2)

            exact_snap, hnsw_snap = exact_lib.snapshot(), hnsw_lib.snapshot()
            recalls, exact_ms, hnsw_ms = [], [], []
            for q in queries:
                vec = embedder.embed_query(q)
                t0 = time.perf_counter()
                truth = {i for i, _ in exact_snap.dense_search(vec, 10, None)}
                t1 = time.perf_counter()
                found = {i for i, _ in hnsw_snap.dense_search(vec, 10, None)}
                t2 = time.perf_counter()
                recalls.append(len(truth & found) / 10)
                exact_ms.append((t1 - t0) * 1000)
                hnsw_ms.append((t2 - t1) * 1000)
            hnsw_rows.append({"chunks": size, "recall@10_vs_exact": round(statistics.mean(recalls), 4),
                              "exact_search_ms_p50": p(exact_ms, 0.5), "hnsw_search_ms_p50": p(hnsw_ms, 0.5),
                              "ef_search": ann.ef_search, "M": ann.hnsw_m, "index_build_s": round(build_s, 1)})
    print_table(rows, ["chunks", "path", "p50_ms", "p95_ms", "ratio_to_bare"])
    print()
    print_table(hnsw_rows, list(hnsw_rows[0]))
    path = write_result("search", {"backend": embedder.backend, "queries": len(queries), "real_chunks": len(chunks),
                                   "latency": rows, "ann": hnsw_rows, "peak_rss_mb": round(peak_rss_mb())})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
