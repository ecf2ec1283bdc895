"""What one small write costs as the index grows: add one ~3 KB document, delete one, disk use, search latency and
cold open, at 1k / 10k / 100k / 300k chunks (issue #16).

The bulk is real transcript chunks (real chunker and texts, expanded past the corpus by mixing pairs of chunks, so
BM25 sees a realistic vocabulary) with random unit vectors (allowed by the issue: the index cost does not depend on
what the vectors hold). The measured write is the call `POST /v1/documents` makes after embedding,
IndexStore.write, with the document's chunks from the real chunker; embedding it (~0.1 s, independent of the index
size) is left out. Runs against any checkout with the same IndexStore/Library API, so the same script measured
the whole-copy generations on main ("before") and the segments ("after").

    python bench/write_scaling.py [--sizes 1000 10000 100000 300000] [--repeats 5] [--out write_scaling]"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import load_transcripts, print_table, report  # noqa: E402
from bench.search import build  # noqa: E402
from rag.chunking import chunk_document, split_sentences  # noqa: E402
from rag.index import DocumentUpsert, IndexStore  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.models import Chunk, Document  # noqa: E402
from rag.settings import Settings  # noqa: E402

DIM = 384
COLD_OPEN = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
import faiss, bm25s, numpy  # imports are not the index's cost
from rag.library import Library
from rag.settings import Settings
started = time.perf_counter()
Library(Settings(index_dir=Path({index!r}))).load_index()
print(time.perf_counter() - started)
"""


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def corpus(settings: Settings) -> tuple[list[str], list[str], list[Document]]:
    """Chunk texts, query sentences, and a pool of ~3 KB documents to add (none of them in the bulk)."""
    texts: list[str] = []
    queries: list[str] = []
    small: list[Document] = []
    for n, doc in enumerate(load_transcripts(10_000)):
        if n % 10 == 0:
            start = len(doc.text) // 3
            small.append(Document(id=f"small-{n}", text=doc.text[start:start + 3000], title=f"{doc.title} excerpt",
                                  tickers=doc.tickers))
            queries.extend(doc.text[a:b] for a, b in split_sentences(doc.text) if 60 <= b - a <= 200)
        else:
            texts.extend(c.text for c in chunk_document(doc, settings.chunking))
    return texts, queries, small


def bulk_texts(texts: list[str], size: int) -> list[str]:
    rng = np.random.default_rng(0)
    out = list(texts[:size])
    while len(out) < size:
        a, b = rng.integers(len(texts), size=2)
        out.append(f"{texts[a]} {texts[b][:200]}")
    return out


def upsert(doc: Document, chunks: list[Chunk], vectors: np.ndarray) -> DocumentUpsert:
    return DocumentUpsert(document=doc, chunks=chunks, vectors=vectors)


def disk_mb(root: Path) -> float:
    return round(sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6, 1)


def measure(size: int, texts: list[str], queries: list[str], small: list[Document], repeats: int,
            settings: Settings, tmp: Path) -> dict:
    rng = np.random.default_rng(size)
    root = tmp / f"index-{size}"
    store = IndexStore(root, settings.embedding.model_name, settings.retrieval.ann)
    started = time.perf_counter()
    bulk = bulk_texts(texts, size)
    build(root, bulk, unit(rng, len(bulk)), settings, "onnx")
    build_s = time.perf_counter() - started
    lib = Library(settings.model_copy(update={"index_dir": root}))
    lib.search(queries[0])  # loads the model and the index
    for q in queries[1:101]:
        lib.embedder.embed_query(q)  # cached (RAG_EMBEDDING__QUERY_CACHE_SIZE): the timings are the index's
    search_ms = []
    for q in queries[1:101]:
        t0 = time.perf_counter()
        lib.search(q)
        search_ms.append((time.perf_counter() - t0) * 1000)
    cold = float(subprocess.run([sys.executable, "-c", COLD_OPEN.format(root=str(Path(__file__).parent.parent),
                                                                        index=str(root))],
                                capture_output=True, text=True, check=True).stdout.split()[-1])
    adds, deletes = [], []
    for doc in small[:repeats]:
        chunks = chunk_document(doc, settings.chunking)
        item = upsert(doc, chunks, unit(rng, len(chunks)))
        t0 = time.perf_counter()
        store.write([item], dim=DIM, backend="onnx")
        adds.append(time.perf_counter() - t0)
    disk = disk_mb(root)
    for doc in small[:repeats]:
        t0 = time.perf_counter()
        store.write([], deletes=[doc.id])
        deletes.append(time.perf_counter() - t0)
    row = {"chunks": size, "add_one_s": round(statistics.median(adds), 4),
           "delete_one_s": round(statistics.median(deletes), 4), "disk_mb": disk,
           "search_p50_ms": round(statistics.median(search_ms), 2), "cold_open_s": round(cold, 3),
           "bulk_build_s": round(build_s, 1)}
    if hasattr(store, "compact"):
        t0 = time.perf_counter()
        store.compact()
        row["compact_s"] = round(time.perf_counter() - t0, 2)
        row["disk_after_compact_mb"] = disk_mb(root)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 300_000])
    parser.add_argument("--repeats", type=int, default=5, help="Adds and deletes per size (median reported).")
    parser.add_argument("--out", default="write_scaling", help="Result name under bench/results/.")
    args = parser.parse_args()
    settings = Settings()
    texts, queries, small = corpus(settings)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            rows.append(measure(size, texts, queries, small, args.repeats, settings, Path(tmp)))
            print_table(rows[-1:], list(rows[-1]))
            shutil.rmtree(Path(tmp) / f"index-{size}", ignore_errors=True)
    report(args.out, rows, list(rows[0]), repeats=args.repeats)


if __name__ == "__main__":
    main()
