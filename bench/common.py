"""Helpers shared by the benchmarks: corpus loading, result tables and JSON output."""

from __future__ import annotations

import json
import os
import platform
import resource
from datetime import UTC, datetime
from pathlib import Path

from rag.models import Document
from rag.process import prepare_process
from rag.settings import PROJECT_ROOT

# Benchmarks are entry points, like the CLI: they prepare their process themselves.
prepare_process()

TRANSCRIPTS = PROJECT_ROOT.parent / "shared" / "data" / "earnings21_22_transcripts" / "transcripts_plaintext.jsonl"
RESULTS = PROJECT_ROOT / "bench" / "results"


def load_transcripts(limit: int, path: Path = TRANSCRIPTS) -> list[Document]:
    """Earnings-call transcripts (CC BY-SA 4.0, Rev.com Earnings-21/22) as Documents."""
    if not path.exists():
        raise SystemExit(f"corpus not found: {path} (pass --corpus)")
    docs = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            docs.append(Document(id=f"call-{record['file_id']}", text=record["text"],
                                 title=record.get("company") or record.get("ticker") or record["file_id"],
                                 tickers=[record["ticker"]] if record.get("ticker") else []))
            if len(docs) >= limit:
                break
    return docs


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "at": datetime.now(UTC).isoformat(timespec="seconds"),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, **payload}
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    return out


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(f"{r.get(c, '')}") for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(f"{r.get(c, '')}".ljust(widths[c]) for c in columns))


def report(name: str, rows: list[dict], columns: list[str], **payload: object) -> None:
    """The closing table of a run, and its JSON under bench/results/NAME.json."""
    print()
    print_table(rows, columns)
    print(f"\nwrote {write_result(name, {**payload, 'rows': rows})}")
