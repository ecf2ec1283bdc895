"""Property-based fuzzing of the in-process HTTP app (hypothesis): arbitrary JSON, schema-shaped bodies with
wrong-typed values, odd paths, query strings and Authorization bytes. Whatever comes in, the answer is never a
5xx (503/507 would need a damaged index or a full disk, neither of which exists here), and every error is the
JSON {"error": {"type", "message"}} shape.

Bounded for CI: RAG_FUZZ_EXAMPLES examples per test (default 60; ~40 s in all on 2 cores)."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.library import Library
from tests.conftest import AUTH, SEED_NOTE, client_for

EXAMPLES = int(os.environ.get("RAG_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SEEN: Counter[int] = Counter()

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["", "0", "2025-01-01", "../README", "CALX", "a/b", "é\x00"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
text_ish = st.one_of(st.text(min_size=1, max_size=60), st.sampled_from(["Q4 revenue", "RPO", "Calix ARPU 17%"]))


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(strategy, json_values)


filters = maybe(st.fixed_dictionaries({}, optional={
    "tickers": maybe(st.lists(text_ish, max_size=3)), "doc_types": maybe(st.lists(text_ish, max_size=2)),
    "date_from": maybe(st.dates().map(str)), "date_to": maybe(st.dates().map(str)),
    "doc_ids": maybe(st.lists(text_ish, max_size=2))}))
turns = st.lists(maybe(st.fixed_dictionaries({"role": maybe(st.sampled_from(["user", "assistant", "system"])),
                                              "content": maybe(text_ish)})), max_size=3)
search_bodies = maybe(st.fixed_dictionaries({"query": maybe(text_ish)}, optional={
    "k": maybe(st.integers(-5, 200)), "filters": filters, "mode": maybe(st.sampled_from(["hybrid", "dense", "bm25"]))}))
ask_bodies = maybe(st.fixed_dictionaries({"question": maybe(text_ish)}, optional={
    "history": maybe(turns), "filters": filters, "k": maybe(st.integers(-5, 80)),
    "model": maybe(st.sampled_from(["local/extractive", "openai/gpt-4o", "rag", "x"])), "stream": json_values}))
chat_bodies = maybe(st.fixed_dictionaries({"messages": maybe(turns)}, optional={
    "model": maybe(st.sampled_from(["rag", "openai/gpt-4o", "local/extractive"])), "stream": json_values,
    "temperature": json_values}))
document_bodies = maybe(st.fixed_dictionaries({"text": maybe(text_ish)}, optional={
    "id": maybe(st.one_of(text_ish, st.sampled_from(["ok-id", "/", "a/b", "..", "x" * 300]))),
    "tickers": maybe(st.lists(text_ish, max_size=3)), "date": json_values, "title": json_values,
    "metadata": json_values, "source_url": json_values}))
auth_headers = st.one_of(st.just(AUTH), st.binary(max_size=20).map(lambda b: {"Authorization": b"Bearer " + b}),
                         st.just({}))


def _post(client: TestClient, path: str, body, headers: dict | None = None):  # noqa: ANN001, ANN202
    # json.dumps writes NaN/Infinity literals, which Python's parser on the server side accepts: sent on purpose.
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json",
                                                                **(headers or {})})


def _check(r) -> None:  # noqa: ANN001  # httpx.Response
    SEEN[r.status_code] += 1
    assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    if r.status_code >= 400:
        error = r.json()["error"]
        assert error["message"] and "Traceback" not in r.text


@pytest.fixture(scope="module")
def client(seeded: Library):
    with client_for(seeded) as c:
        yield c


@pytest.fixture(scope="module")
def write_client(tmp_path_factory: pytest.TempPathFactory, seeded_dir, embedder):
    import shutil

    from tests.conftest import make_settings

    target = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(seeded_dir, target)
    with client_for(Library(make_settings(target), embedder=embedder), max_upload_bytes=20_000,
                    max_ingest_chunks=5) as c:
        yield c


@FUZZ
@given(body=search_bodies)
def test_search_never_5xx(client: TestClient, body) -> None:  # noqa: ANN001
    _check(_post(client, "/v1/search", body))


@FUZZ
@given(body=ask_bodies)
def test_ask_never_5xx(client: TestClient, body) -> None:  # noqa: ANN001
    _check(_post(client, "/v1/ask", body))


@FUZZ
@given(body=chat_bodies)
def test_chat_never_5xx(client: TestClient, body) -> None:  # noqa: ANN001
    _check(_post(client, "/v1/chat/completions", body))


@FUZZ
@given(body=document_bodies, headers=auth_headers)
def test_document_uploads_never_5xx(write_client: TestClient, body, headers) -> None:  # noqa: ANN001
    _check(_post(write_client, "/v1/documents", body, headers))


@FUZZ
@given(name=st.text(min_size=1, max_size=20), data=st.binary(max_size=300), metadata=st.one_of(
    st.none(), st.text(max_size=40), json_values.map(json.dumps)))
def test_multipart_uploads_never_5xx(write_client: TestClient, name: str, data: bytes, metadata) -> None:  # noqa: ANN001
    suffix = name[-1] if name else "x"
    filename = f"{name}.{['txt', 'md', 'pdf', 'html', 'jsonl', 'bin'][ord(suffix) % 6]}"
    form = {} if metadata is None else {"metadata": metadata}
    _check(write_client.post("/v1/documents", files={"file": (filename, data, "application/octet-stream")},
                             data=form, headers=AUTH))


@FUZZ
@given(segment=st.text(min_size=1, max_size=40), params=st.dictionaries(
    st.sampled_from(["ticker", "doc_id", "model", "prompt", "doc_type"]), st.text(max_size=30), max_size=3))
def test_reads_with_odd_paths_and_params_never_5xx(client: TestClient, segment: str, params: dict) -> None:
    from urllib.parse import quote

    seg = quote(segment, safe="")
    for path in (f"/v1/documents/{seg}", f"/v1/jobs/{seg}", "/v1/documents", "/v1/sentiment/history"):
        _check(client.get(path, params=params))
    if "model" not in params or params["model"] in ("", "local/finance-sentiment"):
        # Unknown tickers and prompts are 4xx; a real document is scored by the offline classifier (fast).
        _check(client.get(f"/v1/documents/{SEED_NOTE}/sentiment", params=params))


def test_zzz_fuzz_summary() -> None:
    """Runs last in this module: the requests sent and their statuses (shown with -rA or on failure)."""
    total = sum(SEEN.values())
    print(f"fuzz: {total} requests, statuses {dict(sorted(SEEN.items()))}")
    assert not [s for s in SEEN if s >= 500]


# ---- loaders: any bytes and any metadata are a Document or a BadInputError, nothing else ----------------------
@FUZZ
@given(suffix=st.sampled_from([".txt", ".md", ".html", ".jsonl", ".pdf"]), data=st.one_of(
    st.binary(max_size=400), st.text(max_size=200).map(str.encode),
    st.sampled_from([b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>",
                     b"---\nid: [1, 2]\ntickers: {a: 1}\n---\ntext", b'{"text": "x", "id": null}\n{"text": 5}'])),
    meta=st.dictionaries(st.sampled_from(["id", "title", "tickers", "ticker", "date", "url", "doc_type", "other"]),
                         json_values, max_size=4))
def test_loaders_load_or_refuse_cleanly(suffix: str, data: bytes, meta: dict) -> None:
    from pathlib import Path

    from rag.errors import BadInputError
    from rag.loaders import load_file
    from rag.models import is_safe_id

    try:
        documents = load_file(Path(f"upload{suffix}"), 1_000_000, data=data, meta=meta)
    except BadInputError as exc:
        assert "\n" not in str(exc)
        return
    for doc in documents:
        assert is_safe_id(doc.id) and all(isinstance(t, str) for t in doc.tickers)
