"""Issue 16: the segmented index. Writes append segments and tombstones; BM25 keeps collection-wide statistics
across segments; compaction changes no result; a killed bulk ingest keeps its committed batches and a rerun
resumes; a format-2 index is refused with the way out, and migrated; serving replicas follow one writer."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import bm25s
import faiss
import httpx
import numpy as np
import pytest

from rag.errors import IndexMismatchError
from rag.index.lexical import Postings, bm25_scores
from rag.index.store import plan_merge
from rag.library import Library
from rag.models import Document
from rag.settings import IndexSettings, IngestSettings
from rag.text import TOKENIZER_VERSION, tokenize
from tests.conftest import SEED_MAP, SEED_NOTE, SEEDS, make_settings
from tests.fakes import free_port, kill_9_at, wait_until_serving

TEXTS = [
    "Revenue grew 12% to $4.2 billion in the fourth quarter, driven by cloud.",
    "Operating margin fell to 18% as costs rose; cloud revenue kept growing.",
    "The board approved a $2 billion buyback and raised the dividend.",
    "Free cash flow was $900 million; capital expenditures were flat.",
    "Guidance for the full year calls for revenue of $17 billion.",
    "Churn improved and ARPU rose 3% sequentially.",
    "",
    "Cloud, cloud and more cloud: revenue from cloud services doubled.",
]


def test_bm25_over_segments_with_tombstones_equals_one_bm25s_index() -> None:
    """Scores from postings split over segments, with dead chunks, equal bm25s (the engine before segments)
    indexing only the live chunks: the statistics are collection-wide, never per segment."""
    tokens = [tokenize(t) for t in TEXTS]
    parts = [Postings.from_tokens(tokens[:3]), Postings.from_tokens(tokens[3:5]), Postings.from_tokens(tokens[5:])]
    live = [np.array([True, False, True]), np.array([True, True]), np.array([True, True, True])]
    alive = [t for t, keep in zip(tokens, np.concatenate(live), strict=True) if keep]
    reference = bm25s.BM25()
    reference.index([t or ["\u2205"] for t in alive], show_progress=False)
    for query in ("cloud revenue", "buyback dividend", "revenue revenue margin", "free cash flow capex"):
        q = tokenize(query)
        ours = np.concatenate([s[m] for s, m in zip(bm25_scores(q, list(zip(parts, live, strict=True))), live,
                                                     strict=True)])
        known = [t for t in q if t in reference.vocab_dict]
        theirs = reference.get_scores(known) if known else np.zeros(len(alive))
        assert np.allclose(ours, theirs, atol=1e-5), query
    # Merging the segments (dropping the dead chunk) changes no score.
    merged = Postings.merge(list(zip(parts, live, strict=True)))
    assert len(merged.doc_len) == len(alive) and "18%" not in merged.vocab  # only the dropped chunk had it
    q = tokenize("cloud revenue")
    assert np.allclose(bm25_scores(q, [(merged, np.ones(len(alive), dtype=bool))])[0],
                       np.concatenate([s[m] for s, m in zip(bm25_scores(q, list(zip(parts, live, strict=True))),
                                                             live, strict=True)]))


def test_plan_merge_takes_the_newest_small_segments() -> None:
    assert plan_merge([100, 5, 5], 4) is None
    assert plan_merge([1000, 10, 1, 1, 1], 4) == 2  # the big ones stay; the tail of small ones becomes one
    assert plan_merge([1, 1, 1, 1, 1], 4) == 0  # equal sizes: all merge, so a chunk is rewritten O(log n) times


def test_a_write_adds_one_segment_and_a_tombstone_and_readers_merge(seeded_copy: Library) -> None:
    seg1 = seeded_copy.settings.index_dir / "segments" / "seg-000001"
    before = {p.name: p.stat().st_mtime_ns for p in seg1.iterdir()}
    seeded_copy.add_text("Acme Corp reported Q3 revenue of $88 million.", "acme", tickers=["ACME"])
    first = seeded_copy.snapshot()
    first.load()
    seeded_copy.add_text("Acme Corp reported Q3 revenue of $91 million, revised.", "acme", tickers=["ACME"])
    # The reader follows the writer without reloading what it has: the seeds' segment is the same object, and
    # the tombstoned one shares its loaded postings and vectors.
    second = seeded_copy.snapshot()
    assert second is not first and second.segments[0] is first.segments[0]
    assert second.segments[1] is not first.segments[1] and second.segments[1].postings is first.segments[1].postings
    assert first.segments[1].live.all() and not second.segments[1].live.any()
    assert {p.name: p.stat().st_mtime_ns for p in seg1.iterdir()} == before  # segments are immutable
    snap = seeded_copy.snapshot()
    assert [s.name for s in snap.manifest.segments] == ["seg-000001", "seg-000002", "seg-000003"]
    assert snap.manifest.segments[1].deleted == ["acme"]  # the replaced version is a tombstone
    hits = seeded_copy.search("Acme Q3 revenue", k=3)
    assert hits[0].doc_id == "acme" and "$91 million" in hits[0].text
    assert not any("$88 million" in h.text for h in hits)
    assert seeded_copy.stats()["documents"] == 3 and seeded_copy.get_document("acme").text.endswith("revised.")
    # Results read across segments are the ones of one merged segment.
    ranked = [(p.chunk_id, round(p.score, 6)) for p in seeded_copy.search("Q4 revenue SmartMDU", k=8)]
    seeded_copy.compact_index()
    assert seeded_copy.stats()["segments"] == 1
    assert [(p.chunk_id, round(p.score, 6)) for p in seeded_copy.search("Q4 revenue SmartMDU", k=8)] == ranked


def test_linking_follows_writes_and_deletes_without_rereading_old_segments(seeded_copy: Library) -> None:
    doc = Document(id="zephyr-q3", text="Zephyr Widgets reported Q3 FY2021 revenue of $12 million.",
                   title="Zephyr Widgets Q3 FY2021 results", tickers=["ZPHR"],
                   metadata={"company": "Zephyr Widgets", "period": "Q3 FY2021"})
    assert seeded_copy.add_documents([doc]).ok
    snap = seeded_copy.snapshot()
    assert [m.company.key for m in snap.entities.link("What did Zephyr Widgets earn?")] == ["Zephyr Widgets"]
    assert snap.periods.of["zephyr-q3"].years == {"2021"}
    seeded_copy.delete("zephyr-q3")
    after = seeded_copy.snapshot()
    # The seeds' segment is reused with what it already read; the tombstoned document links to nothing.
    assert after.segments[0] is snap.segments[0] and "document_facts" in after.segments[0].__dict__
    assert after.segments[1].document_facts is snap.segments[1].document_facts
    assert not after.entities.link("What did Zephyr Widgets earn?") and "zephyr-q3" not in after.periods.of


def test_writes_past_max_segments_merge_the_newest_ones(seeded_copy: Library) -> None:
    settings = seeded_copy.settings.model_copy(update={"index": IndexSettings(max_segments=3)})
    lib = Library(settings, embedder=seeded_copy.embedder)
    for i in range(5):
        lib.add_text(f"Initech note {i}: revenue was ${10 + i} million.", f"note-{i}", tickers=["INTC"])
        assert lib.stats()["segments"] <= 3
    assert lib.snapshot().manifest.segments[0].name == "seg-000001"  # the big seeds segment was not rewritten
    assert lib.stats()["documents"] == 7
    assert lib.search("Initech note 3 revenue", k=1)[0].doc_id == "note-3"


def test_ingest_progress_counts_chunks(empty_library: Library) -> None:
    calls: list[tuple[int, int]] = []
    report = empty_library.add_paths([SEEDS], progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, report.chunks) and calls[-1] == (report.chunks, report.chunks)
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:], strict=False))


def test_ingest_commits_in_batches(tmp_path: Path, embedder) -> None:
    settings = make_settings(tmp_path / "index", ingest=IngestSettings(commit_documents=2))
    docs = [Document(id=f"d{i}", text=f"Company {i} grew revenue {i}% in the quarter.") for i in range(5)]
    report = Library(settings, embedder=embedder).add_documents(docs)
    assert report.generation == 3 and len(report.added) == 5
    assert Library(settings, embedder=embedder).stats()["segments"] == 3


def test_kill_9_mid_ingest_keeps_committed_batches_and_a_rerun_resumes(tmp_path: Path, embedder) -> None:
    """A real SIGKILL while the third batch is being embedded: the first two batches are in the index, and the
    rerun embeds only what was lost."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(9):
        (folder / f"doc{i}.txt").write_text(f"Company {i} reported revenue of ${i + 1} million in the quarter.")
    index = tmp_path / "index"
    marker = tmp_path / "embedding-batch-3"
    script = textwrap.dedent(f"""
        import pathlib, time
        from rag.embedding.onnx import OnnxEmbedder
        from rag.library import Library
        from rag.settings import Settings
        real, calls = OnnxEmbedder.embed_batch, []
        def embed_batch(self, texts):
            calls.append(len(texts))
            if len(calls) == 3:
                pathlib.Path({str(marker)!r}).write_text("x")
                time.sleep(60)
            return real(self, texts)
        OnnxEmbedder.embed_batch = embed_batch
        Library(Settings()).add_paths([pathlib.Path({str(folder)!r})])
    """)
    env = {**os.environ, "RAG_INDEX_DIR": str(index), "RAG_INGEST__COMMIT_DOCUMENTS": "3",
           "PYTHONPATH": str(Path(__file__).parent.parent)}
    kill_9_at(subprocess.Popen([sys.executable, "-c", script], env=env), marker)
    lib = Library(make_settings(index), embedder=embedder)
    committed = [d.id for d in lib.list_documents()]
    assert len(committed) == 6 and lib.stats()["generation"] == 2
    report = lib.add_paths([folder])
    assert sorted(report.unchanged) == sorted(committed) and len(report.added) == 3
    assert report.chunks == 3  # only the lost batch was embedded again
    assert {d.id for d in lib.list_documents()} == {f"doc{i}" for i in range(9)}
    assert lib.check_index().ok


def _write_format_2(source: Library, root: Path) -> None:
    """The layout rag wrote before segments: gen-N/{store.sqlite, vectors.faiss} and a format-2 manifest."""
    snap = source.snapshot()
    segment = snap.segments[0]
    folder = root / "gen-000004"
    folder.mkdir(parents=True)
    db = sqlite3.connect(folder / "store.sqlite")
    db.executescript("""
        CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, tickers TEXT NOT NULL, date TEXT,
            source_url TEXT, doc_type TEXT, path TEXT, content_hash TEXT NOT NULL, text TEXT NOT NULL,
            pages TEXT NOT NULL, metadata TEXT NOT NULL, ingested_at TEXT NOT NULL);
        CREATE TABLE chunks (rowid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
            doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE, ordinal INTEGER NOT NULL,
            start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER, text TEXT NOT NULL);""")
    db.execute("ATTACH DATABASE ? AS src", (str(segment.folder / "store.sqlite"),))
    db.execute("INSERT INTO documents SELECT * FROM src.documents")
    db.execute("INSERT INTO chunks SELECT * FROM src.chunks")
    db.commit()
    db.close()
    vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(snap.manifest.dim))
    order = np.arange(len(segment.rowids))[::-1]  # storage order need not follow rowids
    vectors.add_with_ids(np.ascontiguousarray(segment.vectors[order]), segment.rowids[order])
    faiss.write_index(vectors, str(folder / "vectors.faiss"))
    (root / "manifest.json").write_text(json.dumps({
        "format_version": 2, "embedding_model": snap.manifest.embedding_model, "embedding_backend": "onnx",
        "dim": snap.manifest.dim, "generation": 4, "updated_at": "2026-01-01T00:00:00+00:00"}))


def test_a_format_2_index_is_refused_with_the_way_out_and_migrates(seeded: Library, tmp_path: Path) -> None:
    root = tmp_path / "old"
    _write_format_2(seeded, root)
    old = Library(make_settings(root), embedder=seeded.embedder)
    with pytest.raises(IndexMismatchError, match="format 2.*rag index migrate"):
        old.search("Q4 revenue")
    res = subprocess.run([sys.executable, "-m", "rag", "index", "migrate", "--index", str(root)],
                         capture_output=True, text=True, env={**os.environ,
                                                              "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert res.returncode == 0 and "format 3" in res.stdout, res.stderr
    assert not list(root.glob("gen-*"))
    migrated = Library(make_settings(root), embedder=seeded.embedder)
    assert migrated.stats()["generation"] == 5 and migrated.check_index().ok
    for query in ("Q4 revenue", "Which customer saw ARPU rise 17%", "SmartMDU deployments"):
        assert [(p.chunk_id, round(p.score, 6)) for p in migrated.search(query, k=5)] == \
            [(p.chunk_id, round(p.score, 6)) for p in seeded.search(query, k=5)]
    assert {d.id for d in migrated.list_documents()} == {SEED_NOTE, SEED_MAP}


def test_tokenizer_output_is_pinned_to_its_version() -> None:
    """Failing here means tokenize now folds text differently: bump rag.text.TOKENIZER_VERSION (so indexes built
    before are re-tokenised when read) and update both values below."""
    text = ("Itaú's full-year cashflow rose four and a half percent to $1,600 million in Q2 FY2023; revenues paying "
            "off in e-commerce; R&D; FCF up 30 bps YoY; COVID-19; shipments paid; 2H2021 NPLs; A&T head count; "
            "capital spending; 100 MW, 2 GW; non-operating; M & A, M&As.")
    assert (TOKENIZER_VERSION, tokenize(text)) == (5, ["itau", "fy", "cash", "flow", "rise", "4.5%", "1600", "million",
                                                       "q2", "fy2023", "revenu", "pay", "off", "ecommerc", "rnd",
                                                       "free", "cash", "flow", "up", "30", "basi", "point", "year",
                                                       "year", "covid", "ship", "pay", "h2", "2021", "npl", "a&t",
                                                       "headcount", "capex", "100", "megawatt", "2", "gigawatt",
                                                       "non", "oper", "m&a", "m&a"])


def test_a_segment_from_another_tokenizer_is_retokenised_and_compact_stores_it(
        seeded: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """An index built before an upgrade that changed tokenize: its postings hold terms this rag's queries never
    produce ("revenues" where a query now says "revenu"). Readers re-tokenise such a segment; compact persists it."""
    import rag.index.segment as segment_module
    import rag.index.store as store_module

    root = tmp_path / "old"
    with monkeypatch.context() as old_rag:
        old_rag.setattr(store_module, "tokenize", lambda text: text.lower().split())
        old_rag.setattr(segment_module, "TOKENIZER_VERSION", None)  # stamped as an index from before versions
        assert Library(make_settings(root), embedder=seeded.embedder).add_paths([SEEDS]).ok
    manifest = json.loads((root / "manifest.json").read_text())
    assert [s["tokenizer_version"] for s in manifest["segments"]] == [None]
    old = Library(make_settings(root), embedder=seeded.embedder)
    queries = ("Q4 revenue", "Which customer saw ARPU rise 17%", "SmartMDU deployments")
    for query in queries:
        assert [p.chunk_id for p in old.search(query, k=5, mode="bm25")] == \
            [p.chunk_id for p in seeded.search(query, k=5, mode="bm25")]
    assert "re-tokenising" in caplog.text
    old.compact_index()
    manifest = json.loads((root / "manifest.json").read_text())
    assert [s["tokenizer_version"] for s in manifest["segments"]] == [TOKENIZER_VERSION]
    compacted = Library(make_settings(root), embedder=seeded.embedder)
    assert compacted.check_index().ok
    for query in queries:
        assert [p.chunk_id for p in compacted.search(query, k=5, mode="bm25")] == \
            [p.chunk_id for p in seeded.search(query, k=5, mode="bm25")]


def _serve(index: Path, port: int, key: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "RAG_INDEX_DIR": str(index), "PYTHONPATH": str(Path(__file__).parent.parent)}
    if key:
        env["RAG_SERVER__API_KEYS"] = f'["{key}"]'
    return subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_two_serving_replicas_follow_one_writer(seeded_copy: Library, tmp_path: Path) -> None:
    """Two `rag serve` processes on one index directory answer searches without an error while a third process
    writes documents, and both pick up each new manifest."""
    index = seeded_copy.settings.index_dir
    ports = [free_port(), free_port()]
    servers = [_serve(index, port) for port in ports]
    try:
        for proc, port in zip(servers, ports, strict=True):
            wait_until_serving(proc, f"http://127.0.0.1:{port}")
        folder = tmp_path / "new"
        folder.mkdir()
        for i in range(6):
            (folder / f"initech-{i}.txt").write_text(f"Initech note {i}: backlog reached ${i + 5} billion.")
        writer = subprocess.Popen([sys.executable, "-m", "rag", "ingest", str(folder)],
                                  env={**os.environ, "RAG_INDEX_DIR": str(index), "RAG_INGEST__COMMIT_DOCUMENTS": "1",
                                       "PYTHONPATH": str(Path(__file__).parent.parent)},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        searches = 0
        while writer.poll() is None:
            for port in ports:
                r = httpx.post(f"http://127.0.0.1:{port}/v1/search", json={"query": "Initech backlog"}, timeout=30)
                assert r.status_code == 200, r.text
                searches += 1
        assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
        assert searches >= 2
        for port in ports:
            health = httpx.get(f"http://127.0.0.1:{port}/health").json()
            assert health["documents"] == 8 and health["generation"] == 7
            hits = httpx.post(f"http://127.0.0.1:{port}/v1/search", json={"query": "Initech note backlog",
                                                                          "k": 10}).json()["passages"]
            assert {f"initech-{i}" for i in range(6)} <= {h["doc_id"] for h in hits}
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(10)
