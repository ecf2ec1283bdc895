"""rag as an installed package, away from the checkout: a wheel built from the source, installed into a fresh
venv, used from a temporary folder with an empty home. Proves the prompts, the sentiment head and the web page
travel as package data and that the index and caches default to the user's folders (rag.settings.IN_CHECKOUT)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from rag.settings import PROJECT_ROOT, default_cache_dir
from tests.conftest import SEEDS

# What a wheel is built from: the source, without local state (venv, index, caches, build output).
_LOCAL_STATE = shutil.ignore_patterns(".venv", ".git", ".cache", "report", "build", "dist", "*.egg-info",
                                      "__pycache__", ".pytest_cache", ".ruff_cache", "wheelhouse")


def _NOT_SOURCE(folder: str, names: list[str]) -> set[str]:  # noqa: N802  # used as copytree's ignore=
    """Local state, and the checkout's index/ folder (only that one: rag/index is the package's index code)."""
    ignored = set(_LOCAL_STATE(folder, names))
    return ignored | ({"index"} if Path(folder) == PROJECT_ROOT else set())


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_wheel_installs_and_answers_outside_the_checkout(tmp_path: Path, embedder) -> None:
    src = tmp_path / "src"
    shutil.copytree(PROJECT_ROOT, src, ignore=_NOT_SOURCE, symlinks=True)
    build_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    # --no-build-isolation: setuptools from this venv, so the build needs no index, offline or not.
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
          str(src)], tmp_path, build_env)
    wheel = next((tmp_path / "dist").glob("rag-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"rag/prompt_templates/answer.v1.md", "rag/data/finance_sentiment_head.json",
            "rag/web/vendor/swagger-ui/swagger-ui-bundle.js", "rag/web/vendor/redoc/redoc.standalone.js",
            "rag/web/index.html", "rag/web/app.js"} <= names

    # A fresh venv that sees the dependencies already installed here but not this checkout: a .pth line adds
    # this venv's site-packages as a plain path (its own .pth files, among them the editable install's, are
    # not processed), after the new venv's own site-packages where the wheel goes. `venv --system-site-packages`
    # would not do: from inside a venv it exposes the base interpreter's packages, not this venv's.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, build_env)
    python = venv / "bin" / "python"
    own = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path,
                    build_env).strip())
    (own / "_rag_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
         tmp_path, build_env)

    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    shutil.copytree(SEEDS, work / "seeds")
    # The ONNX export of the model takes ~30 s; put this checkout's export where an installed rag looks for it
    # (its default, user cache folder). A missing or stale copy is simply exported again.
    exported = default_cache_dir() / "onnx"
    if exported.is_dir():
        shutil.copytree(exported, home / "cache" / "rag" / "onnx")
    env = {k: v for k, v in build_env.items() if not k.startswith(("RAG_", "VIRTUAL_ENV", "XDG_"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"))
    rag = str(venv / "bin" / "rag")

    where = _run([str(python), "-c", "import rag, rag.settings as s; print(rag.__file__, s.IN_CHECKOUT)"], work, env)
    assert where.strip() == f"{own / 'rag' / '__init__.py'} False"
    assert "added 2" in _run([rag, "ingest", "seeds"], work, env)
    assert (home / "data" / "rag" / "index" / "manifest.json").is_file()
    answer = _run([rag, "ask", "What was Calix's Q4 revenue?"], work, env)
    assert "$206 million" in answer and "[1]" in answer and "Sources" in answer
    assert "Calix Q4 results" in answer.split("Sources", 1)[1]
    assert not (work / "index").exists() and sorted(p.name for p in work.iterdir()) == ["seeds"]
