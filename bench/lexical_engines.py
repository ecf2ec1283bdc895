"""BM25 engines for the segmented index, on the eval suites (issue #16): the segments' own postings with
collection-wide statistics (what rag uses; equal to one bm25s index over the live chunks) vs SQLite FTS5's
bm25() over the same tokens (rag.text.tokenize: stemming, number and phrase folding, stored space-separated so
FTS5 only splits on spaces).

Each suite is ingested once; both engines then answer its questions on the same index (the dense side and the
fusion are unchanged). Dev split of the earnings suite only (never tune on test); FinanceBench was never used for
tuning.

    python bench/lexical_engines.py [--suites seeds earnings financebench]"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import print_table, write_result  # noqa: E402
from rag.evaluation import runner  # noqa: E402
from rag.index import Snapshot  # noqa: E402
from rag.index.segment import index_texts  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.settings import PROJECT_ROOT, Settings  # noqa: E402
from rag.text import tokenize  # noqa: E402

METRICS = {
    "seeds": ["fact_accuracy", "retrieval_hybrid_recall@5", "retrieval_hybrid_mrr", "retrieval_bm25_recall@5"],
    "earnings": ["dev_fact_accuracy", "retrieval_dev_hybrid_recall@5", "retrieval_dev_hybrid_mrr",
                 "retrieval_dev_bm25_recall@5"],
    "financebench": ["retrieval_dev_hybrid_recall@5", "retrieval_dev_hybrid_mrr", "retrieval_dev_bm25_recall@5",
                     "retrieval_dev_bm25_mrr"],
}


class Fts5:
    """An in-memory FTS5 table over a snapshot's live chunks, rowid = chunk rowid."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        # Tokens are already folded; FTS5 must keep "2.6%" or "$206" whole and split on spaces only.
        self.db.execute("CREATE VIRTUAL TABLE fts USING fts5(body, tokenize = \"unicode61 remove_diacritics 0 "
                        "tokenchars '.%$,'\")")
        for segment in snapshot.segments:
            with segment._lock:
                rows = index_texts(segment._db)
            live = set(segment.rowids[segment.live].tolist())
            self.db.executemany("INSERT INTO fts (rowid, body) VALUES (?, ?)",
                                [(r, " ".join(tokenize(text))) for r, text in rows if r in live])
        self.db.commit()

    def search(self, query: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        tokens = list(dict.fromkeys(tokenize(query)))
        if not tokens:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in tokens)
        where = ""
        if allowed is not None:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS allowed (rowid INTEGER PRIMARY KEY)")
            self.db.execute("DELETE FROM allowed")
            self.db.executemany("INSERT INTO allowed VALUES (?)", [(int(r),) for r in allowed])
            where = " AND rowid IN (SELECT rowid FROM allowed)"
        rows = self.db.execute(f"SELECT rowid, bm25(fts) FROM fts WHERE fts MATCH ?{where} ORDER BY bm25(fts) "
                               "LIMIT ?", (match, n)).fetchall()
        return [(int(r), -float(s)) for r, s in rows]


def with_fts5() -> Any:
    engines: dict[int, Fts5] = {}
    original = Snapshot.bm25_search

    def bm25_search(self: Snapshot, query: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        if id(self) not in engines:
            engines[id(self)] = Fts5(self)
        return engines[id(self)].search(query, n, allowed)

    Snapshot.bm25_search = bm25_search  # type: ignore[method-assign]
    return original


def ingest(name: str, lib: Library) -> None:
    if name == "seeds":
        lib.add_paths([PROJECT_ROOT / "seeds"])
    elif name == "earnings":
        gold = runner.earnings.load()
        lib.add_paths([PROJECT_ROOT / p for p in (gold.documents, gold.extra_documents) if p])
    else:
        lib.add_documents(runner.financebench.load()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", nargs="+", default=["seeds", "earnings", "financebench"])
    args = parser.parse_args()
    settings = Settings()
    rows = []
    for name in args.suites:
        with tempfile.TemporaryDirectory() as tmp:
            index = Path(tmp) / "index"
            ingest(name, Library(settings.model_copy(update={"index_dir": index})))
            for engine in ("segments (global IDF)", "sqlite fts5 bm25()"):
                original = with_fts5() if engine.startswith("sqlite") else None
                try:
                    metrics = runner.run_suite(name, settings, index=index)["metrics"]
                finally:
                    if original is not None:
                        Snapshot.bm25_search = original  # type: ignore[method-assign]
                rows.append({"suite": name, "engine": engine,
                             **{m: round(float(metrics[m]), 3) for m in METRICS[name] if m in metrics}})
                print_table(rows[-1:], list(rows[-1]))
    print()
    for name in args.suites:
        in_suite = [r for r in rows if r["suite"] == name]
        print_table(in_suite, list(in_suite[0]))
        print()
    print(f"wrote {write_result('lexical_engines', {'rows': rows})}")


if __name__ == "__main__":
    main()
