"""Shared fixtures: the real bundled embedding model, a real FAISS/BM25/SQLite index of the seeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.api.app import create_app
from rag.embedding.factory import make_embedder
from rag.library import Library
from rag.process import prepare_process
from rag.settings import PROJECT_ROOT, ServerSettings, Settings

prepare_process()

SEEDS = PROJECT_ROOT / "seeds"
SEED_NOTE = "000_1f0b45879ee6eeb9"
SEED_MAP = "001_bbe1c96cf602746c"
KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


def client_for(lib: Library, **server: object) -> TestClient:
    """The real app around a library sharing `lib`'s index and embedder, with one API key."""
    settings = lib.settings.model_copy(update={"server": ServerSettings(api_keys=[SecretStr(KEY)], **server)})
    return TestClient(create_app(library=Library(settings, embedder=lib.embedder)))


def make_settings(index_dir: Path, **overrides: object) -> Settings:
    return Settings(index_dir=index_dir, **overrides)


@pytest.fixture
def client(seeded: Library):
    """The real app over the seeded index, in-process."""
    with client_for(seeded) as c:
        yield c


@pytest.fixture(scope="session")
def embedder():
    return make_embedder(Settings().embedding)


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """Seeds ingested once per session; tests that write must copy it (see `seeded_copy`)."""
    index_dir = tmp_path_factory.mktemp("seeded") / "index"
    report = Library(make_settings(index_dir), embedder=embedder).add_paths([SEEDS])
    assert report.ok and len(report.added) == 2
    return index_dir


@pytest.fixture(scope="session")
def seeded(seeded_dir: Path, embedder) -> Library:
    """Read-only library over the seeds."""
    return Library(make_settings(seeded_dir), embedder=embedder)


@pytest.fixture
def seeded_copy(seeded_dir: Path, tmp_path: Path, embedder) -> Library:
    """A private, writable copy of the seeded index."""
    target = tmp_path / "index"
    shutil.copytree(seeded_dir, target)
    return Library(make_settings(target), embedder=embedder)


@pytest.fixture
def empty_library(tmp_path: Path, embedder) -> Library:
    return Library(make_settings(tmp_path / "index"), embedder=embedder)
