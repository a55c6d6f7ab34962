"""Commands of evaluation: evaluate, learn-mix, import-smart, the stored runs and layer diagnostics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from layerwise import render
from layerwise.cli.app import CollectionArg, DbOpt, DeviceOpt, DtypeOpt, HomeOpt, JsonOpt, app, handled, open_library, progress


@app.command()
@handled
def evaluate(
    collection: CollectionArg,
    queries: Annotated[Path, typer.Option(help="BEIR queries.jsonl (or id<TAB>text).")],
    qrels: Annotated[Path, typer.Option(help="BEIR qrels .tsv or TREC qrels.")],
    view: Annotated[Optional[list[str]], typer.Option("--view", "-v", help="View spec, repeatable (see search). Default: every layer, standard mixes, stored views, bm25, rrf(all), rrf(bm25 | -1).")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="NAME@K, repeatable (ndcg, recall, mrr, map, p); the first is tested for significance.")] = None,
    ignore_identical_ids: Annotated[bool, typer.Option("--ignore-identical-ids", help="Drop results whose document id equals the query id.")] = False,
    baseline: Annotated[str, typer.Option(help="The view every other view is tested against.")] = "-1",
    correction: Annotated[str, typer.Option(help="Multiple-comparison correction of the p-values: holm, bh or none.")] = "holm",
    alpha: Annotated[float, typer.Option(help="Significance level after correction.")] = 0.05,
    trials: Annotated[int, typer.Option(help="Randomization-test trials (at least 1).")] = 10_000,
    bootstrap: Annotated[int, typer.Option(help="Paired bootstrap resamples for the 95% CIs.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the randomization test and the bootstrap.")] = 0,
    strict: Annotated[bool, typer.Option("--strict", help="Fail (exit 2) when qrels name queries or documents that are missing.")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="Write a PNG of the first metric by layer, with 95% CIs.")] = None,
    figures: Annotated[Optional[Path], typer.Option(help="Write every figure into this folder: layers, heatmap, per-query scatter.")] = None,
    scatter: Annotated[Optional[list[str]], typer.Option(help="View to plot per query against the baseline in --figures, repeatable (default: the best-scoring other view).")] = None,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="Write the table as CSV.")] = None,
    markdown: Annotated[Optional[Path], typer.Option(help="Write the table as Markdown.")] = None,
    runs: Annotated[Optional[Path], typer.Option(help="Write a TREC run file per view into this folder.")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare retrieval quality of layers, mixes, fusion and BM25 on labelled queries."""
    from layerwise.evaluation import datasets
    from layerwise.evaluation.evaluation import DEFAULT_METRICS
    from layerwise.evaluation.report import check_outputs, write_outputs

    check_outputs(plot=plot, csv=csv_out, markdown_path=markdown, figures=figures)
    kb = open_library(db, home, device, dtype).open(collection)
    result = kb.evaluate(datasets.read_queries(queries), datasets.read_qrels(qrels), view, metrics=metric or DEFAULT_METRICS,
                         baseline=baseline, correction=correction, alpha=alpha, ignore_identical_ids=ignore_identical_ids,
                         trials=trials, bootstrap=bootstrap, seed=seed, strict=strict, progress=progress(), notify=render.note)
    written = write_outputs(result, plot=plot, csv=csv_out, markdown_path=markdown, runs=runs, figures=figures, scatter=scatter)
    render.evaluation(result, written, as_json)


@app.command("import-smart")
@handled
def import_smart(
    documents: Annotated[Path, typer.Argument(help="SMART documents file (e.g. cran.all.1400).")],
    queries: Annotated[Path, typer.Argument(help="SMART queries file (e.g. cran.qry).")],
    qrels: Annotated[Path, typer.Argument(help="Relevance file (e.g. cranqrel).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="BEIR folder to write.")],
    query_ids: Annotated[Literal["position", "field"], typer.Option(help="position: number queries 1..n in file order (Cranfield's qrels); field: keep .I.")] = "position",
    grades: Annotated[Literal["as-is", "cleverdon"], typer.Option(help="as-is, or cleverdon (1 best .. 4, -1/5 none -> 4..1, 0).")] = "as-is",
    as_json: JsonOpt = False,
) -> None:
    """Convert a SMART test collection (Cranfield, CISI, MED, CACM) to BEIR format."""
    from layerwise.evaluation.smart import convert

    summary = convert(documents, queries, qrels, output, query_ids, grades)
    render.smart_import(summary, as_json)


@app.command("learn-mix")
@handled
def learn_mix(
    collection: CollectionArg,
    queries: Annotated[Path, typer.Option(help="BEIR queries.jsonl (or id<TAB>text).")],
    qrels: Annotated[Path, typer.Option(help="Training qrels (e.g. qrels/train.tsv).")],
    name: Annotated[str, typer.Option(help="Name of the stored view.")] = "learned",
    eval_qrels: Annotated[Optional[Path], typer.Option(help="Held-out qrels to report the learnt view against the last layer.")] = None,
    separate: Annotated[bool, typer.Option("--separate", help="Learn separate weights for queries and documents.")] = False,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 200,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 0.05,
    temperature: Annotated[float, typer.Option(help="Softmax temperature of the contrastive loss.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same weights.")] = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn layer weights from training qrels over the stored vectors; store them as a view."""
    from layerwise.evaluation import datasets

    kb = open_library(db, home, device, dtype).open(collection)
    texts = datasets.read_queries(queries)
    learned = kb.learn_mix(texts, datasets.read_qrels(qrels), name, separate=separate, steps=steps, lr=lr,
                           temperature=temperature, seed=seed, progress=progress())
    held_out = kb.evaluate(texts, datasets.read_qrels(eval_qrels), [name, "-1"], progress=progress()) if eval_qrels else None
    render.learned_mix(name, learned, held_out, as_json)


# -- evaluation runs and layer diagnostics (helper "eval") ----------------------------------------
runs_app = typer.Typer(help="Stored evaluation runs: list, show, diff, export.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
RunArg = Annotated[int, typer.Argument(help="Evaluation run id (see `layerwise runs list`).")]


@runs_app.command("list")
@handled
def runs_list(
    collection: Annotated[Optional[str], typer.Argument(help="Only this collection's runs.")] = None,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every stored evaluation run, newest first."""
    render.runs_list(open_library(db, home).runs(collection), as_json)


@runs_app.command("show")
@handled
def runs_show(
    run_id: RunArg,
    figures: Annotated[Optional[Path], typer.Option(help="Also write the run's figures into this folder.")] = None,
    scatter: Annotated[Optional[list[str]], typer.Option(help="View to plot per query against the baseline, repeatable.")] = None,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One stored run's table (with per-query metrics in --json), and its figures on request."""
    from layerwise.evaluation.report import check_folder, write_outputs

    check_folder(figures, "--figures")
    run = open_library(db, home).run(run_id)
    written = write_outputs(run.evaluation, figures=figures, scatter=scatter)
    render.evaluation(run.evaluation, written, as_json, run_id=run.run_id)


@runs_app.command("diff")
@handled
def runs_diff(
    run_a: RunArg,
    run_b: RunArg,
    metric: Annotated[Optional[str], typer.Option("--metric", "-m", help="Metric to compare (default: run A's first).")] = None,
    correction: Annotated[str, typer.Option(help="holm, bh or none across the shared views.")] = "holm",
    trials: Annotated[int, typer.Option(help="Randomization-test trials.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the randomization test.")] = 0,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Two runs side by side: each shared view's means and a paired test (B against A) over their common queries."""
    diff = open_library(db, home).diff_runs(run_a, run_b, metric, trials=trials, seed=seed, correction=correction)
    render.run_diff(diff, as_json)


@runs_app.command("export")
@handled
def runs_export(
    run_id: RunArg,
    output: Annotated[Path, typer.Option("--output", "-o", help=".json (everything, per-query metrics too), .csv or .md.")],
    db: DbOpt = None,
    home: HomeOpt = None,
) -> None:
    """Write a stored run to a file."""
    from layerwise.evaluation.report import export_run

    typer.echo(f"wrote {export_run(open_library(db, home).run(run_id), output)}")


@app.command()
@handled
def layers(
    collection: CollectionArg,
    plot: Annotated[Optional[Path], typer.Option(help="Write the CKA heatmap and the anisotropy/norm curves as a PNG.")] = None,
    sample: Annotated[int, typer.Option(help="Passages (random, seeded) for the CKA matrix; norms and anisotropy use all.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the CKA sample.")] = 0,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per hidden state: norm statistics, anisotropy and linear CKA with every other state, from stored vectors."""
    from layerwise.evaluation.diagnostics import plot_diagnostics
    from layerwise.evaluation.report import check_file

    check_file(plot, ".png", "--plot")
    found = open_library(db, home).layer_diagnostics(collection, sample=sample, seed=seed)
    written = [str(plot_diagnostics(found, plot))] if plot else []
    render.diagnostics(found, written, as_json)
