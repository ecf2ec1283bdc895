"""/v1/search while another client uploads documents without pause, against a real `rag serve` process (issue #16:
"p99 with a continuous uploader within 1.5x of without", "bytes written per upload proportional to the upload").

Per index size: the bulk is built as in bench/write_scaling.py (real transcript chunk texts, random unit vectors),
then the server is started on it and /v1/search is loaded by N clients for T seconds, once alone and once while one
more client POSTs ~3 KB documents to /v1/documents back to back (each embedded by the server with the real model,
as a user's upload is). Bytes written per upload are the server process's `write_bytes` from /proc/PID/io over the
uploading phase, divided by the uploads; the upload's own size (text + its vectors) is printed beside it. The
clients, the uploader and the server share the machine's two cores: embedding an upload takes CPU that search
would otherwise get, whatever the index does.

    python bench/search_under_writes.py [--sizes 10000 100000] [--seconds 20] [--clients 4]

To compare with one shared embedding session (documents and queries on the same threads), run it again with
RAG_EMBEDDING__DOCUMENT_THREADS set to the core count (search_under_writes_ab.json: both, alternately)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import print_table, report  # noqa: E402
from bench.http_service import load, running_server  # noqa: E402
from bench.search import build  # noqa: E402
from bench.write_scaling import bulk_texts, corpus, disk_mb, unit  # noqa: E402
from rag.chunking import chunk_document  # noqa: E402
from rag.models import Document  # noqa: E402
from rag.settings import Settings  # noqa: E402


def written_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"no write_bytes in /proc/{pid}/io")


async def upload_until(url: str, docs: list[Document], deadline: float) -> list[tuple[Document, float]]:
    """POSTs documents one after another until the deadline; returns each stored document with its latency."""
    done: list[tuple[Document, float]] = []
    async with httpx.AsyncClient(timeout=120, headers={"Authorization": "Bearer bench"}) as http:
        for doc in docs:
            if time.perf_counter() >= deadline:
                break
            started = time.perf_counter()
            r = await http.post(url + "/v1/documents", json={"id": doc.id, "text": doc.text, "title": doc.title,
                                                              "tickers": doc.tickers})
            if r.status_code != 201:
                raise SystemExit(f"upload {doc.id} failed: {r.status_code} {r.text[:200]}")
            done.append((doc, time.perf_counter() - started))
    return done


async def with_uploader(url: str, clients: int, seconds: float, docs: list[Document]) -> tuple[dict, list]:
    deadline = time.perf_counter() + seconds
    search, uploads = await asyncio.gather(load(url, "/v1/search", clients, seconds),
                                           upload_until(url, docs, deadline))
    return search, uploads


def measure(size: int, texts: list[str], small: list[Document], args: argparse.Namespace, settings: Settings,
            tmp: Path) -> list[dict]:
    root = tmp / f"index-{size}"
    bulk = bulk_texts(texts, size)
    build(root, bulk, unit(np.random.default_rng(size), len(bulk)), settings, "onnx")
    # Each phase gets its own ids: a re-sent document would be "unchanged" and cost nothing.
    docs = [d.model_copy(update={"id": f"{d.id}-{size}-{n}"}) for n in range(20) for d in small]
    with running_server(root) as (url, pid):
        asyncio.run(load(url, "/v1/search", 1, 2.0))  # warm-up: model and index loaded, caches filled
        asyncio.run(upload_until(url, docs[:2], time.perf_counter() + 60))
        alone = asyncio.run(load(url, "/v1/search", args.clients, args.seconds))
        disk_before, written_before = disk_mb(root), written_bytes(pid)
        busy, uploads = asyncio.run(with_uploader(url, args.clients, args.seconds, docs[2:]))
        written = written_bytes(pid) - written_before
        disk_growth = disk_mb(root) - disk_before
    n = max(1, len(uploads))
    text_bytes = sum(len(d.text.encode()) for d, _ in uploads)
    vector_bytes = sum(len(chunk_document(d, settings.chunking)) for d, _ in uploads) * 384 * 4
    common = {"chunks": size, "clients": args.clients}
    return [
        {**common, "uploader": "no", **{k: alone[k] for k in ("requests", "rps", "p50_ms", "p99_ms", "errors")}},
        {**common, "uploader": "yes", **{k: busy[k] for k in ("requests", "rps", "p50_ms", "p99_ms", "errors")},
         "uploads": len(uploads),
         "upload_p50_s": round(statistics.median(s for _, s in uploads), 3) if uploads else None,
         "upload_kb": round((text_bytes + vector_bytes) / n / 1e3, 1),
         "written_kb_per_upload": round(written / n / 1e3, 1),
         "disk_growth_kb_per_upload": round(disk_growth * 1e3 / n, 1),
         "p99_ratio": round(busy["p99_ms"] / alone["p99_ms"], 2)},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seconds", type=float, default=20.0, help="Duration of each phase.")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent search clients.")
    parser.add_argument("--out", default="search_under_writes", help="Result name under bench/results/.")
    args = parser.parse_args()
    settings = Settings()
    texts, _, small = corpus(settings)
    rows: list[dict] = []
    columns = ["chunks", "uploader", "rps", "p50_ms", "p99_ms", "p99_ratio", "uploads", "upload_p50_s", "upload_kb",
               "written_kb_per_upload", "disk_growth_kb_per_upload", "errors"]
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            rows.extend(measure(size, texts, small, args, settings, Path(tmp)))
            print_table(rows[-2:], columns)
    report(args.out, rows, columns, seconds_per_phase=args.seconds)


if __name__ == "__main__":
    main()
