"""report.json + report.md, and the threshold gate."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml


def check_thresholds(metrics: dict[str, float], thresholds: dict[str, dict[str, float]]) -> list[str]:
    """Failures as readable lines; a metric named in thresholds but missing from the run fails too."""
    failures = []
    for name, bound in thresholds.items():
        value = metrics.get(name)
        if value is None:
            failures.append(f"{name}: not measured")
        elif "min" in bound and value < bound["min"]:
            failures.append(f"{name}: {value:.3f} < min {bound['min']}")
        elif "max" in bound and value > bound["max"]:
            failures.append(f"{name}: {value:.3f} > max {bound['max']}")
    return failures


def load_thresholds(path: Path, suite: str) -> dict[str, dict[str, float]]:
    data = yaml.safe_load(Path(path).read_text("utf-8")) or {}
    return data.get(suite, {})


def markdown(report: dict[str, Any], thresholds: dict[str, dict[str, float]], failures: list[str]) -> str:
    lines = [f"# Eval report: {report['suite']} ({report['questions']} questions, model {report['model']})", "",
             "| metric | value | threshold |", "|---|---|---|"]
    for name, value in report["metrics"].items():
        bound = thresholds.get(name, {})
        limit = f">= {bound['min']}" if "min" in bound else (f"<= {bound['max']}" if "max" in bound else "")
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"| {name} | {shown} | {limit} |")
    lines += ["", "## Retrieval baselines", "", "| mode | " + " | ".join(next(iter(report["retrieval"].values())))
              + " |", "|---|---|---|"]
    for mode, values in report["retrieval"].items():
        lines.append(f"| {mode} | " + " | ".join(f"{v:.3f}" for v in values.values()) + " |")
    failed = [r for r in report["results"] if not r["ok"]]
    lines += ["", f"## Failed questions ({len(failed)})", ""]
    for r in failed:
        lines.append(f"- **{r['id']}** {r['question']}\n  - expected: "
                     f"{'abstain' if r['should_abstain'] else ', '.join(r.get('facts', {}))}\n"
                     f"  - answer: {r['answer'][:400]}\n  - citations: {r.get('citations', [])}")
    lines += ["", "## Gate", "", "PASS" if not failures else "FAIL:\n" + "\n".join(f"- {f}" for f in failures)]
    return "\n".join(lines) + "\n"


def write(out_dir: Path, report: dict[str, Any], md: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("report.json", json.dumps(report, indent=2)), ("report.md", md)):
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out_dir / name)
