"""The sentiment journal: `sentiment.sqlite` beside the index generations (scores outlive index rewrites).

Every score is written the moment it is computed, in the same transaction as its job's progress, so a killed
job loses at most the calls in flight. A score is unique per (document, content hash, model, prompt hash, scorer
version): that key is the cache, so a rerun with nothing changed makes no model calls, and scores from other
models or prompts stay as history. WAL with synchronous=NORMAL survives a process kill; a power cut may lose the
last commits, which the next run simply redoes."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from rag.errors import IndexMismatchError, NotFoundError
from rag.sentiment.scoring import DocumentSentiment

# Numbered migrations (as simonw/llm's migrations.py): PRAGMA user_version records how many have run; each runs
# once, in order, in one transaction with its version bump. Never edit a released step; append a new one.
_V1 = """
CREATE TABLE IF NOT EXISTS scores (
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, content_hash TEXT NOT NULL, model TEXT NOT NULL,
    prompt TEXT NOT NULL, prompt_hash TEXT NOT NULL, scorer_version TEXT NOT NULL, tickers TEXT NOT NULL,
    score REAL NOT NULL, created_at TEXT NOT NULL, job_id TEXT, record TEXT NOT NULL,
    UNIQUE (doc_id, content_hash, model, prompt_hash, scorer_version)
);
CREATE INDEX IF NOT EXISTS scores_doc ON scores(doc_id);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT, doc_id TEXT NOT NULL, content_hash TEXT NOT NULL,
    model TEXT NOT NULL, prompt_hash TEXT NOT NULL, error TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, pid INTEGER NOT NULL, record TEXT NOT NULL
);
"""
# v2: one name for the offline flag on answers and scores (was `local_scorer` in stored score records).
_V2 = """
UPDATE scores SET record = json_remove(json_set(record, '$.offline_provider',
    json(CASE WHEN json_extract(record, '$.local_scorer') THEN 'true' ELSE 'false' END)), '$.local_scorer')
WHERE json_type(record, '$.local_scorer') IS NOT NULL;
"""
# v3: peer lookups (corpus percentiles) read the scores of one model + prompt + scorer version.
_V3 = """
CREATE INDEX IF NOT EXISTS scores_scorer ON scores(model, prompt_hash, scorer_version, doc_id);
"""
MIGRATIONS = [_V1, _V2, _V3]
SCHEMA_VERSION = len(MIGRATIONS)

JobState = Literal["running", "done", "failed", "interrupted"]


class RescoreJob(BaseModel):
    id: str
    status: JobState
    model: str
    prompt: str
    prompt_hash: str
    filters: dict[str, Any] = Field(default_factory=dict)
    total: int = 0
    scored: int = Field(0, description="Documents scored by a model call in this job.")
    cached: int = Field(0, description="Documents whose score for this model + prompt already existed.")
    failed: int = 0
    created_at: str
    updated_at: str
    finished_at: str | None = None
    error: str | None = None
    failures: list[dict[str, str]] = Field(default_factory=list, description="Up to 20 (doc_id, error) pairs.")

    @property
    def processed(self) -> int:
        return self.scored + self.cached + self.failed


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SentimentStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise IndexMismatchError(f"{self.path} has schema version {version}; this rag knows up to "
                                             f"{SCHEMA_VERSION}: upgrade rag")
                for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
                    for statement in filter(str.strip, step.split(";\n")):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def schema_version(self) -> int:
        return int(self._rows("PRAGMA user_version")[0][0])

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ---- scores -----------------------------------------------------------------------------------
    def lookup(self, doc_id: str, content_hash: str, model: str, prompt_hash: str,
               scorer_version: str) -> DocumentSentiment | None:
        rows = self._rows(
            "SELECT record FROM scores WHERE doc_id=? AND content_hash=? AND model=? AND prompt_hash=? "
            "AND scorer_version=?", (doc_id, content_hash, model, prompt_hash, scorer_version))
        return DocumentSentiment.model_validate_json(rows[0][0]) if rows else None

    def put(self, record: DocumentSentiment, job: RescoreJob | None = None) -> bool:
        """Store a score (and the job's progress, atomically); False if that exact score was already stored."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO scores (doc_id, content_hash, model, prompt, prompt_hash, scorer_version, "
                "tickers, score, created_at, job_id, record) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (record.doc_id, record.content_hash, record.model, record.prompt, record.prompt_hash,
                 record.scorer_version, json.dumps(record.tickers), record.score, record.created_at, record.job_id,
                 record.model_dump_json()))
            if job is not None:
                self._save_job(db, job)
            return cursor.rowcount == 1

    def put_failure(self, doc_id: str, content_hash: str, model: str, prompt_hash: str, error: str,
                    job: RescoreJob | None = None) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO failures (job_id, doc_id, content_hash, model, prompt_hash, error, created_at) "
                       "VALUES (?,?,?,?,?,?,?)",
                       (job.id if job else None, doc_id, content_hash, model, prompt_hash, error, now()))
            if job is not None:
                self._save_job(db, job)

    def history(self, doc_id: str | None = None, ticker: str | None = None) -> list[DocumentSentiment]:
        """Every stored score of a document or of a ticker's documents (deleted ones included), oldest first."""
        if doc_id is not None:
            rows = self._rows("SELECT record FROM scores WHERE doc_id=? ORDER BY id", (doc_id,))
        elif ticker is not None:
            rows = self._rows("SELECT record FROM scores WHERE EXISTS (SELECT 1 FROM json_each(scores.tickers) "
                              "WHERE upper(value)=upper(?)) ORDER BY id", (ticker,))
        else:
            rows = self._rows("SELECT record FROM scores ORDER BY id")
        return [DocumentSentiment.model_validate_json(r[0]) for r in rows]

    def scores_by(self, model: str, prompt_hash: str, scorer_version: str) -> list[DocumentSentiment]:
        """Every score of one model + prompt + scorer version, newest last (all document versions)."""
        rows = self._rows("SELECT record FROM scores WHERE model=? AND prompt_hash=? AND scorer_version=? ORDER BY id",
                          (model, prompt_hash, scorer_version))
        return [DocumentSentiment.model_validate_json(r[0]) for r in rows]

    # ---- jobs -------------------------------------------------------------------------------------
    @staticmethod
    def _save_job(db: sqlite3.Connection, job: RescoreJob) -> None:
        job.updated_at = now()
        db.execute("INSERT OR REPLACE INTO jobs (id, status, pid, record) VALUES (?,?,?,?)",
                   (job.id, job.status, os.getpid(), job.model_dump_json()))

    def save_job(self, job: RescoreJob) -> None:
        with self._tx() as db:
            self._save_job(db, job)

    def get_job(self, job_id: str) -> RescoreJob:
        rows = self._rows("SELECT record, status, pid FROM jobs WHERE id=?", (job_id,))
        if not rows:
            raise NotFoundError(f"no job {job_id!r}")
        record, status, pid = rows[0]
        job = RescoreJob.model_validate_json(record)
        if status == "running" and not _alive(pid):
            job.status = "interrupted"  # its process died; rerunning the same rescore resumes from the journal
        job.failures = [{"doc_id": d, "error": e} for d, e in self._rows(
            "SELECT doc_id, error FROM failures WHERE job_id=? ORDER BY id LIMIT 20", (job_id,))]
        return job
