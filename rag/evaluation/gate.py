"""`rag eval`: run suites, write their reports and the summary, and gate on the thresholds file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.evaluation import report as reporting
from rag.evaluation.runner import SUITES, check_subset, run_suite
from rag.settings import Settings


def run_gate(suite: str, settings: Settings, model: str | None, report_dir: Path, thresholds: Path,
             readme: Path | None, index: Path | None, started: Callable[[str], None] = lambda name: None,
             metric: Callable[[str, str, object], None] = lambda name, metric, value: None,
             limit: int | None = None, split: str | None = None) -> list[str]:
    """Runs `suite` (or all), writes REPORT_DIR/SUITE/report.{json,md} and REPORT_DIR/report.{json,md}, and
    returns the threshold failures (empty when the gate passes). `limit`/`split`: a subset (run_suite)."""
    names = list(SUITES) if suite == "all" else [suite]
    for name in names:  # a bad subset option fails before any suite runs, not after the first
        check_subset(name, limit, split)
    bounds = reporting.load_thresholds(thresholds)
    reports, failures = [], []
    for name in names:
        started(name)
        result = run_suite(name, settings, model=model, index=index, limit=limit, split=split)
        suite_failures = reporting.check_thresholds(result["metrics"], bounds.get(name, {}))
        reporting.write(report_dir / name, result, reporting.markdown(result, bounds.get(name, {}), suite_failures))
        reports.append(result)
        failures += [f"{name}: {f}" for f in suite_failures]
        for key, value in result["metrics"].items():
            metric(name, key, value)
    table = reporting.summary_table(reports, bounds)
    gate = "PASS" if not failures else "FAIL:\n" + "\n".join(f"- {f}" for f in failures)
    reporting.write(report_dir, {"suites": {r["suite"]: {"model": r["model"], "models": r.get("models", {}),
                                                         "metric_models": r.get("metric_models", {}),
                                                         "metrics": r["metrics"]}
                                            for r in reports}, "failures": failures},
                    f"# Eval summary\n\n{table}\n## Gate\n\n{gate}\n")
    if readme is not None:
        reporting.update_readme(readme, table)
    return failures
