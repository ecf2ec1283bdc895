"""Issue 16: ingest embedding and rescoring on Ray (a local cluster started in this process) give what the
single-process paths give, and rescoring keeps its journal semantics."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from rag.library import Library
from rag.sentiment.batch import RescoreRequest
from tests.conftest import SEEDS, make_settings

ray = pytest.importorskip("ray", reason="the `ray` extra is not installed (pip install -e '.[ray]')")

pytestmark = pytest.mark.slow  # a local cluster and one model per worker: ~30 s


@pytest.fixture(scope="module")
def cluster():
    from rag.embedding.ray import connect

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield connect("local")
    ray.shutdown()


def test_ingest_on_ray_equals_the_local_ingest(cluster, seeded: Library, tmp_path, embedder) -> None:
    from rag.embedding.ray import RayEmbedder

    remote = RayEmbedder(seeded.settings.embedding, embedder, workers=2)
    try:
        lib = Library(make_settings(tmp_path / "index"), embedder=remote)
        report = lib.add_paths([SEEDS])
        assert report.ok and len(report.added) == 2
    finally:
        remote.close()
    ours, theirs = lib.snapshot().segments[0], seeded.snapshot().segments[0]
    assert np.array_equal(ours.rowids, theirs.rowids)
    assert np.allclose(ours.vectors, theirs.vectors, atol=1e-5)
    local = Library(make_settings(tmp_path / "index"), embedder=embedder)
    for query in ("Q4 revenue", "Which customer saw ARPU rise 17%"):
        assert [p.chunk_id for p in local.search(query, k=5)] == [p.chunk_id for p in seeded.search(query, k=5)]


def test_an_actor_embeds_with_the_cpus_ray_gave_it() -> None:
    from rag.embedding.ray import actor_settings
    from rag.settings import EmbeddingSettings

    one = actor_settings(EmbeddingSettings(), {"CPU": 1.0})
    assert (one.document_threads, one.query_threads) == (1, 1)
    assert actor_settings(EmbeddingSettings(), {"CPU": 3.0}).query_threads == 3
    assert actor_settings(EmbeddingSettings(document_threads=2), {"CPU": 3.0}).document_threads == 2  # never more


def test_each_actor_builds_its_model_with_the_cpus_ray_gave_it(cluster, seeded: Library, embedder) -> None:
    """The actors themselves, not just the settings function: a 2-CPU cluster, two 1-CPU actors, each onnx
    session with one thread (by default a session takes every core of the machine)."""
    from rag.embedding.ray import RayEmbedder

    remote = RayEmbedder(seeded.settings.embedding, embedder, workers=2)
    try:
        threads = ray.get([actor.__ray_call__.remote(
            lambda worker: (worker.embedder.session.get_session_options().intra_op_num_threads,
                            worker.embedder.document_session is worker.embedder.session))
            for actor in remote.actors])
    finally:
        remote.close()
    assert threads == [(1, True), (1, True)]


def test_query_threads_cap_the_onnx_session() -> None:
    from rag.embedding.factory import make_embedder
    from rag.settings import EmbeddingSettings

    embedder = make_embedder(EmbeddingSettings(query_threads=1, document_threads=1))
    assert embedder.document_session is embedder.session  # one session, not the model twice
    assert embedder.embed_query("revenue").shape == (embedder.dim,)


def _rescore(lib: Library, executor: object | None):
    run = lib.prepare_rescore(RescoreRequest(model="local/finance-sentiment"))
    run.scorer.executor = executor
    return asyncio.run(run.run())


def test_rescore_on_ray_equals_the_local_rescore_and_journals(cluster, seeded_copy: Library, seeded: Library,
                                                             tmp_path) -> None:
    from rag.distributed import RayScoring

    local_job = _rescore(seeded_copy, None)
    local = {s.doc_id: s.score for s in seeded_copy.sentiment_history()}
    remote_lib = Library(make_settings(tmp_path / "copy"), embedder=seeded.embedder)
    remote_lib.add_paths([SEEDS])
    executor = RayScoring(remote_lib.settings.embedding)
    job = _rescore(remote_lib, executor)
    # The seeded copy may hold a score an earlier test stored (same model, prompt and scorer version): cached.
    assert local_job.scored + local_job.cached == 2
    assert job.status == "done" and job.scored == 2 and job.failed == 0
    remote = {s.doc_id: s.score for s in remote_lib.sentiment_history()}
    assert remote.keys() == local.keys() and all(abs(remote[d] - local[d]) < 1e-6 for d in local)
    # The journal is this process's: a rerun finds every score cached and sends nothing to the cluster.
    again = _rescore(remote_lib, executor)
    assert again.cached == 2 and again.scored == 0


def test_cli_ingest_and_rescore_with_ray_flag(cluster, seeded: Library, tmp_path) -> None:
    """`rag ingest PATH --ray-workers 2` and `rag rescore --ray` as a user types them (the cluster this module
    started is the local one the flags join)."""
    from typer.testing import CliRunner

    from rag.cli import app

    index = str(tmp_path / "index")
    # --ray-workers (like --ray-address) implies --ray.
    ingest = CliRunner().invoke(app, ["ingest", str(SEEDS), "--index", index, "--ray-workers", "2", "--json"])
    assert ingest.exit_code == 0, ingest.output
    assert len(json.loads(ingest.output)["added"]) == 2
    lib = Library(make_settings(tmp_path / "index"), embedder=seeded.embedder)
    assert np.allclose(lib.snapshot().segments[0].vectors, seeded.snapshot().segments[0].vectors, atol=1e-5)

    first = CliRunner().invoke(app, ["rescore", "--index", index, "--ray", "--json"])
    assert first.exit_code == 0, first.output
    job = json.loads(first.output[first.output.index("{"):])
    assert job["status"] == "done" and job["scored"] == 2 and job["failed"] == 0
    again = CliRunner().invoke(app, ["rescore", "--index", index, "--ray", "--json"])
    assert json.loads(again.output[again.output.index("{"):])["cached"] == 2
