"""The typer app: parses arguments, calls the public API (layerwise.api), prints through render.py.

Errors become one line and an exit code at one place (``handled``): usage errors
exit 2, a damaged or busy store 1. ``--json`` output follows docs/json.md.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar

import click
import typer

from layerwise import render
from layerwise.errors import LayerwiseError, UsageError
from layerwise.indexer.inputs import TableColumns
from layerwise.settings import DEVICES, DTYPES, POOLINGS, QUANTIZATIONS, EncoderSettings

app = typer.Typer(
    help="Semantic search that keeps every layer of a BERT-family encoder.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
F = TypeVar("F", bound=Callable[..., Any])
INDEX_TYPES = ("flat", "hnsw", "ivf", "auto")

DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL or SQLite path (default: $LAYERWISE_DB, else HOME/layerwise.db).")]
HomeOpt = Annotated[Optional[Path], typer.Option("--home", help="Data folder (default: $LAYERWISE_HOME, else ~/.local/share/layerwise).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (docs/json.md).")]
CollectionArg = Annotated[str, typer.Argument(help="Collection name.")]
QueryArg = Annotated[str, typer.Argument(help="What to look for.")]
KOpt = Annotated[int, typer.Option("-k", help="Documents per view (1..1000).")]
ViewOpt = Annotated[Optional[str], typer.Option("--view", "-v", help="View spec: -1, all, -4:, mean(-4:), bm25, rrf(bm25 | -1), fuse(bm25:0.3 | -1:0.7) or a stored name (default: the collection's default view).")]
LayerAlias = Annotated[Optional[str], typer.Option("--layer", "-l", hidden=True)]
DeviceOpt = Annotated[Literal[DEVICES], typer.Option("--device", help="Where the encoder runs.")]
DtypeOpt = Annotated[Literal[DTYPES], typer.Option("--dtype", help="auto: fp32 on CPU, bf16/fp16 on CUDA; bf16 on a CPU with AMX is ~3x faster.")]
QuantOpt = Annotated[Optional[Literal[QUANTIZATIONS]], typer.Option("--quantize", help="int8: dynamic int8 Linear layers on the CPU (opt-in; changes vectors).")]
PoolingOpt = Annotated[Optional[Literal[POOLINGS]], typer.Option("--pooling", help="How tokens pool into one vector, mask-aware (default: the collection's, else mean).")]
IndexOpt = Annotated[Optional[Literal[INDEX_TYPES]], typer.Option("--index", help="flat, hnsw, ivf or auto (flat below 50k passages, IVF above).")]


def _version(value: bool) -> None:
    if value:
        from layerwise import __version__

        typer.echo(f"layerwise {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Semantic search that keeps every layer of a BERT-family encoder."""


def handled(func: F) -> F:
    """Turn layerwise errors into one clear line and their exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LayerwiseError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted: committed batches are kept; run the same command again to resume", 130)
        except (typer.Exit, typer.Abort, SystemExit, click.exceptions.ClickException):
            raise
        except OSError as exc:  # disk full, read-only folder, missing permission
            _fail(render.os_error(exc), 1)
        except Exception as exc:  # an internal failure: one line, the traceback on demand
            if os.environ.get("LAYERWISE_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (set LAYERWISE_DEBUG=1 for the traceback)", 1)

    return wrapper  # type: ignore[return-value]


def _fail(message: str, code: int) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _progress() -> bool:
    """Progress bars go to stderr, and only to a terminal."""
    return sys.stderr.isatty()


def _library(db: str | None, home: Path | None, device: str = "auto", dtype: str = "auto"):  # noqa: ANN202
    from layerwise.api import Library

    return Library(home, db, device=device, dtype=dtype)


def _pick(view: str | None, alias: str | None) -> str | None:
    if view is not None and alias is not None and view != alias:
        raise UsageError("give the view once: --view (--layer is its old spelling)")
    return view if view is not None else alias


@app.command()
@handled
def index(
    args: Annotated[list[str], typer.Argument(help="COLLECTION then files or folders: .txt/.md (one document each), BEIR .jsonl, .csv/.tsv.", metavar="COLLECTION INPUT...")],
    collection: Annotated[Optional[str], typer.Option("--collection", "-c", hidden=True)] = None,
    model: Annotated[Optional[str], typer.Option(help="Model directory or hub id (default: packaged all-MiniLM-L6-v2).")] = None,
    pooling: PoolingOpt = None,
    overlap: Annotated[Optional[int], typer.Option(help="Tokens shared by neighbouring passages (new collections; default 32).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="Passage length in tokens (default: the model's maximum).")] = None,
    max_passages: Annotated[Optional[int], typer.Option(help="Keep at most N passages per document (1 = truncate like MTEB).")] = None,
    vector_dtype: Annotated[Optional[Literal["float32", "float16"]], typer.Option(help="Stored raw vectors (new collections; default float32).")] = None,
    text_column: Annotated[str, typer.Option(help="CSV column holding the text.")] = "text",
    id_column: Annotated[Optional[str], typer.Option(help="CSV column holding the document id (default: row number).")] = None,
    title_column: Annotated[Optional[str], typer.Option(help="CSV column holding the title.")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Also remove documents no longer in the inputs.")] = False,
    index_type: IndexOpt = None,
    batch_docs: Annotated[int, typer.Option(help="Documents per committed batch (an interrupted run resumes from the last one).")] = 512,
    engine: Annotated[Literal["local", "ray"], typer.Option(help="local, or ray: encode on Ray Data with an actor pool.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: start a local Ray).")] = None,
    ray_actors: Annotated[int, typer.Option(help="Encoder actors in the Ray pool.")] = 2,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    quantize: QuantOpt = None,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index documents: every passage, every hidden state, one encoder pass."""
    name, inputs = (collection, args) if collection else (args[0], args[1:])
    if not inputs:
        raise UsageError("give the collection, then at least one file or folder: layerwise index COLLECTION PATH...")
    settings = EncoderSettings(model=model, device=device, dtype=dtype, pooling=pooling, max_tokens=max_tokens, quantize=quantize)
    kb = _library(db, home, device, dtype).open(name, create=True, settings=settings, overlap=overlap,
                                                max_passages=max_passages, vector_dtype=vector_dtype)
    report = kb.index(inputs, columns=TableColumns(text_column, id_column, title_column), sync=sync, batch_docs=batch_docs,
                      index_type=index_type, engine=engine, ray_address=ray_address, ray_actors=ray_actors, progress=_progress())
    render.index_report(report, as_json)


@app.command()
@handled
def search(
    collection: CollectionArg,
    query: QueryArg,
    view: ViewOpt = None,
    layer: LayerAlias = None,
    k: KOpt = 10,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search one or several views (several share one query encoding)."""
    kb = _library(db, home, device, dtype).open(collection)
    chosen = _pick(view, layer)
    render.search_result(kb.search_views(query, [chosen] if chosen else None, k), as_json)


@app.command()
@handled
def compare(
    collection: CollectionArg,
    query: QueryArg,
    view: Annotated[str, typer.Option("--view", "-v", help="Views to compare (default: every layer).")] = "all",
    layer: LayerAlias = None,
    k: KOpt = 10,
    plot: Annotated[Optional[Path], typer.Option(help="Write the Jaccard@k matrix as a heatmap PNG.")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One query: top-k of several views side by side and their Jaccard@k overlap."""
    kb = _library(db, home, device, dtype).open(collection)
    comparison = kb.compare(query, _pick(view, layer) or "all", k)
    if plot:
        from layerwise.evaluation.plot import plot_jaccard

        plot_jaccard(comparison, plot)
    render.comparison(comparison, as_json)


@app.command()
@handled
def info(collection: CollectionArg, db: DbOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Model, hidden states, passages, bytes on disk, views and default view of a collection."""
    render.info(_library(db, home).open(collection).info(), as_json)


@app.command("list")
@handled
def list_collections(db: DbOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List collections."""
    library = _library(db, home)
    render.collections(library.names(), library.store.url, as_json)


@app.command()
@handled
def drop(
    collection: CollectionArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a collection: its rows, vectors and indices."""
    library = _library(db, home)
    library.require(collection)
    if not yes and not typer.confirm(f"delete collection '{collection}' and all its vectors?"):
        raise typer.Exit(1)
    library.drop(collection)
    render.message({"collection": collection, "dropped": True}, f"dropped {collection}", as_json)


@app.command()
@handled
def embed(
    input: Annotated[Path, typer.Argument(help=".txt (one text per line), .jsonl (BEIR) or .csv.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file: .npz, .npy, .parquet or .safetensors.")],
    layers: Annotated[str, typer.Option("--layers", help="Hidden states to export: all, -1, -4:, 0,3,6.")] = "all",
    pooling: PoolingOpt = None,
    tokens: Annotated[bool, typer.Option("--tokens", help="Export every token's vector (not pooled) with token strings, word index and character offsets (.npz or .safetensors).")] = False,
    words: Annotated[bool, typer.Option("--words", help="Mean-pool sub-word tokens into words (implies --tokens).")] = False,
    stride: Annotated[Optional[int], typer.Option(help="With --tokens: tokens shared by neighbouring windows of a long text (default: half a window).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="With --tokens: window length in tokens (default: the model's maximum).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model directory or hub id.")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    quantize: QuantOpt = None,
    text_column: Annotated[str, typer.Option(help="CSV column holding the text.")] = "text",
    as_json: JsonOpt = False,
) -> None:
    """Export pooled embeddings of selected hidden states: (texts, states, dim) with labels and the model identity."""
    from layerwise.api import embed_file, embed_tokens_file

    if tokens or words:
        summary = embed_tokens_file(input, output, layers, text_column, words=words, stride=stride, max_tokens=max_tokens,
                                    progress=_progress(), model=model, device=device, dtype=dtype, pooling=pooling, quantize=quantize)
        render.tokens_exported(summary, as_json)
        return
    written, result = embed_file(input, output, layers, text_column, progress=_progress(), model=model, device=device,
                                 dtype=dtype, pooling=pooling, quantize=quantize)
    render.embedded(written, result, as_json)


@app.command()
@handled
def export(
    collection: CollectionArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file: .npz, .npy, .parquet or .safetensors.")],
    layers: Annotated[str, typer.Option("--layers", help="Hidden states to export: all, -1, -4:, 0,3,6.")] = "all",
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export stored vectors (no re-encoding) with document ids, passage ids and character spans."""
    written = _library(db, home).open(collection).export(output, layers)
    render.message({"collection": collection, "output": str(written), "layers": layers}, f"wrote {written}", as_json)


@app.command()
@handled
def mix(
    collection: CollectionArg,
    name: Annotated[str, typer.Argument(help="Name of the new view (a letter first; not layerN, bm25 or all).")],
    spec: Annotated[str, typer.Argument(help="A mix ('wsum(-4:; 0.1,0.2,0.3,0.4)', 'mean(-4:; raw)') or a fusion ('rrf(bm25 | -1)').")],
    index_type: Annotated[Literal[INDEX_TYPES], typer.Option("--index", help="Index of a mix view.")] = "flat",
    default: Annotated[bool, typer.Option("--default", help="Also make it the collection's default view.")] = False,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a named view: a mix built from the stored vectors (no encoder run), or a fusion."""
    kb = _library(db, home).open(collection)
    described = kb.save_view(name, spec, index_type=index_type)
    if default:
        kb.set_default_view(name)
    render.message({"collection": collection, "view": name, "spec": described, "default": default},
                   f"view {name} = {described}" + (" (default view)" if default else ""), as_json)


@app.command("default-view")
@handled
def default_view(
    collection: CollectionArg,
    spec: Annotated[Optional[str], typer.Argument(help="The view a plain search uses; leave out to show it.")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Go back to the last layer.")] = False,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or set the view a plain `search` uses."""
    kb = _library(db, home).open(collection)
    current = kb.set_default_view(None) if reset else kb.set_default_view(spec) if spec else kb.default_view
    render.message({"collection": collection, "default_view": current}, f"{collection}: default view {current}", as_json)


@app.command()
@handled
def views(collection: CollectionArg, db: DbOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List a collection's views: every layer and the stored mixes and fusions."""
    kb = _library(db, home).open(collection)
    render.views(collection, kb.views(), kb.default_view, as_json)


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
    kb = _library(db, home, device, dtype).open(collection)
    result = kb.evaluate(datasets.read_queries(queries), datasets.read_qrels(qrels), view, metrics=metric or DEFAULT_METRICS,
                         baseline=baseline, correction=correction, alpha=alpha, ignore_identical_ids=ignore_identical_ids,
                         trials=trials, bootstrap=bootstrap, seed=seed, strict=strict, progress=_progress(), notify=render.note)
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

    kb = _library(db, home, device, dtype).open(collection)
    texts = datasets.read_queries(queries)
    learned = kb.learn_mix(texts, datasets.read_qrels(qrels), name, separate=separate, steps=steps, lr=lr,
                           temperature=temperature, seed=seed, progress=_progress())
    held_out = kb.evaluate(texts, datasets.read_qrels(eval_qrels), [name, "-1"], progress=_progress()) if eval_qrels else None
    render.learned_mix(name, learned, held_out, as_json)


@app.command()
@handled
def delete(
    collection: CollectionArg,
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids to remove.")],
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove documents from the database, and from every index (rebuilt from stored vectors)."""
    removed = _library(db, home).open(collection).delete(doc_ids)
    missing = len(set(doc_ids)) - removed
    text = f"removed {removed} documents from {collection}" + (f"; {missing} ids were not in it" if missing else "")
    render.message({"collection": collection, "removed": removed, "missing": missing}, text, as_json)


@app.command()
@handled
def check(
    collection: CollectionArg,
    repair: Annotated[bool, typer.Option("--repair", help="Rebuild indices from stored vectors and drop what was lost.")] = False,
    recall: Annotated[bool, typer.Option("--recall", help="Measure recall@10 of each ANN index against exact search.")] = False,
    deep: Annotated[bool, typer.Option("--deep", help="Also reread every vector byte against its checksum (--repair always does).")] = False,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify database <-> stored vectors (checksums) <-> every index; exit 1 when they differ."""
    report = _library(db, home).open(collection).check(repair=repair, recall=recall, deep=deep)
    render.check_report(report, as_json)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@handled
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    token: Annotated[Optional[str], typer.Option(envvar="LAYERWISE_TOKEN", show_envvar=True,
                                                 help="Require 'Authorization: Bearer TOKEN' on every API request (prefer the environment variable).")] = None,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body accepted, in MB.")] = 16,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    db: DbOpt = None,
    home: HomeOpt = None,
) -> None:
    """Serve the home's collections: the JSON API under /api (OpenAPI at /docs) and the comparison page at /."""
    from layerwise.server.run import serve as run_server
    from layerwise.server.security import Limits

    if not 0 < port < 65536:
        raise UsageError(f"--port {port} is not a TCP port: use 1..65535")
    if max_body_mb <= 0:
        raise UsageError(f"--max-body-mb {max_body_mb} must be positive")
    run_server(home, db, host=host, port=port, token=token or None, device=device, dtype=dtype,
               limits=Limits(max_body_bytes=int(max_body_mb * 1024 * 1024)))


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
    render.runs_list(_library(db, home).runs(collection), as_json)


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
    run = _library(db, home).run(run_id)
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
    diff = _library(db, home).diff_runs(run_a, run_b, metric, trials=trials, seed=seed, correction=correction)
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

    typer.echo(f"wrote {export_run(_library(db, home).run(run_id), output)}")


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
    found = _library(db, home).layer_diagnostics(collection, sample=sample, seed=seed)
    written = [str(plot_diagnostics(found, plot))] if plot else []
    render.diagnostics(found, written, as_json)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except LayerwiseError as exc:  # raised outside a command body (e.g. in a callback)
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
