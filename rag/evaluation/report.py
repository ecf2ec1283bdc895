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


def load_thresholds(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Per suite: metric -> {min: x} and/or {max: y}."""
    return yaml.safe_load(Path(path).read_text("utf-8")) or {}


def _metric_rows(report: dict[str, Any],
                 thresholds: dict[str, dict[str, float]]) -> list[tuple[str, str, str, str]]:
    """(metric, value, bound, model that produced it) per metric."""
    rows = []
    by_metric = report.get("metric_models", {})
    for name, value in report["metrics"].items():
        bound = thresholds.get(name, {})
        limit = f">= {bound['min']}" if "min" in bound else (f"<= {bound['max']}" if "max" in bound else "")
        rows.append((name, f"{value:.3f}" if isinstance(value, float) else str(value), limit,
                     by_metric.get(name, report.get("model", ""))))
    return rows


def markdown(report: dict[str, Any], thresholds: dict[str, dict[str, float]], failures: list[str]) -> str:
    models = ", ".join(f"{role} {name}" for role, name in report.get("models", {"model": report["model"]}).items())
    lines = [f"# Eval report: {report['suite']} ({report['questions']} items; {models})", "",
             "| metric | value | threshold | model |", "|---|---|---|---|"]
    if report.get("subset"):
        subset = report["subset"]
        which = ", ".join(f"{k} {v}" for k, v in (("split", subset["split"]), ("limit", subset["limit"])) if v)
        lines[1:1] = ["", f"**Subset**: {subset['items']} of {subset['of']} items ({which}; spread evenly over the "
                          "gold file), not the whole suite.", ""]
    lines += [f"| {name} | {value} | {limit} | {model} |"
              for name, value, limit, model in _metric_rows(report, thresholds)]
    if report.get("retrieval"):
        columns = list(next(iter(report["retrieval"].values())))
        lines += ["", "## Retrieval baselines", "", "| mode | " + " | ".join(columns) + " |",
                  "|---" * (len(columns) + 1) + "|"]
        for mode, values in report["retrieval"].items():
            lines.append(f"| {mode} | " + " | ".join(f"{v:.3f}" for v in values.values()) + " |")
    failed = [r for r in report["results"] if not r["ok"]]
    lines += ["", f"## Failed items ({len(failed)}{', first 50 shown' if len(failed) > 50 else ''})", ""]
    for r in failed[:50]:
        expected = r.get("expected") or ("abstain" if r["should_abstain"] else ", ".join(r.get("facts", {})))
        got = f"error: {r['error'][:400]}" if r.get("error") else f"answer: {r['answer'][:400]}"
        lines.append(f"- **{r['id']}** {r['question'][:300]}\n  - expected: {expected}\n"
                     f"  - {got}\n  - citations: {r.get('citations', [])}")
    lines += ["", "## Gate", "", "PASS" if not failures else "FAIL:\n" + "\n".join(f"- {f}" for f in failures)]
    return "\n".join(lines) + "\n"


def summary_table(reports: list[dict[str, Any]], thresholds: dict[str, dict[str, dict[str, float]]]) -> str:
    """One Markdown table over every suite (README and report.md)."""
    lines = ["| suite | metric | value | gate | model |", "|---|---|---|---|---|"]
    for report in reports:
        for name, value, limit, model in _metric_rows(report, thresholds.get(report["suite"], {})):
            lines.append(f"| {report['suite']} | {name} | {value} | {limit} | {model} |")
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, table: str) -> None:
    """Replace the text between the eval markers of the README."""
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- eval:start -->", "<!-- eval:end -->"
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(f"{head}{start}\n{table}{end}{tail}", encoding="utf-8")
    os.replace(tmp, readme)


def write(out_dir: Path, report: dict[str, Any], md: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("report.json", json.dumps(report, indent=2)), ("report.md", md)):
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out_dir / name)
