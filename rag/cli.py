"""`rag` command line: parses arguments, calls Library, maps RagError to exit codes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rag import __version__
from rag.errors import RagError
from rag.library import Library
from rag.models import Answer, SearchFilters
from rag.process import prepare_process
from rag.sentiment.relative import RelativeScore, TrendPoint
from rag.settings import PROJECT_ROOT, Settings

app = typer.Typer(help="Cited retrieval Q&A and sentiment over financial research documents.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"rag {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """Cited retrieval Q&A and sentiment over financial research documents."""
    prepare_process()

IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index directory (default: RAG_INDEX_DIR).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
TickerOpt = Annotated[list[str] | None, typer.Option("--ticker", "-t", help="Only documents with this ticker.")]
DocTypeOpt = Annotated[list[str] | None, typer.Option("--doc-type", help="Only documents of this type.")]
DateFromOpt = Annotated[str | None, typer.Option("--from", help="Only documents dated on/after (YYYY-MM-DD).")]
DateToOpt = Annotated[str | None, typer.Option("--to", help="Only documents dated on/before (YYYY-MM-DD).")]


def _library(index: Path | None) -> Library:
    settings = Settings()
    if index is not None:
        settings = settings.model_copy(update={"index_dir": index})
    return Library(settings)


# A plain flag plus --ray-address, not `--ray [ADDRESS]`: click's optional-value options take the next token as the
# value (`--ray --json` made "--json" the address) and refuse a bare `--ray` at the end of the line.
RayOpt = Annotated[bool, typer.Option(
    "--ray", help="Run on Ray (ingest: embedding; rescore: scoring); a local cluster in this process unless "
    "--ray-address names one. Needs the `ray` extra.")]
RayAddressOpt = Annotated[str | None, typer.Option(
    help="Ray cluster to join (auto, ray://HEAD:10001); implies --ray. Default: a local cluster in this process.")]
RayWorkersOpt = Annotated[int | None, typer.Option(min=1, help="Ray actors (default: one per CPU of the cluster); "
                                                   "implies --ray.")]


def _on_ray(lib: Library, address: str | None, workers: int | None) -> Library:
    from rag.embedding.ray import RayEmbedder

    with _errors():
        embedder = RayEmbedder(lib.settings.embedding, lib.embedder, address, workers)  # type: ignore[arg-type]
    return Library(lib.settings, embedder=embedder)


def _filters(tickers: list[str] | None, doc_types: list[str] | None, date_from: str | None,
             date_to: str | None) -> SearchFilters:
    try:
        return SearchFilters(
            tickers=tickers or None, doc_types=doc_types or None,
            date_from=date.fromisoformat(date_from) if date_from else None,
            date_to=date.fromisoformat(date_to) if date_to else None,
        )
    except ValueError as exc:
        raise typer.BadParameter(f"dates must be YYYY-MM-DD: {exc}") from exc


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except RagError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from exc


def _progress(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A rich progress bar on a terminal; silent otherwise (logs, CI)."""
    if not err.is_terminal:
        return (lambda done, total: None), (lambda: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=err, transient=True)
    task = bar.add_task(label, total=None)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


@app.command()
def ingest(paths: Annotated[list[str], typer.Argument(
               help="Files or folders (.txt .md .html .pdf .jsonl), or http(s) URLs to fetch.")],
           index: IndexOpt = None, as_json: JsonOpt = False, ray: RayOpt = False,
           ray_address: RayAddressOpt = None, ray_workers: RayWorkersOpt = None) -> None:
    """Index documents; unchanged ones are skipped, changed ones replaced. A web page is reduced to its main text
    and keeps its URL as source. Commits every RAG_INGEST__COMMIT_DOCUMENTS documents, so a rerun after a crash
    resumes. Exits 1 if any file or URL failed."""
    lib = _library(index)
    if ray or ray_address or ray_workers:
        lib = _on_ray(lib, ray_address, ray_workers)
    update, stop = _progress("embedding")
    with _errors():
        try:
            report = lib.add_paths(paths, progress=update)
        finally:
            stop()
    if as_json:
        out.print_json(report.model_dump_json())
    else:
        out.print(f"added {len(report.added)}, updated {len(report.updated)}, unchanged {len(report.unchanged)}, "
                  f"failed {len(report.failed)}; {report.chunks} chunks embedded in {report.seconds:.1f}s "
                  f"-> {lib.settings.index_dir}")
    for failure in report.failed:
        err.print(f"[red]failed:[/red] {failure.error}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def search(query: str, k: Annotated[int | None, typer.Option("-k", min=1, max=100, help="Passages to return "
                                                              "(default: RAG_RETRIEVAL__K).")] = None,
           ticker: TickerOpt = None, doc_type: DocTypeOpt = None, date_from: DateFromOpt = None,
           date_to: DateToOpt = None,
           mode: Annotated[str, typer.Option(help="hybrid, dense or bm25.")] = "hybrid",
           index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Ranked passages for a query, with score, document, span and snippet."""
    if mode not in ("hybrid", "dense", "bm25"):
        raise typer.BadParameter("mode must be hybrid, dense or bm25")
    lib = _library(index)
    with _errors():
        passages = lib.search(query, k=k, filters=_filters(ticker, doc_type, date_from, date_to),
                              mode=mode)  # type: ignore[arg-type]  # checked just above
    if as_json:
        out.print_json(json.dumps([p.model_dump(mode="json") for p in passages]))
        return
    if not passages:
        out.print("no passages")
    else:
        weight = lib.settings.retrieval.bm25_weight
        meaning = {"hybrid": f"fused rank (dense + {weight:g} x BM25 reciprocal ranks; compare within this list "
                             "only)", "bm25": "BM25", "dense": "cosine similarity"}[mode]
        out.print(f"[dim]score: {meaning}[/dim]")
    for rank, p in enumerate(passages, start=1):
        snippet = " ".join(p.text.split())[:240]
        out.print(f"[bold]{rank}.[/bold] {p.score:.4f}  {p.title} [dim]({p.doc_id} {p.start}:{p.end}"
                  f"{f' p.{p.page}' if p.page else ''})[/dim]\n   {snippet}", highlight=False)


def _excerpt(quote: str, answer: str, n: int, limit: int = 200) -> str:
    """The cited passage shortened to `limit` characters, starting where the answer quotes it (an extractive
    answer's sentence marked [n], found verbatim) rather than at the passage's first words; else from its start."""
    flat = " ".join(quote.split())
    marked = [m.group(1) for m in re.finditer(r"([^\[\]]*?)\s*\[(\d+)\]", answer) if int(m.group(2)) == n]
    start = 0
    for sentence in marked:
        probe = " ".join(sentence.split())[:60]
        if len(probe) >= 20 and (found := flat.find(probe)) >= 0:
            start = found
            break
    text = flat[start:start + limit]
    return ("…" if start else "") + text + ("…" if start + limit < len(flat) else "")


def _print_answer(answer: Answer) -> None:
    out.print(answer.answer, highlight=False)
    if answer.offline_provider:
        out.print(f"[dim](extractive answer by the offline provider {answer.model}: sentences quoted from the "
                  "sources, not generated by a language model)[/dim]")
    if answer.citations:
        out.print("\n[bold]Sources[/bold]")
    for c in answer.citations:
        where = f"{c.doc_id} chars {c.start}-{c.end}" + (f", p.{c.page}" if c.page else "")
        url = f" {c.source_url}" if c.source_url else ""
        out.print(f" [{c.n}] {c.title} ({where}){url}", highlight=False)
        out.print(f"     [dim]“{_excerpt(c.quote, answer.answer, c.n)}”[/dim]", highlight=False)
    if answer.abstained and answer.passages:
        out.print("\n[bold]Closest passages[/bold] [dim](not an answer: for you to check)[/dim]")
        for p in answer.passages[:3]:
            out.print(f" - {p.title} ({p.doc_id} chars {p.start}-{p.end}): {' '.join(p.text.split())[:160]}",
                      highlight=False)
    for label, values in (("removed citations", answer.removed_citations),
                          ("ungrounded numbers", answer.ungrounded_numbers)):
        if values:
            err.print(f"[yellow]warning:[/yellow] {label}: {', '.join(map(str, values))}", highlight=False)
    for sentence in answer.uncited:
        err.print(f"[yellow]warning:[/yellow] uncited: {sentence}", highlight=False)
    for item in answer.unsupported:
        err.print(f"[yellow]warning:[/yellow] not in [{']['.join(map(str, item.citations))}]: "
                  f"{', '.join(item.missing)} ({item.sentence})", highlight=False)


@app.command()
def ask(question: str,
        k: Annotated[int | None, typer.Option("-k", min=1, max=50, help="Passages given to the model "
                                              "(default: RAG_RETRIEVAL__ANSWER_K).")] = None,
        model: Annotated[str | None, typer.Option(help="litellm model string (default: RAG_LLM__MODEL).")] = None,
        ticker: TickerOpt = None, doc_type: DocTypeOpt = None, date_from: DateFromOpt = None,
        date_to: DateToOpt = None, index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Answer a question from the indexed documents, with numbered citations."""
    lib = _library(index)
    with _errors():
        answer = lib.ask(question, k=k, model=model, filters=_filters(ticker, doc_type, date_from, date_to))
    if as_json:
        out.print_json(answer.model_dump_json())
        return
    _print_answer(answer)


@app.command("docs")
def list_docs(ticker: TickerOpt = None, index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """List indexed documents."""
    lib = _library(index)
    with _errors():
        docs = lib.list_documents(_filters(ticker, None, None, None))
    if as_json:
        out.print_json(json.dumps([d.model_dump(mode="json") for d in docs]))
        return
    for d in docs:
        day = d.date.isoformat() if d.date else "-"
        out.print(f"{d.id}  {day:10}  {','.join(d.tickers) or '-'}  {d.doc_type or '-'}  {d.n_chunks} chunks  "
                  f"{d.title}", highlight=False)


@app.command()
def delete(doc_id: str, index: IndexOpt = None) -> None:
    """Remove one document and its chunks from the index."""
    lib = _library(index)
    with _errors():
        lib.delete(doc_id)
    out.print(f"deleted {doc_id}")


FormatOpt = Annotated[str, typer.Option("--format", help="table, json, jsonl or csv.")]
ModelOpt = Annotated[str | None, typer.Option(help="litellm model (default: RAG_SENTIMENT__MODEL or the offline "
                                                   "local/finance-sentiment).")]
PromptOpt = Annotated[str | None, typer.Option(help="Prompt template, e.g. sentiment.v2 (default: settings).")]
_EXPORT_FIELDS = ["doc_id", "title", "tickers", "date", "score", "label", "confidence", "model", "offline_provider",
                  "prompt", "prompt_hash", "scorer_version", "created_at", "job_id", "evidence", "rationale"]


def _export(records: list[dict], fmt: str, target: Path | None) -> None:
    """Write records as json/jsonl/csv to a file (atomically) or stdout."""
    import csv
    import io

    if fmt == "json":
        text = json.dumps(records, indent=2) + "\n"
    elif fmt == "jsonl":
        text = "".join(json.dumps(r) + "\n" for r in records)
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=_EXPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow({**r, "tickers": ";".join(r["tickers"]),
                             "evidence": ";".join(f"{c['chunk_id']}[{c['start']}:{c['end']}]" for c in r["evidence"])})
        text = buffer.getvalue()
    if target is None:
        typer.echo(text, nl=False)
        return
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    err.print(f"wrote {len(records)} records to {target}")


@app.command()
def sentiment(ticker: Annotated[str | None, typer.Argument(help="Ticker to roll up, e.g. CALX.")] = None,
              doc: Annotated[str | None, typer.Option("--doc", help="One document instead of a ticker.")] = None,
              history: Annotated[bool, typer.Option("--history", help="Every stored score (all models and "
                                                    "prompts) instead of the current one; with a TICKER, first the "
                                                    "trend of the current model + prompt.")] = False,
              baseline: Annotated[str, typer.Option(help="Peer group of the percentile: corpus or sector.")
                                  ] = "corpus",
              model: ModelOpt = None, prompt: PromptOpt = None, fmt: FormatOpt = "table",
              output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
              index: IndexOpt = None) -> None:
    """Sentiment of a ticker (roll-up of its documents) or of one document; missing scores are computed."""
    import asyncio

    if (ticker is None) == (doc is None):
        raise typer.BadParameter("give a TICKER or --doc ID (one of them)")
    if fmt not in ("table", "json", "jsonl", "csv"):
        raise typer.BadParameter("--format must be table, json, jsonl or csv")
    if baseline not in ("corpus", "sector"):
        raise typer.BadParameter("--baseline must be corpus or sector")
    lib = _library(index)
    with _errors():
        if history:
            records = lib.sentiment_history(doc_id=doc, ticker=ticker)
            if ticker is not None and fmt == "table":
                _print_trend(lib.sentiment_trend(ticker, model, prompt))
        elif doc is not None:
            records = [asyncio.run(lib.adocument_sentiment(doc, model, prompt))]
        else:
            if fmt in ("csv", "jsonl"):
                raise typer.BadParameter("csv/jsonl list stored scores: add --history (or use --format json)")
            rolled = asyncio.run(lib.aticker_sentiment(ticker or "", model, prompt, baseline))  # type: ignore[arg-type]  # checked above
            if fmt == "json":
                _export([rolled.model_dump(mode="json")], fmt, output)
                return
            out.print(f"[bold]{rolled.ticker}[/bold]  {rolled.score:+.2f}  {rolled.label}  "
                      f"(confidence {rolled.confidence:.2f}; {rolled.model}, {rolled.prompt} {rolled.prompt_hash})",
                      highlight=False)
            for c in rolled.documents:
                out.print(f"  {c.score:+.2f} {c.label:20} weight {c.weight:.2f}  {c.doc_id}  {c.date or '-'}  "
                          f"{c.title}", highlight=False)
            if rolled.relative is not None:
                _print_relative(rolled.relative)
            return
    if fmt != "table":
        _export([r.model_dump(mode="json") for r in records], fmt, output)
        return
    if not records:
        out.print("no stored scores; run `rag rescore` or `rag sentiment TICKER`")
    for r in records:
        out.print(f"{r.created_at}  {r.score:+.2f} {r.label:20} conf {r.confidence:.2f}  {r.doc_id}  {r.model} "
                  f"{r.prompt} {r.prompt_hash}", highlight=False)
        if not history:
            out.print(f"  {r.rationale}", highlight=False)
            for c in r.evidence:
                out.print(f"  [{c.n}] {c.doc_id} chars {c.start}-{c.end}: {' '.join(c.quote.split())[:160]}",
                          highlight=False)
    if records and records[-1].offline_provider and not history:
        out.print("[dim](scored by the offline classifier local/finance-sentiment, trained on Financial PhraseBank "
                  "(non-commercial); not a language model)[/dim]")


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _print_relative(r: RelativeScore) -> None:
    """The newest document against the ticker's own history and its peers."""
    own = (f"{_signed(r.change_vs_previous)} vs its previous document ({r.previous_doc_id}, {r.previous_score:+.2f}); "
           f"{_signed(r.vs_own_mean)} vs the mean of its {r.own_documents} earlier"
           if r.previous_score is not None else "no earlier document of this ticker")
    peers = f"percentile {r.percentile:.0f} of {r.peers} documents ({r.peer_group})" if r.percentile is not None else ""
    out.print(f"newest {r.doc_id} {r.score:+.2f}: {own}; {peers}", highlight=False)


def _print_trend(points: list[TrendPoint]) -> None:
    if not points:
        out.print("no trend: no document of this ticker is scored by the current model + prompt")
        return
    out.print("trend (current model + prompt, oldest first):")
    for p in points:
        pct = f"p{p.percentile:.0f}" if p.percentile is not None else "-"
        out.print(f"  {p.date or p.period or '-':12} {p.score:+.2f} ({_signed(p.change)}) {pct:>4}  {p.label:20} "
                  f"{p.doc_id}  {p.title}", highlight=False)


@app.command()
def rescore(model: ModelOpt = None, prompt: PromptOpt = None, ticker: TickerOpt = None, doc_type: DocTypeOpt = None,
            concurrency: Annotated[int | None, typer.Option(min=1, max=256, help="Documents in flight.")] = None,
            rps: Annotated[float | None, typer.Option("--rps", min=0.001, help="Max model calls per second.")] = None,
            index: IndexOpt = None, as_json: JsonOpt = False, ray: RayOpt = False,
            ray_address: RayAddressOpt = None) -> None:
    """Score every (matching) document with a model + prompt. Resumable: completed scores are journaled and
    reused, so a rerun (after a crash, or with nothing changed) only does what is missing. Exits 1 on failures."""
    import asyncio
    import time

    from rag.sentiment.batch import RescoreRequest

    lib = _library(index)
    request = RescoreRequest(model=model, prompt=prompt, filters=_filters(ticker, doc_type, None, None),
                             concurrency=concurrency, requests_per_second=rps)
    update, stop = _progress("scoring")
    last_log = [0.0]

    def progress(job) -> None:  # noqa: ANN001  # RescoreJob; imported lazily with the library
        update(job.processed, job.total)
        if not err.is_terminal and (time.monotonic() - last_log[0] > 5 or job.processed == job.total):
            last_log[0] = time.monotonic()
            err.print(f"{job.processed}/{job.total} (scored {job.scored}, cached {job.cached}, failed {job.failed})")

    with _errors():
        run = lib.prepare_rescore(request)
        if ray or ray_address:
            from rag.distributed import RayScoring

            run.scorer.executor = RayScoring(lib.settings.embedding, ray_address)
        err.print(f"{run.job.id}: {run.job.total} documents, model {run.job.model}, prompt {run.job.prompt} "
                  f"{run.job.prompt_hash}", highlight=False)
        try:
            job = asyncio.run(run.run(progress))
        finally:
            stop()
    if as_json:
        out.print_json(job.model_dump_json())
    else:
        out.print(f"{job.id} {job.status}: {job.scored} scored, {job.cached} cached, {job.failed} failed "
                  f"of {job.total}", highlight=False)
    for failure in lib.job(job.id).failures:
        err.print(f"[red]failed:[/red] {failure['doc_id']}: {failure['error']}", highlight=False)
    if job.failed:
        raise typer.Exit(1)


@app.command("eval")
def run_eval(suite: Annotated[str, typer.Option(help="A suite (seeds, earnings, phrasebank, fiqa, "
                                                    "earnings-sentiment, financebench) or all.")] = "all",
             model: Annotated[str | None, typer.Option(help="litellm model string (default: settings).")] = None,
             report_dir: Annotated[Path, typer.Option("--out", help="Folder for the reports.")] = Path("report"),
             thresholds: Annotated[Path, typer.Option(help="Thresholds YAML.")] = (
                 PROJECT_ROOT / "eval" / "thresholds.yaml"),
             readme: Annotated[Path | None, typer.Option(help="Also write the results table into this README "
                                                          "(between its eval markers).")] = None,
             index: IndexOpt = None,
             limit: Annotated[int | None, typer.Option(
                 help="Run only this many gold items per suite, spread evenly over the gold file (the same ones "
                 "every run): for models too slow for a whole suite. Recorded in the report.")] = None,
             split: Annotated[str | None, typer.Option(
                 help="earnings and financebench only: one split, dev or test (the gate reads test).")] = None) -> None:
    """Run eval suites: OUT/SUITE/report.{json,md} per suite, OUT/report.{json,md} over all. Exits 1 when any
    metric is outside its bound in the thresholds file."""
    from rag.evaluation.gate import run_gate

    def show(name: str, metric: str, value: object) -> None:
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        typer.echo(f"  {name:12} {metric:34} {text}")

    with _errors():
        failures = run_gate(suite, _library(None).settings, model, report_dir, thresholds, readme, index,
                            started=lambda name: err.print(f"[bold]{name}[/bold] ..."), metric=show,
                            limit=limit, split=split)
    typer.echo(f"report: {report_dir / 'report.md'}")
    for failure in failures:
        err.print(f"[red]below threshold:[/red] {failure}", highlight=False)
    if failures:
        raise typer.Exit(1)


index_app = typer.Typer(help="Verify, repair, compact and migrate the on-disk index.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("check")
def index_check(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Verify every segment of every kept generation (each file has its recorded size, SQLite, FAISS and the BM25
    postings open, and their chunk counts and ids agree). Exits 6 when the current generation or the manifest is
    damaged."""
    lib = _library(index)
    with _errors():
        report = lib.check_index()
    if as_json:
        out.print_json(report.model_dump_json())
    else:
        from rag.index_check import summary

        out.print(summary(report), highlight=False)
    if not report.ok:
        err.print("[red]damaged:[/red] run `rag index repair` to fall back to the newest intact generation",
                  highlight=False)
        raise typer.Exit(6)


@index_app.command("repair")
def index_repair(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Point the index at the newest intact generation when the current one is damaged, and say which documents
    that loses (re-ingest them). Damaged segments are kept as .damaged-seg-N-TIME."""
    lib = _library(index)
    with _errors():
        report = lib.repair_index()
    if as_json:
        out.print_json(report.model_dump_json())
    else:
        out.print(report.message, highlight=False)


@index_app.command("compact")
def index_compact(index: IndexOpt = None) -> None:
    """Merge every segment into one and drop deleted documents' tombstones (writes do this for the newest small
    segments on their own once there are more than RAG_INDEX__MAX_SEGMENTS)."""
    lib = _library(index)
    with _errors():
        before = lib.stats()["segments"] if lib.exists() else 0
        generation = lib.compact_index()
    out.print(f"{before} segment(s) -> {lib.stats()['segments']}; generation {generation}", highlight=False)


@index_app.command("migrate")
def index_migrate(index: IndexOpt = None) -> None:
    """Convert an index written by an older rag (format 2: a whole copy per generation) to segments, in place.
    Needs no model: vectors are kept, the BM25 postings are rebuilt from the stored chunk texts."""
    lib = _library(index)
    with _errors():
        generation = lib.migrate_index()
    out.print(f"index is format 3 (segments), generation {generation}", highlight=False)


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="Bind address (default RAG_SERVER__HOST).")] = None,
          port: Annotated[int | None, typer.Option(help="Port (default RAG_SERVER__PORT).")] = None,
          workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
          index: IndexOpt = None) -> None:
    """Run the HTTP service (FastAPI + uvicorn)."""
    import os

    import uvicorn

    settings = Settings()
    if index is not None:
        # Worker processes build their own Settings from the environment; pass the choice that way.
        os.environ["RAG_INDEX_DIR"] = str(index)
    uvicorn.run("rag.api.app:create_app", factory=True, host=host or settings.server.host,
                port=port or settings.server.port, workers=workers, log_level="info")


# ---- reading documents and conversations (#15) --------------------------------------------------------------------


def _parse_span(span: str) -> tuple[int, int]:
    start, sep, end = span.partition(":")
    if not sep or not start.strip().isdigit() or not end.strip().isdigit():
        raise typer.BadParameter("--span takes START:END character offsets, e.g. 120:480")
    return int(start), int(end)


@app.command()
def show(doc_id: Annotated[str, typer.Argument(help="Document id (see `rag docs`).")],
         span: Annotated[str | None, typer.Option("--span", help="Only characters START:END, as cited "
                                                  "(`rag ask` prints each citation's span).")] = None,
         index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Print a document, or the exact span a citation points at, with its title, date and source."""
    lib = _library(index)
    with _errors():
        doc = lib.get_document(doc_id)
    start, end = _parse_span(span) if span else (0, len(doc.text))
    if not 0 <= start < end <= len(doc.text):
        raise typer.BadParameter(f"--span {start}:{end}: need 0 <= START < END <= {len(doc.text)} (the length)")
    page = doc.page_at(start)
    if as_json:
        out.print_json(json.dumps({"doc_id": doc.id, "title": doc.title, "date": doc.date and doc.date.isoformat(),
                                   "tickers": doc.tickers, "doc_type": doc.doc_type, "source_url": doc.source_url,
                                   "start": start, "end": end, "page": page, "text": doc.text[start:end]}))
        return
    out.print(f"[bold]{doc.title or doc.id}[/bold]", highlight=False)
    details = [doc.id, doc.date.isoformat() if doc.date else "no date", ",".join(doc.tickers) or None, doc.doc_type,
               f"chars {start}-{end} of {len(doc.text)}" if span else f"{len(doc.text)} chars",
               f"p.{page}" if span and page else None]
    out.print(f"[dim]{'  '.join(d for d in details if d)}[/dim]", highlight=False)
    if doc.source_url:
        out.print(f"[dim]source: {doc.source_url}[/dim]", highlight=False)
    out.print()
    # Plain write, not rich: the text is the document's own, printed byte for byte (no markup, no wrapping).
    typer.echo(doc.text[start:end])


@app.command()
def chat(k: Annotated[int | None, typer.Option("-k", min=1, max=50, help="Passages given to the model "
                                              "(default: RAG_RETRIEVAL__ANSWER_K).")] = None,
         model: Annotated[str | None, typer.Option(help="litellm model string (default: RAG_LLM__MODEL).")] = None,
         ticker: TickerOpt = None, doc_type: DocTypeOpt = None, date_from: DateFromOpt = None,
         date_to: DateToOpt = None, index: IndexOpt = None) -> None:
    """Ask questions one per line, with follow-ups: each question is answered with the conversation so far (so
    "and the year before?" works). Ends at a blank line or end of input (Ctrl-D); pipe lines in to script it."""
    import sys

    from rag.errors import BadInputError, ProviderError
    from rag.models import Turn

    lib = _library(index)
    filters = _filters(ticker, doc_type, date_from, date_to)
    history: list[Turn] = []
    interactive = sys.stdin.isatty()
    if interactive:
        err.print("[dim]Ask a question; a blank line or Ctrl-D ends.[/dim]")
    while True:
        if interactive:
            err.print("[bold]>[/bold] ", end="")
        line = sys.stdin.readline()
        question = line.strip()
        if not question:
            break
        if not interactive:
            out.print(f"[bold]> {question}[/bold]", highlight=False)
        try:
            answer = lib.ask(question, history, k=k, model=model, filters=filters)
        except (BadInputError, ProviderError) as exc:
            # One bad question (too long) or a model failure should not end the conversation.
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            continue
        except RagError as exc:  # no index, another embedding model: no later question can do better
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(exc.exit_code) from exc
        _print_answer(answer)
        out.print()
        history += [Turn(role="user", content=question), Turn(role="assistant", content=answer.answer)]
