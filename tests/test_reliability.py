"""Issue 14: every input a reliability probe found to crash the CLI or get a 500 from the server now gets a clear
4xx (or exit code) with a one-line message and no traceback or server path; the index is checked, repaired and
falls back on damage; resource limits hold for chunked bodies, long queries and large uploads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.api.app import create_app
from rag.errors import BadInputError, IndexDamagedError, NotFoundError, StorageFullError
from rag.index import IndexStore
from rag.index_check import check_index, verify_generation
from rag.library import Library
from rag.loaders import load_file
from rag.settings import ServerSettings
from tests.conftest import AUTH, SEED_MAP, SEED_NOTE, client_for
from tests.pdf_bombs import flate_bomb, operator_bomb, page_tree_bomb
from tests.pdf_maker import make_pdf

NEW_DOC = {"id": "acme-q3", "text": "Acme Corp reported Q3 revenue of $88 million, up 4% year over year.",
           "tickers": ["ACME"]}


def _clean(r) -> None:  # noqa: ANN001  # httpx.Response
    """A JSON error with a one-line message, no traceback and no server path."""
    body = r.json()
    message = body["error"]["message"]
    assert "\n" not in message and "Traceback" not in r.text
    assert "/tmp" not in r.text and "/work" not in r.text and str(Path.home()) not in r.text


@pytest.fixture
def write_client(seeded_copy: Library):
    with client_for(seeded_copy, max_upload_bytes=2_000_000, max_ingest_chunks=20) as c:
        yield c


# ---- bad input over HTTP: the probe's table ------------------------------------------------------------------
_FILE = {"file": ("note.txt", b"Initech grew revenue 5% to $10 million.", "text/plain")}


@pytest.mark.parametrize(("kwargs", "status", "needle"), [
    ({"files": _FILE, "data": {"metadata": '{"tickers": true}'}}, 400, "tickers"),
    ({"files": _FILE, "data": {"metadata": '{"tickers": 5}'}}, 400, "tickers"),
    ({"files": _FILE, "data": {"metadata": '{"tickers": [null, 1]}'}}, 400, "tickers"),
    ({"files": _FILE, "data": {"metadata": '{"id": {"a": 1}}'}}, 400, "id"),
    ({"files": _FILE, "data": {"metadata": '{"id": "a/b"}'}}, 400, "id"),
    ({"files": _FILE, "data": {"metadata": '{"date": 0}'}}, 400, "date"),
    ({"files": _FILE, "data": {"metadata": '{"title": ["x"]}'}}, 400, "title"),
    ({"files": {"file": ("bomb.pdf", flate_bomb(100), "application/pdf")}}, 400, "safety limit"),
    ({"files": {"file": ("tree.pdf", page_tree_bomb(), "application/pdf")}}, 400, "safety limit"),
    ({"json": {**NEW_DOC, "id": "a/b"}}, 400, "id"),
    ({"json": {**NEW_DOC, "id": "/"}}, 400, "id"),
    ({"json": {**NEW_DOC, "id": ".."}}, 400, "id"),
    ({"json": {**NEW_DOC, "tickers": 5}}, 400, "tickers"),
    ({"json": {**NEW_DOC, "tickers": [None, 1]}}, 400, "tickers"),
    ({"json": {**NEW_DOC, "date": 0}}, 400, "date"),
])
def test_bad_uploads_are_clean_4xx(write_client: TestClient, kwargs: dict, status: int, needle: str) -> None:
    r = write_client.post("/v1/documents", headers=AUTH, **kwargs)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    _clean(r)
    assert [d["id"] for d in write_client.get("/v1/documents").json()] == [SEED_NOTE, SEED_MAP]


@pytest.mark.parametrize(("path", "payload", "status", "needle"), [
    ("/v1/ask", {"question": "q", "stream": 0}, 422, "stream"),
    ("/v1/ask", {"question": "q", "stream": "yes"}, 422, "stream"),
    ("/v1/ask", {"question": "q", "k": True}, 422, "k"),
    ("/v1/ask", {"question": "q", "filters": {"date_to": 0}}, 422, "date_to"),
    ("/v1/search", {"query": "revenue", "filters": {"date_from": 1.5}}, 422, "date_from"),
    ("/v1/search", {"query": "q" * 5000}, 400, "longer"),
    ("/v1/search", {"query": "q" * 200_000}, 422, "query"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": 0}, 422, "stream"),
])
def test_strict_types_and_query_caps(client: TestClient, path: str, payload: dict, status: int,
                                     needle: str) -> None:
    r = client.post(path, json=payload)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    _clean(r)


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("post", "/v1/ask", {"json": {"question": "What was Calix's Q4 revenue?", "model": "openai/gpt-4o"}}),
    ("post", "/v1/ask", {"json": {"question": "What was Calix's Q4 revenue?", "model": "gpt-4o", "stream": True}}),
    ("post", "/v1/chat/completions", {"json": {"model": "anthropic/claude-3-5-haiku-latest",
                                               "messages": [{"role": "user", "content": "revenue?"}]}}),
    ("get", "/v1/sentiment", {"params": {"ticker": "CALX", "model": "openai/gpt-4o"}}),
    ("get", f"/v1/documents/{SEED_NOTE}/sentiment", {"params": {"model": "openai/gpt-4o"}}),
    ("post", "/v1/rescore", {"json": {"model": "openai/gpt-4o"}, "headers": AUTH}),
])
def test_callers_cannot_pick_models_outside_the_allow_list(client: TestClient, method: str, path: str,
                                                           kwargs: dict) -> None:
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == 403, r.text
    assert "not allowed" in r.json()["error"]["message"] and "ALLOWED_MODELS" in r.json()["error"]["message"]


def test_configured_models_stay_allowed(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": "What was Calix's Q4 revenue?", "model": "local/extractive"})
    assert r.status_code == 200
    assert client.get("/v1/sentiment", params={"ticker": "CALX", "model": "local/finance-sentiment"}).status_code \
        == 200
    r = client.post("/v1/chat/completions", json={"model": "rag", "messages": [{"role": "user", "content": "RPO?"}]})
    assert r.status_code == 200


@pytest.mark.parametrize("prompt", ["../README", "../../etc/passwd", "/etc/passwd", "sentiment.v1/../x"])
def test_prompt_names_cannot_leave_the_prompts_folder(client: TestClient, prompt: str) -> None:
    for path in ("/v1/sentiment", f"/v1/documents/{SEED_NOTE}/sentiment"):
        r = client.get(path, params={"ticker": "CALX", "prompt": prompt} if path == "/v1/sentiment"
                       else {"prompt": prompt})
        assert r.status_code == 400, r.text
        assert "no prompt" in r.json()["error"]["message"]
        _clean(r)


@pytest.mark.parametrize("header", [b"Bearer k1secr\xc3\xa9", b"Bearer \xff\xfe", b"\xff\xfe", b"Bearer "])
def test_non_ascii_bearer_tokens_are_401(client: TestClient, header: bytes) -> None:
    r = client.post("/v1/documents", json=NEW_DOC, headers={"Authorization": header})
    assert r.status_code == 401
    _clean(r)


def test_a_non_ascii_key_works(seeded_copy: Library) -> None:
    settings = seeded_copy.settings.model_copy(update={"server": ServerSettings(api_keys=[SecretStr("k1secré")])})
    with TestClient(create_app(library=Library(settings, embedder=seeded_copy.embedder))) as c:
        assert c.post("/v1/documents", json=NEW_DOC, headers={"Authorization": "Bearer k1secré".encode()}
                      ).status_code == 201
        assert c.post("/v1/documents", json=NEW_DOC, headers={"Authorization": "Bearer k1secre"}).status_code == 401


def test_ids_with_slashes_are_404_not_the_list(client: TestClient) -> None:
    r = client.get("/v1/documents/a%2Fb")
    assert r.status_code == 404
    _clean(r)


# ---- resource bounds ----------------------------------------------------------------------------------------
def test_chunked_body_over_the_limit_is_413_and_not_stored(write_client: TestClient) -> None:
    body = json.dumps({"id": "big", "text": "Revenue grew. " * 200_000}).encode()  # 2.8 MB > 2 MB limit

    def chunks():
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = write_client.post("/v1/documents", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert "exceeds" in r.json()["error"]["message"]
    assert "big" not in [d["id"] for d in write_client.get("/v1/documents").json()]
    files = {"file": ("big.txt", b"Revenue grew. " * 200_000, "text/plain")}
    r = write_client.post("/v1/documents", files=files, headers={**AUTH, "transfer-encoding": "chunked"})
    assert r.status_code == 413


def test_uploads_that_would_make_too_many_chunks_are_413_before_embedding(write_client: TestClient) -> None:
    text = " ".join(f"Sentence {i} says revenue was ${i} million in the quarter." for i in range(400))  # ~23 KB
    r = write_client.post("/v1/documents", json={"id": "long", "text": text}, headers=AUTH)
    assert r.status_code == 413 and "MAX_INGEST_CHUNKS" in r.json()["error"]["message"]
    ok = write_client.post("/v1/documents", json={"id": "short", "text": text[:3000]}, headers=AUTH)
    assert ok.status_code == 201


# ---- /health, CORS, OpenAPI ---------------------------------------------------------------------------------
def test_health_hides_paths_and_details(seeded: Library) -> None:
    with client_for(seeded, auth_reads=True) as c:
        anonymous = c.get("/health").json()
        assert anonymous == {"status": "ok", "index_loaded": True}
        keyed = c.get("/health", headers=AUTH).json()
        assert keyed["documents"] == 2 and keyed["index_name"] == seeded.settings.index_dir.name
        assert str(seeded.settings.index_dir) not in c.get("/health", headers=AUTH).text


def test_cors_off_by_default_and_configurable(seeded: Library) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    with client_for(seeded) as c:
        r = c.options("/v1/search", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    with client_for(seeded, cors_origins=["https://app.example"]) as c:
        r = c.options("/v1/search", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
        r = c.post("/v1/search", json={"query": "revenue"}, headers={"Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = c.options("/v1/search", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_openapi_documents_the_4xx_it_returns(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"401", "413", "422", "503"} <= set(paths["/v1/documents"]["post"]["responses"])
    assert {"400", "403", "413", "422", "503"} <= set(paths["/v1/ask"]["post"]["responses"])
    assert {"404", "503"} <= set(paths["/v1/documents/{doc_id}"]["get"]["responses"])
    assert "503" in paths["/health"]["get"]["responses"]


# ---- files and the CLI --------------------------------------------------------------------------------------
def test_bad_metadata_and_pdf_bombs_fail_per_file(empty_library: Library, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("Initech grew revenue 5% to $10 million.")
    (folder / "five.txt").write_text("Hooli revenue fell.")
    (folder / "five.txt.meta.json").write_text('{"tickers": 5}')
    (folder / "weird.txt").write_text("Globex backlog grew.")
    (folder / "weird.txt.meta.json").write_text('{"id": {"a": 1}}')
    (folder / "bomb.pdf").write_bytes(flate_bomb(100))
    (folder / "tree.pdf").write_bytes(page_tree_bomb())
    (folder / "Q4 report (final).pdf").write_bytes(make_pdf(["Umbrella margin was 12%."]))
    report = empty_library.add_paths([folder])
    assert sorted(report.added) == ["Q4-report-final", "good"]
    errors = {Path(f.path).name: f.error for f in report.failed}
    assert set(errors) == {"five.txt", "weird.txt", "bomb.pdf", "tree.pdf"}
    assert "tickers" in errors["five.txt"] and "id" in errors["weird.txt"]
    assert "safety limit" in errors["bomb.pdf"] and "safety limit" in errors["tree.pdf"]


@pytest.mark.slow
def test_operator_bomb_is_refused() -> None:
    with pytest.raises(BadInputError, match="safety limit"):
        load_file(Path("ops.pdf"), 10**9, data=operator_bomb())


def test_failed_first_ingest_leaves_no_index(empty_library: Library, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    report = empty_library.add_paths([tmp_path / "empty.txt", tmp_path / "missing.txt"])
    assert not report.added and len(report.failed) == 2
    assert "no such file" in report.failed[1].error
    assert not empty_library.exists()


@pytest.mark.slow
def test_cli_reports_bad_input_without_tracebacks(tmp_path: Path) -> None:
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "idx")}
    rag = [sys.executable, "-m", "rag"]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("Initech grew revenue 5% to $10 million.")
    (folder / "bad.txt").write_text("Hooli revenue fell.")
    (folder / "bad.txt.meta.json").write_text('{"tickers": 5}')
    (folder / "bomb.pdf").write_bytes(flate_bomb(100))
    res = subprocess.run([*rag, "ingest", str(folder), "/nonexistent"], env=env, capture_output=True, text=True)
    assert res.returncode == 1 and "added 1" in res.stdout, res.stderr
    assert "Traceback" not in res.stderr and "tickers" in res.stderr and "safety limit" in res.stderr
    assert "/nonexistent: no such file" in res.stderr
    res = subprocess.run([*rag, "index", "check"], env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "current generation 1" in res.stdout
    (tmp_path / "idx" / "segments" / "seg-000001" / "postings.npz").write_bytes(b"")
    res = subprocess.run([*rag, "search", "revenue"], env=env, capture_output=True, text=True)
    assert res.returncode == 6 and "damaged" in res.stderr and "Traceback" not in res.stderr
    assert "Aborted" not in res.stderr
    res = subprocess.run([*rag, "index", "check"], env=env, capture_output=True, text=True)
    assert res.returncode == 6 and "seg-000001/postings.npz" in res.stdout


# ---- damaged index: check, repair, fallback -----------------------------------------------------------------
CORRUPTIONS = {
    "vectors.npy emptied": ("vectors.npy", "empty"),
    "vectors.npy truncated": ("vectors.npy", "truncate"),
    "store.sqlite emptied": ("store.sqlite", "empty"),
    "store.sqlite truncated": ("store.sqlite", "truncate"),
    "rowids.npy emptied": ("rowids.npy", "empty"),
    "rowids.npy truncated": ("rowids.npy", "truncate"),
    "postings truncated": ("postings.npz", "truncate"),
    "postings removed": ("postings.npz", "remove"),
    "postings flipped in place": ("postings.npz", "flip"),
}


def _damage(folder: Path, name: str, how: str) -> None:
    target = folder / name
    if how == "remove":
        target.unlink()
        return
    if how == "flip":  # same size, so only reading the file can tell
        data = bytearray(target.read_bytes())
        for i in range(len(data) // 3, len(data) // 3 + 64):
            data[i] ^= 0xFF
        target.write_bytes(bytes(data))
        return
    if how == "empty":
        target.write_bytes(b"")
    else:
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])


@pytest.fixture
def two_generations(seeded_copy: Library) -> Library:
    """Seeds in generation 1, plus acme-q3 in generation 2."""
    assert seeded_copy.add_text(NEW_DOC["text"], NEW_DOC["id"], tickers=["ACME"]).generation == 2
    return Library(seeded_copy.settings, embedder=seeded_copy.embedder)


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_damaged_generation_is_checked_falls_back_and_repairs(two_generations: Library, case: str) -> None:
    name, how = CORRUPTIONS[case]
    root = two_generations.settings.index_dir
    _damage(root / "segments" / "seg-000002", name, how)

    check = check_index(IndexStore(root, two_generations.settings.embedding.model_name))
    assert not check.ok and check.current == 2
    problems = " ".join(next(g for g in check.generations if g.generation == 2).problems)
    assert name in problems
    assert next(g for g in check.generations if g.generation == 1).ok

    # A fresh reader (the server after a restart): searches run on generation 1, and say what is missing.
    lib = Library(two_generations.settings, embedder=two_generations.embedder)
    hits = lib.search("Q4 revenue", k=3)
    assert "$206 million" in hits[0].text
    note = lib.stats()["fallback"]
    assert note and "generation 1" in note and "rag index repair" in note
    if name != "store.sqlite":
        assert "acme-q3" in note
    with client_for(lib) as c:
        health = c.get("/health").json()
        assert health["status"] == "degraded" and "generation 1" in health["note"]
        assert c.post("/v1/search", json={"query": "Q4 revenue"}).status_code == 200

    repaired = lib.repair_index()
    assert repaired.repaired and repaired.from_generation == 2 and repaired.to_generation == 1
    if name != "store.sqlite":
        assert repaired.lost_documents == ["acme-q3"]
    assert check_index(lib.store).ok
    fresh = Library(two_generations.settings, embedder=two_generations.embedder)
    assert fresh.stats()["generation"] == 1 and fresh.stats()["fallback"] is None
    # Writes work again, on top of the restored generation.
    assert fresh.add_text(NEW_DOC["text"], NEW_DOC["id"]).added == ["acme-q3"]
    assert check_index(fresh.store).ok


def test_bytes_changed_in_place_are_found_by_check_and_repaired(two_generations: Library) -> None:
    """Readers check file sizes only; `rag index check` reads every byte against the recorded checksums."""
    root = two_generations.settings.index_dir
    _damage(root / "segments" / "seg-000002", "vectors.npy", "flip")
    check = check_index(two_generations.store)
    assert not check.ok and "seg-000002/vectors.npy: changed on disk" in " ".join(check.generations[0].problems)
    report = two_generations.repair_index()
    assert report.to_generation == 1 and report.lost_documents == ["acme-q3"]
    assert check_index(two_generations.store).ok
    assert list(root.glob(".damaged-seg-000002-*"))


@pytest.mark.parametrize("name", ["vectors.npy", "postings.npz"])
def test_damage_found_at_first_search_falls_back(two_generations: Library, name: str) -> None:
    """Vectors and BM25 load lazily: generation 2 opened fine (documents readable), then turns out damaged."""
    lib = Library(two_generations.settings, embedder=two_generations.embedder)
    assert lib.get_document("acme-q3").tickers == ["ACME"]  # opened; vectors not loaded yet
    _damage(two_generations.settings.index_dir / "segments" / "seg-000002", name, "truncate")
    assert "$206 million" in lib.search("Q4 revenue", k=1)[0].text
    assert "generation 1" in lib.stats()["fallback"]
    with pytest.raises(NotFoundError):
        lib.get_document("acme-q3")  # generation 1 does not have it
    # Another process repairs and writes (a new generation 2): this reader follows, not stuck on the fallback.
    other = Library(two_generations.settings, embedder=two_generations.embedder)
    other.repair_index()
    assert other.add_text(NEW_DOC["text"], NEW_DOC["id"]).generation == 2
    assert lib.get_document("acme-q3").id == "acme-q3" and lib.stats()["fallback"] is None
    assert lib.search("Acme Q3 revenue", k=1)[0].doc_id == "acme-q3"


def test_damaged_manifest_falls_back_and_repairs(two_generations: Library) -> None:
    root = two_generations.settings.index_dir
    (root / "manifest.json").write_text('{"format_version": 3, "embedding')
    lib = Library(two_generations.settings, embedder=two_generations.embedder)
    assert lib.stats()["generation"] == 2  # generation 2 itself is intact; its own manifest copy names it
    assert "nothing is missing" in lib.stats()["fallback"]
    assert not check_index(lib.store).ok
    report = lib.repair_index()
    assert report.repaired and report.to_generation == 2 and report.lost_documents == []
    assert check_index(lib.store).ok


def test_damage_without_fallback_is_503_with_a_reason(seeded_copy: Library) -> None:
    root = seeded_copy.settings.index_dir
    _damage(root / "segments" / "seg-000001", "vectors.npy", "empty")
    lib = Library(seeded_copy.settings, embedder=seeded_copy.embedder)
    with client_for(lib) as c:
        for r in (c.get("/health"), c.post("/v1/search", json={"query": "revenue"}),
                  c.post("/v1/ask", json={"question": "What was Calix's Q4 revenue?"})):
            assert r.status_code == 503, r.text
            assert "vectors.npy" in r.json()["error"]["message"]
            _clean(r)
        assert c.get("/metrics").status_code == 200
        r = c.post("/v1/documents", json=NEW_DOC, headers=AUTH)  # a write on top of damage is refused
        assert r.status_code == 503
    with pytest.raises(IndexDamagedError, match="no intact generation"):
        lib.repair_index()


def test_disk_full_is_a_clear_error_and_keeps_the_index(seeded_copy: Library, monkeypatch) -> None:
    before = seeded_copy.stats()

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(StorageFullError, match="no space left"):
        seeded_copy.add_text(NEW_DOC["text"], NEW_DOC["id"])
    with client_for(seeded_copy) as c:
        r = c.post("/v1/documents", json=NEW_DOC, headers=AUTH)
        assert r.status_code == 507 and "unchanged" in r.json()["error"]["message"]
        _clean(r)
    monkeypatch.undo()
    assert Library(seeded_copy.settings, embedder=seeded_copy.embedder).stats() == before
    assert not list(seeded_copy.settings.index_dir.glob(".staging-*"))


def test_stale_staging_is_removed_at_server_start(seeded_copy: Library) -> None:
    stale = seeded_copy.settings.index_dir / ".staging-000009-12345"
    stale.mkdir()
    (stale / "store.sqlite").write_bytes(b"half")
    with client_for(seeded_copy) as c:
        assert c.get("/health").status_code == 200
    assert not stale.exists()


def test_verify_generation_on_an_intact_index(seeded: Library) -> None:
    check = verify_generation(seeded.store, seeded.snapshot().manifest)
    assert check.ok and check.documents == 2 and check.chunks == seeded.stats()["chunks"]

