"""The shape of the package: one-way layers with no import circles, reads that load no model, an import that
changes nothing in the process, one registry for providers, and prompt tags that render and parse back."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.errors import BadInputError
from rag.models import Passage, Turn
from rag.prompt_tags import format_history, format_passages, parse_history, parse_passages, parse_tag, prompt_text
from rag.prompts import available_prompts, load_prompt
from rag.providers import registry
from rag.settings import PROJECT_ROOT
from tests.conftest import SEED_NOTE, SEEDS

PACKAGE = PROJECT_ROOT / "rag"
# Lowest first. A module may import its own layer or lower ones, never a higher one.
LAYERS = [
    ["rag", "rag.settings", "rag.models", "rag.errors", "rag.text", "rag.offline", "rag.prompts", "rag.prompt_tags"],
    ["rag.embedding", "rag.chunking", "rag.transcript", "rag.loaders", "rag.entities", "rag.periods", "rag.index",
     "rag.providers"],
    ["rag.retrieve", "rag.llm", "rag.index_check", "rag.url_fetch"],
    ["rag.answer", "rag.ingest", "rag.sentiment.scoring", "rag.sentiment.store", "rag.sentiment.relative"],
    ["rag.qa", "rag.sentiment.batch", "rag.sentiment.service", "rag.sentiment", "rag.distributed"],
    ["rag.library"],
    ["rag.cli", "rag.api", "rag.evaluation", "rag.__main__"],
]


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _imports() -> dict[str, set[str]]:
    """Module -> rag modules it imports, at module level or inside functions (lazy imports count)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rag":
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] == "rag"}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _layer(module: str) -> int:
    best = max((prefix for layer in LAYERS for prefix in layer if module == prefix or module.startswith(prefix + ".")),
               key=len)
    return next(i for i, layer in enumerate(LAYERS) if best in layer)


def test_every_module_has_a_layer_and_imports_only_downward() -> None:
    graph = _imports()
    upward = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
              for m, deps in graph.items() for d in deps if _layer(d) > _layer(m)]
    assert not upward, "\n".join(upward)


def test_no_import_circles() -> None:
    graph = _imports()

    def reaches(start: str, target: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            node = todo.pop()
            if node == target:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return False

    circles = sorted(m for m in graph if reaches(m, m))
    assert not circles, f"modules on an import circle: {circles}"


def test_settings_build_no_models() -> None:
    assert _imports()["rag.settings"] == set()


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=env or {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})


def test_importing_rag_changes_no_environment_variable() -> None:
    code = ("import os, json; before = dict(os.environ); import rag, rag.library, rag.cli, rag.api.app; "
            "print(json.dumps(sorted(k for k in os.environ if os.environ.get(k) != before.get(k))))")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                            "LITELLM_LOCAL_MODEL_COST_MAP", "TOKENIZERS_PARALLELISM")}
    result = _run(code, {**env, "PYTHONPATH": str(PROJECT_ROOT)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_reads_and_a_missing_index_load_no_model(seeded_dir: Path, tmp_path: Path) -> None:
    """Listing, getting, deleting and "no index here" need neither the embedding model nor litellm."""
    code = f"""
import sys, shutil
from pathlib import Path
from rag.library import Library
from rag.settings import Settings
from rag.errors import IndexMissingError
copy = Path({str(tmp_path / "copy")!r})
shutil.copytree({str(seeded_dir)!r}, copy)
lib = Library(Settings(index_dir=copy))
assert len(lib.list_documents()) == 2 and lib.get_document({SEED_NOTE!r}).text
lib.delete({SEED_NOTE!r})
assert len(lib.list_documents()) == 1
try:
    Library(Settings(index_dir=Path({str(tmp_path / "none")!r}))).ask("What was revenue?")
    raise SystemExit("no error for a missing index")
except IndexMissingError:
    pass
heavy = [m for m in ("onnxruntime", "torch", "sentence_transformers", "litellm") if m in sys.modules]
print(heavy)
"""
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_registry_refuses_a_model_for_the_wrong_task_before_any_call() -> None:
    with pytest.raises(BadInputError, match="not answer"):
        registry.check("local/finance-sentiment", "answer")
    with pytest.raises(BadInputError, match="not sentiment"):
        registry.check("local/extractive", "sentiment")
    with pytest.raises(BadInputError, match="unknown model 'local/nope'"):
        registry.check("local/nope", "answer")
    assert registry.check("openai/gpt-4o-mini", "answer") is None  # an ordinary litellm model
    entry = registry.check("local/extractive", "rewrite")
    assert entry is not None and entry.offline


def test_cli_refuses_wrong_task_with_exit_2(seeded_dir: Path) -> None:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "rag", "ask", "What was Calix's Q4 revenue?", "--model",
                             "local/finance-sentiment", "--index", str(seeded_dir)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert result.returncode == 2, result.stderr
    assert "does sentiment, not answer" in result.stderr
    assert time.perf_counter() - started < 30  # refused up front: no retries with backoff


def _passage(n: int, text: str) -> Passage:
    return Passage(chunk_id=f"c{n}", doc_id=f"d{n}", title=f'Title "{n}" & co', text=text, start=0, end=len(text),
                   page=None, source_url=None, tickers=[], doc_type=None, date=None, score=0.0)


@pytest.mark.parametrize("name", available_prompts())
def test_every_shipped_prompt_renders_and_parses_back(name: str) -> None:
    template = load_prompt(None, name)
    passages = [_passage(1, "Revenue was $206 million.\nA second line."), _passage(2, "RPO rose 10% <b>.")]
    history = [Turn(role="user", content="What was revenue?"), Turn(role="assistant", content="$206 million [1].")]
    values = {"passages": format_passages(passages), "question": "And RPO?", "history": format_history(history),
              "doc_id": "d1", "title": "t", "tickers": "CALX", "date": ""}
    needed = {v for part in (template.system, template.user) for v in values if "${" + v + "}" in part}
    assert needed, f"{name} uses none of the known tags"
    text = prompt_text(template.messages(**values))
    if "passages" in needed:
        assert parse_passages(text) == {1: passages[0].text, 2: passages[1].text}
    if "history" in needed:
        assert parse_history(parse_tag(text, "history") or "") == [("user", "What was revenue?"),
                                                                   ("assistant", "$206 million [1].")]
        assert parse_tag(text, "followup") == "And RPO?"
    elif "question" in needed:
        assert parse_tag(text, "question") == "And RPO?"


def test_prompt_names_cannot_leave_the_prompts_folder() -> None:
    for name in ("../README", "answer.v1/../../x", "/etc/passwd", ""):
        with pytest.raises(BadInputError, match="no prompt"):
            load_prompt(None, name)
    assert load_prompt(None, "answer.v1").hash
    assert (SEEDS.parent / "prompts").resolve() == (PACKAGE / "prompt_templates").resolve()


def test_every_setting_has_a_description() -> None:
    """Settings are the documentation of RAG_* variables (STYLE.md 11)."""
    from pydantic import BaseModel

    from rag.settings import Settings

    missing = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            if not (info.description or "").strip():
                missing.append(prefix + name.upper())
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name.upper()}__")

    walk(Settings, "RAG_")
    assert not missing, missing
