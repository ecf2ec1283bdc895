"""HTTP throughput and latency of a real `rag serve` process on loopback: /v1/search and /v1/ask (offline
provider) with 1, 8 and 32 concurrent clients, each level bounded in time. Service overhead = HTTP p50 at one
client minus the in-process Library call p50 on the same queries. The load generator shares the machine's two
cores with the server, so absolute throughput is a floor.

    python bench/http_service.py [--seconds 8] [--clients 1 8 32]

(Not bench/http.py: a script of that name would shadow the stdlib http package for every bench script.)"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import print_table, write_result  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.settings import PROJECT_ROOT, Settings  # noqa: E402
from tests.fakes import free_port, wait_until_serving  # noqa: E402

QUESTIONS = [
    "What was Calix's Q4 revenue?", "How large is remaining performance obligations?", "What is the Q1 guide?",
    "Which providers deploy SmartMDU?", "What was the non-GAAP gross margin?", "How many new customers?",
    "What were the buybacks?", "Who are the early adopters of Agent Workforce?",
]


def pct(values: list[float], q: float) -> float:
    return round(sorted(values)[min(len(values) - 1, int(len(values) * q))], 2)


async def load(url: str, route: str, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(worker: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        i = worker
        while time.perf_counter() < deadline:
            q = QUESTIONS[i % len(QUESTIONS)]
            body = {"query": q, "k": 5} if route == "/v1/search" else {"question": q}
            started = time.perf_counter()
            try:
                r = await http.post(url + route, json=body)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - started) * 1000)
            errors += not ok
            i += 1

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(w, http) for w in range(clients)))
    elapsed = time.perf_counter() - started
    return {"route": route, "clients": clients, "requests": len(latencies), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99), "errors": errors}


def library_p50(lib: Library, route: str) -> float:
    call = (lambda q: lib.search(q, k=5)) if route == "/v1/search" else (lambda q: lib.ask(q))
    for q in QUESTIONS:
        call(q)
    latencies = []
    for _ in range(5):
        for q in QUESTIONS:
            started = time.perf_counter()
            call(q)
            latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies)


@contextmanager
def running_server(index: Path) -> Iterator[tuple[str, int]]:
    """A `rag serve` process on `index` (write key "bench"); yields its URL and pid, stops it on exit."""
    port = free_port()
    env = {**os.environ, "RAG_INDEX_DIR": str(index), "RAG_SERVER__API_KEYS": '["bench"]'}
    server = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, url, timeout=180)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="Duration of each load level.")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        lib = Library(Settings(index_dir=index))
        lib.add_paths([PROJECT_ROOT / "seeds"])
        with running_server(index) as (url, _):
            rows = []
            for route in ("/v1/search", "/v1/ask"):
                asyncio.run(load(url, route, 1, 1.0))  # warm-up
                for clients in args.clients:
                    rows.append(asyncio.run(load(url, route, clients, args.seconds)))
        overhead = {}
        for route in ("/v1/search", "/v1/ask"):
            single = next(r for r in rows if r["route"] == route and r["clients"] == 1)
            in_process = library_p50(lib, route)
            overhead[route] = {"library_p50_ms": round(in_process, 2), "http_p50_ms": single["p50_ms"],
                               "overhead_ms": round(single["p50_ms"] - in_process, 2)}
    print_table(rows, ["route", "clients", "requests", "rps", "p50_ms", "p99_ms", "errors"])
    for route, o in overhead.items():
        print(f"{route}: library p50 {o['library_p50_ms']} ms, HTTP p50 {o['http_p50_ms']} ms -> overhead "
              f"{o['overhead_ms']} ms (goal <= 2)")
    print(f"wrote {write_result('http', {'seconds_per_level': args.seconds, 'rows': rows, 'overhead': overhead})}")


if __name__ == "__main__":
    main()
