"""Prometheus metrics, one registry per app so several apps (tests, workers) never collide."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, index_size: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rag_http_requests", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("rag_http_request_seconds", "HTTP request latency", ["route"],
                                 registry=self.registry)
        self.retrieval = Histogram("rag_retrieval_seconds", "Retrieval latency per question", registry=self.registry)
        self.llm = Histogram("rag_llm_seconds", "LLM call latency per answer", ["model"], registry=self.registry)
        chunks = Gauge("rag_index_chunks", "Chunks in the served index generation", registry=self.registry)
        chunks.set_function(index_size)

    def observe_answer(self, model: str, timings_ms: dict[str, float]) -> None:
        if "retrieve" in timings_ms:
            self.retrieval.observe(timings_ms["retrieve"] / 1000)
        if "llm" in timings_ms:
            self.llm.labels(model).observe(timings_ms["llm"] / 1000)
