"""The HTTP service through a real HTTP client against the real app (in-process), plus one real
`rag serve` process on a loopback port talked to with the official openai client and raw SSE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from rag.library import Library
from tests.conftest import AUTH, KEY, SEED_MAP, SEED_NOTE, client_for
from tests.fakes import free_port, scripted_provider, wait_until_serving


@pytest.fixture
def write_client(seeded_copy: Library):
    with client_for(seeded_copy, max_upload_bytes=50_000) as c:
        yield c


def test_ask_returns_a_cited_answer(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": "What was Calix's Q4 revenue?"})
    assert r.status_code == 200
    body = r.json()
    assert "$206 million" in body["answer"] and body["citations"][0]["doc_id"] == SEED_NOTE
    assert body["offline_provider"] is True and body["prompt_hash"]


def test_ask_with_history_and_filters(client: TestClient) -> None:
    r = client.post("/v1/ask", json={
        "question": "and how much of that is current?",
        "history": [{"role": "user", "content": "What is Calix's RPO?"},
                    {"role": "assistant", "content": "RPO was $326 million [1]."}],
        "filters": {"tickers": ["CALX"]}, "k": 4})
    assert r.status_code == 200 and "$121 million" in r.json()["answer"]


def test_ask_streams_tokens_then_answer(client: TestClient) -> None:
    with client.stream("POST", "/v1/ask", json={"question": "What was Calix's Q4 revenue?", "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = _sse(r.iter_lines())
    kinds = [e for e, _ in events]
    assert kinds.count("answer") == 1 and kinds[-1] == "answer" and kinds.count("token") > 3
    final = json.loads(events[-1][1])
    assert "$206 million" in final["answer"] and final["citations"]


def _sse(lines) -> list[tuple[str, str]]:
    events, event, data = [], "message", []
    for line in lines:
        line = line.rstrip("\r")
        if not line:
            if data:
                events.append((event, "\n".join(data)))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return events


@pytest.mark.parametrize(("payload", "status", "needle"), [
    ({"question": ""}, 422, "question"),
    ({"question": "q", "unknown": 1}, 422, "unknown"),
    ({"question": "x" * 5000}, 400, "longer"),
    ({"question": "q", "k": 0}, 422, "k"),
    ({"question": "q", "filters": {"nope": 1}}, 422, "nope"),
])
def test_bad_ask_requests_are_json_4xx(client: TestClient, payload: dict, status: int, needle: str) -> None:
    r = client.post("/v1/ask", json=payload)
    assert r.status_code == status
    assert needle in r.json()["error"]["message"]


def test_provider_failure_is_502_without_stack_trace(seeded: Library) -> None:
    with scripted_provider([RuntimeError("upstream exploded")]), client_for(seeded, allowed_models=["fake/x"]) as c:
        r = c.post("/v1/ask", json={"question": "What was Calix's Q4 revenue?", "model": "fake/x"})
    assert r.status_code == 502
    assert "upstream exploded" in r.json()["error"]["message"] and "Traceback" not in r.text


def test_search(client: TestClient) -> None:
    r = client.post("/v1/search", json={"query": "Which customer saw ARPU rise 17%", "k": 3})
    assert r.status_code == 200
    passages = r.json()["passages"]
    assert len(passages) == 3 and "Home Telecom" in passages[0]["text"] and passages[0]["doc_id"] == SEED_MAP


def test_chat_completions_non_streaming(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json={"model": "rag", "temperature": 0.2, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "Which providers are deploying SmartMDU?"}]})
    assert r.status_code == 200
    body = r.json()
    content = body["choices"][0]["message"]["content"]
    assert "Zentro" in content and "Sources:" in content and body["citations"]
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "hi"}]})
    assert r.status_code == 400 and "user message" in r.json()["error"]["message"]


def test_documents_crud_requires_key(write_client: TestClient, tmp_path: Path) -> None:
    doc = {"id": "acme-q3", "text": "Acme Corp reported Q3 revenue of $88 million, up 4% year over year.",
           "tickers": ["ACME"], "doc_type": "news", "date": "2025-10-01"}
    assert write_client.post("/v1/documents", json=doc).status_code == 401
    assert write_client.post("/v1/documents", json=doc, headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = write_client.post("/v1/documents", json=doc, headers=AUTH)
    assert r.status_code == 201 and r.json()["added"] == ["acme-q3"]
    assert write_client.post("/v1/documents", json=doc, headers=AUTH).json()["unchanged"] == ["acme-q3"]

    files = {"file": ("globex.md", b"# Globex\nGlobex backlog reached $5 billion.", "text/markdown")}
    r = write_client.post("/v1/documents", files=files, data={"metadata": '{"tickers": ["GBX"]}'}, headers=AUTH)
    assert r.status_code == 201 and r.json()["added"] == ["globex"]

    listed = {d["id"]: d for d in write_client.get("/v1/documents").json()}
    assert {"acme-q3", "globex", SEED_NOTE, SEED_MAP} == set(listed) and listed["globex"]["tickers"] == ["GBX"]
    assert [d["id"] for d in write_client.get("/v1/documents", params={"ticker": "ACME"}).json()] == ["acme-q3"]
    got = write_client.get("/v1/documents/acme-q3").json()
    assert got["text"] == doc["text"] and got["date"] == "2025-10-01"
    ans = write_client.post("/v1/ask", json={"question": "What was Acme's Q3 revenue?",
                                             "filters": {"tickers": ["ACME"]}}).json()
    assert "$88 million" in ans["answer"]

    assert write_client.delete("/v1/documents/acme-q3").status_code == 401
    assert write_client.delete("/v1/documents/acme-q3", headers=AUTH).status_code == 204
    r = write_client.get("/v1/documents/acme-q3")
    assert r.status_code == 404 and "acme-q3" in r.json()["error"]["message"]
    assert write_client.delete("/v1/documents/acme-q3", headers=AUTH).status_code == 404


@pytest.mark.parametrize(("kwargs", "status", "needle"), [
    ({"files": {"file": ("x.exe", b"MZ\x00\x00", "application/octet-stream")}}, 400, "unsupported"),
    ({"files": {"file": ("x.txt", b"\x00\x01\x02", "text/plain")}}, 400, "binary"),
    ({"files": {"file": ("x.txt", b"ok text here", "text/plain")}, "data": {"metadata": "[1]"}}, 400, "object"),
    ({"files": {"file": ("big.txt", b"a" * 60_000, "text/plain")}}, 413, "exceeds"),
    ({"json": {"text": "x", "surprise": True}}, 400, "surprise"),
    ({"content": b"plain", "headers": {"content-type": "text/plain"}}, 400, "json"),
])
def test_bad_uploads(write_client: TestClient, kwargs: dict, status: int, needle: str) -> None:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    r = write_client.post("/v1/documents", headers=headers, **kwargs)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]


def test_reads_can_require_a_key(seeded: Library) -> None:
    with client_for(seeded, auth_reads=True) as c:
        assert c.post("/v1/search", json={"query": "revenue"}).status_code == 401
        assert c.post("/v1/search", json={"query": "revenue"}, headers=AUTH).status_code == 200


def test_health_metrics_and_docs(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["documents"] == 2 and health["chunks"] > 0
    assert health["models"] == {"answer": "local/extractive", "rewrite": "local/extractive",
                                "sentiment": "local/finance-sentiment"}
    client.post("/v1/ask", json={"question": "What was Calix's Q4 revenue?"})
    metrics = client.get("/metrics").text
    assert 'rag_http_requests_total{method="POST",route="/v1/ask",status="200"}' in metrics
    assert "rag_retrieval_seconds_count" in metrics and "rag_index_chunks" in metrics
    spec = client.get("/openapi.json").json()
    for path in ("/v1/ask", "/v1/chat/completions", "/v1/search", "/v1/documents", "/v1/documents/{doc_id}",
                 "/health", "/metrics"):
        assert path in spec["paths"]
        for op in spec["paths"][path].values():
            assert op.get("summary"), f"{path} lacks a summary"
    assert client.get("/docs").status_code == 200


@pytest.mark.slow
def test_real_server_process_with_openai_client_and_sse(seeded_copy: Library) -> None:
    """`rag serve` as a real process on a free loopback port; a second process sees uploads."""
    openai = pytest.importorskip("openai")
    port = free_port()
    env = {**os.environ, "RAG_INDEX_DIR": str(seeded_copy.settings.index_dir),
           "RAG_SERVER__API_KEYS": f'["{KEY}"]'}
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, base, timeout=90)

        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused-for-reads")
        reply = client.chat.completions.create(model="rag", messages=[
            {"role": "user", "content": "What was Calix's Q4 revenue?"}])
        assert "$206 million" in reply.choices[0].message.content
        chunks = list(client.chat.completions.create(model="rag", stream=True, messages=[
            {"role": "user", "content": "Which providers are deploying SmartMDU?"}]))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "XMission" in streamed and "Sources:" in streamed
        assert chunks[-1].choices[0].finish_reason == "stop"

        with httpx.stream("POST", f"{base}/v1/ask", json={"question": "Who is Calix's CEO?", "stream": True},
                          timeout=30) as r:
            events = _sse(r.iter_lines())
        assert events[-1][0] == "answer" and json.loads(events[-1][1])["abstained"] is True

        # A write through this server is visible to another process reading the same index.
        r = httpx.post(f"{base}/v1/documents", headers=AUTH, timeout=60,
                       json={"id": "initech", "text": "Initech raised guidance to $12 million for Q2."})
        assert r.status_code == 201
        other = Library(seeded_copy.settings, embedder=seeded_copy.embedder)
        assert "initech" in [d.id for d in other.list_documents()]
    finally:
        proc.terminate()
        proc.wait(10)
