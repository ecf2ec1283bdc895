"""Runs one named suite end to end on a fresh temporary index (or a given one) and returns its report."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from rag.errors import BadInputError
from rag.evaluation import earnings, financebench, phrasebank, seeds
from rag.evaluation.gold import load_suite
from rag.library import Library
from rag.settings import PROJECT_ROOT, Settings

SUITES = ("seeds", "earnings", "phrasebank", "financebench")
GOLD_DIR = PROJECT_ROOT / "eval" / "gold"


def run_suite(name: str, settings: Settings, model: str | None = None, index: Path | None = None) -> dict[str, Any]:
    """Without `index`, the suite's documents are ingested into a temporary index first."""
    if name not in SUITES:
        raise BadInputError(f"unknown suite {name!r}; available: {', '.join(SUITES)}")
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(settings.model_copy(update={"index_dir": index or Path(tmp) / "index"}))
        if name == "seeds":
            gold = load_suite(GOLD_DIR / "seeds.yaml")
            if index is None:
                ingested = lib.add_paths([PROJECT_ROOT / gold.documents])
                if not ingested.ok:
                    raise BadInputError(f"seed documents failed to load: {ingested.failed}")
            result = seeds.run(lib, gold, model=model)
        elif name == "earnings":
            gold = earnings.load()
            if index is None:
                ingested = lib.add_paths([PROJECT_ROOT / p for p in (gold.documents, gold.extra_documents) if p])
                if not ingested.ok:
                    raise BadInputError(f"earnings documents failed to load: {ingested.failed}")
            result = earnings.run(lib, gold, model=model)
        elif name == "phrasebank":
            result = phrasebank.run(lib, model=model)
        else:
            documents, questions = financebench.load()
            if index is None:
                lib.add_documents(documents)
            result = financebench.run(lib, questions, model=model)
    result.setdefault("model", model or settings.llm.model)
    return result
