"""rag vs LlamaIndex (llama-index-core + FAISS vector store + HuggingFace embedding of the same bundled MiniLM),
in one run, on the same corpus: the 168 FinanceBench evidence pages and their 150 questions (so recall@5 is
measured on the same footing as speed).

    pip install -e .[bench]      # llama-index-core 0.14.25 and its FAISS / HuggingFace integrations
    python bench/peer.py

LlamaIndex is set up the way its docs show (SentenceSplitter, VectorStoreIndex over a FaissVectorStore with an
IndexFlatIP, as_retriever), with the splitter at 200 tokens / 30 overlap so both systems embed chunks of similar
size (its default 1024-token chunks would be truncated by this 256-token model). Ingest speedup = LlamaIndex
seconds / rag seconds for the same documents; query latency ratio = rag median / LlamaIndex median."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bench.common import peak_rss_mb, print_table, write_result  # noqa: E402
from rag.embedding.factory import bundled_model_path  # noqa: E402
from rag.evaluation import financebench  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.settings import Settings  # noqa: E402


def recall_at_5(hits: list[list[str]], questions: list[financebench.Question]) -> float:
    return sum(any(h in q.pages for h in hit) for hit, q in zip(hits, questions, strict=True)) / len(questions)


def timed_queries(search, questions: list[financebench.Question]) -> tuple[list[list[str]], float]:  # noqa: ANN001
    hits, latencies = [], []
    for q in questions:
        started = time.perf_counter()
        hits.append(search(q.question))
        latencies.append((time.perf_counter() - started) * 1000)
    return hits, statistics.median(latencies)


def run_llamaindex(documents: list, questions: list[financebench.Question], model_path: str) -> dict:
    import faiss
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    LlamaSettings.embed_model = HuggingFaceEmbedding(model_name=model_path, device="cpu", embed_batch_size=64)
    LlamaSettings.llm = None
    docs = [Document(text=d.text, id_=d.id) for d in documents]
    started = time.perf_counter()
    nodes = SentenceSplitter(chunk_size=200, chunk_overlap=30).get_nodes_from_documents(docs)
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(384))
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store))
    ingest_s = time.perf_counter() - started
    retriever = index.as_retriever(similarity_top_k=5)
    retriever.retrieve("warm up")
    hits, p50 = timed_queries(lambda q: [n.node.ref_doc_id for n in retriever.retrieve(q)], questions)
    return {"system": "llama-index-core 0.14 (FAISS, dense)", "chunks": len(nodes), "ingest_s": round(ingest_s, 1),
            "chunks_per_s": round(len(nodes) / ingest_s, 1), "query_p50_ms": round(p50, 2),
            "recall@5": round(recall_at_5(hits, questions), 3)}


def run_rag(documents: list, questions: list[financebench.Question], mode: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(Settings(index_dir=Path(tmp) / "index"))
        lib.embedder.embed_batch(["warm up"])
        started = time.perf_counter()
        report = lib.add_documents(documents)
        ingest_s = time.perf_counter() - started
        lib.search("warm up", k=5, mode=mode)  # type: ignore[arg-type]
        lib.embedder._cache.clear()  # type: ignore[attr-defined]  # noqa: SLF001  # each run embeds its queries
        hits, p50 = timed_queries(lambda q: [p.doc_id for p in lib.search(q, k=5, mode=mode)],  # type: ignore[arg-type]
                                  questions)
    return {"system": f"rag ({lib.embedder.backend}, {mode})", "chunks": report.chunks, "ingest_s": round(ingest_s, 1),
            "chunks_per_s": round(report.chunks / ingest_s, 1), "query_p50_ms": round(p50, 2),
            "recall@5": round(recall_at_5(hits, questions), 3)}


def main() -> None:
    documents, questions = financebench.load()
    rows = [run_llamaindex(documents, questions, bundled_model_path()),
            run_rag(documents, questions, "hybrid"), run_rag(documents, questions, "dense")]
    peer, rag_hybrid = rows[0], rows[1]
    result = {
        "corpus": f"FinanceBench evidence pages ({len(documents)} pages, {len(questions)} questions)",
        "rows": rows,
        # Same documents, so the ratio of wall times is the ratio of throughputs.
        "ingest_speedup": round(peer["ingest_s"] / rag_hybrid["ingest_s"], 2),
        "query_latency_ratio": round(rag_hybrid["query_p50_ms"] / peer["query_p50_ms"], 3),
        "recall_delta": round(rag_hybrid["recall@5"] - peer["recall@5"], 3),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    print_table(rows, ["system", "chunks", "ingest_s", "chunks_per_s", "query_p50_ms", "recall@5"])
    print(f"\ningest_speedup {result['ingest_speedup']} (goal >= 2), query_latency_ratio "
          f"{result['query_latency_ratio']} (goal <= 0.5), recall@5 delta {result['recall_delta']:+}")
    print(f"wrote {write_result('peer', result)}")


if __name__ == "__main__":
    main()
