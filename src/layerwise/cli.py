"""The typer app: parses arguments, calls the library, prints results. Nothing else lives here."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from layerwise.errors import LayerwiseError, UsageError

app = typer.Typer(
    help="Semantic search that keeps every layer of a BERT-family encoder.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
F = TypeVar("F", bound=Callable[..., Any])

DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL or SQLite path (default: $LAYERWISE_DB, else HOME/layerwise.db).")]
HomeOpt = Annotated[Optional[Path], typer.Option("--home", help="Data folder (default: $LAYERWISE_HOME, else ~/.local/share/layerwise).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
CollectionArg = Annotated[str, typer.Argument(help="Collection name.")]
QueryArg = Annotated[str, typer.Argument(help="What to look for.")]
KOpt = Annotated[int, typer.Option("-k", help="Documents per view.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="auto (fp32 on CPU, bf16/fp16 on CUDA), fp32, bf16 or fp16; bf16 on a CPU with AMX is ~3x faster.")]
QuantOpt = Annotated[Optional[str], typer.Option("--quantize", help="int8: dynamic int8 Linear layers on the CPU (opt-in; changes vectors).")]


def _err(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


def handled(func: F) -> F:
    """Turn layerwise errors into one clear line and their exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LayerwiseError as exc:
            _err(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _err("interrupted: committed batches are kept; run the same command again to resume")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except OSError as exc:  # disk full, read-only folder, missing permission
            _err(_os_message(exc))
            raise typer.Exit(1) from None
        except Exception as exc:  # an internal failure: one line, the traceback on demand
            if os.environ.get("LAYERWISE_DEBUG"):
                raise
            _err(f"internal error: {type(exc).__name__}: {exc} (set LAYERWISE_DEBUG=1 for the traceback)")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _os_message(exc: OSError) -> str:
    import errno

    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"the disk is full{where}: free space and run the command again; committed batches are kept"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {exc.strerror}; choose a writable --home/--db or fix the permissions"
    return f"{exc.strerror or exc}{where}"


def _store(db: str | None, home: Path | None):  # noqa: ANN202
    from layerwise.storage.collection import Store

    return Store(db, home)


def _searcher(collection: str, k: int, device: str, dtype: str, db: str | None, home: Path | None):  # noqa: ANN202
    """A searcher over the named collection, after checking k (the searcher checks the query)."""
    from layerwise.search.searcher import Searcher

    if k < 1:
        raise UsageError(f"-k {k} must be at least 1")
    return Searcher(_store(db, home).open(collection), device=device, dtype=dtype)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _console():  # noqa: ANN202
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)


@app.command()
@handled
def index(
    inputs: Annotated[list[Path], typer.Argument(help="Files or folders: .txt/.md (one document each), BEIR .jsonl, .csv/.tsv.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name (created on first use).")],
    model: Annotated[Optional[str], typer.Option(help="Model directory or hub id (default: packaged all-MiniLM-L6-v2).")] = None,
    pooling: Annotated[str, typer.Option(help="mean, cls or max.")] = "mean",
    overlap: Annotated[int, typer.Option(help="Tokens shared by neighbouring passages.")] = 32,
    max_tokens: Annotated[Optional[int], typer.Option(help="Passage length in tokens (default: the model's maximum).")] = None,
    max_passages: Annotated[Optional[int], typer.Option(help="Keep at most N passages per document (1 = truncate like MTEB).")] = None,
    vector_dtype: Annotated[str, typer.Option(help="Stored raw vectors: float32 or float16.")] = "float32",
    text_column: Annotated[str, typer.Option(help="CSV column holding the text.")] = "text",
    id_column: Annotated[Optional[str], typer.Option(help="CSV column holding the document id (default: row number).")] = None,
    title_column: Annotated[Optional[str], typer.Option(help="CSV column holding the title.")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Also remove documents no longer in the inputs.")] = False,
    index_type: Annotated[Optional[str], typer.Option("--index", help="Layer index type: flat, hnsw, ivf or auto (flat below 50k passages, IVF above).")] = None,
    batch_docs: Annotated[int, typer.Option(help="Documents per committed batch (an interrupted run resumes from the last one).")] = 512,
    engine: Annotated[str, typer.Option(help="local, or ray: encode on Ray Data with an actor pool.")] = "local",
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
    from layerwise.errors import CollectionNotFound
    from layerwise.indexer.encoder import Encoder
    from layerwise.indexer.inputs import InputReport, TableColumns, read_documents
    from layerwise.indexer.pipeline import index_documents

    report = InputReport()
    docs = list(read_documents(inputs, report, TableColumns(text_column, id_column, title_column)))
    store = _store(db, home)
    encoder = Encoder(model, device=device, pooling=pooling, max_tokens=max_tokens, dtype=dtype, quantize=quantize)
    if engine not in ("local", "ray"):
        raise UsageError(f"unknown engine '{engine}': use local or ray")
    if engine == "ray":
        from layerwise.indexer.ray_engine import RayEncoder

        encoder = RayEncoder(encoder, ray_address, ray_actors)  # type: ignore[assignment]
    try:
        target = store.open(collection)
    except CollectionNotFound:
        target = store.create(collection, encoder.identity, vector_dtype, overlap, max_passages)
    if index_type and index_type != target.index_type:
        from layerwise.storage.faiss_index import choose

        choose(index_type, 0)
        target.set_index_type(index_type)
    summary = index_documents(target, encoder, docs, report, sync=sync, batch_docs=batch_docs, progress=not as_json)
    result = {"collection": collection, **summary.__dict__, "read": report.read, "skipped": report.skipped, "warnings": report.warnings}
    if as_json:
        _print_json(result)
        return
    for line in report.warnings:
        typer.secho(f"warning: {line}", fg=typer.colors.YELLOW, err=True)
    typer.echo(
        f"{collection}: {summary.added} added, {summary.updated} updated, {summary.unchanged} unchanged, "
        f"{summary.removed} removed; {summary.passages} passages encoded in {summary.seconds:.1f}s"
    )
    if report.skipped:
        typer.secho(f"skipped {len(report.skipped)}:", fg=typer.colors.YELLOW)
        for line in report.skipped:
            typer.echo(f"  {line}")


@app.command()
@handled
def search(
    collection: CollectionArg,
    query: QueryArg,
    layer: Annotated[str, typer.Option("--layer", "-l", help="Layer (-1), selection (all, -4:), mix (mean(-4:)), stored view name, or bm25.")] = "-1",
    k: KOpt = 10,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search one or several layers/views; several views share one query encoding."""
    from layerwise.search.views import BM25, resolve

    searcher = _searcher(collection, k, device, dtype, db, home)
    target = searcher.collection
    if layer.strip() == BM25:
        results = {BM25: searcher.hits(searcher.rank_bm25([query], k)[0])}
    else:
        results = searcher.search(query, resolve(target, layer), k)
    if as_json:
        _print_json({"collection": collection, "query": query, "views": {v: [h.to_dict() for h in hits] for v, hits in results.items()}})
        return
    from layerwise import render

    _console().print(render.hits_table(results) if len(results) == 1 else render.side_by_side(results))


@app.command()
@handled
def info(
    collection: CollectionArg,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Model, hidden states, passages, bytes on disk and indices of a collection."""
    from layerwise.storage.report import describe

    data = describe(_store(db, home).open(collection))
    if as_json:
        _print_json(data)
        return
    from layerwise import render

    _console().print(render.info_panel(data))


@app.command("list")
@handled
def list_collections(db: DbOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List collections."""
    store = _store(db, home)
    names = store.names()
    if as_json:
        _print_json(names)
    else:
        typer.echo("\n".join(names) if names else f"no collections in {store.url}")


@app.command()
@handled
def drop(
    collection: CollectionArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    db: DbOpt = None,
    home: HomeOpt = None,
) -> None:
    """Delete a collection: its rows, vectors and indices."""
    store = _store(db, home)
    store.open(collection)
    if not yes and not typer.confirm(f"delete collection '{collection}' and all its vectors?"):
        raise typer.Exit(1)
    store.drop(collection)
    typer.echo(f"dropped {collection}")


@app.command()
@handled
def embed(
    input: Annotated[Path, typer.Argument(help=".txt (one text per line), .jsonl (BEIR) or .csv.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .npz file (.npz or .safetensors with --tokens).")],
    layers: Annotated[str, typer.Option(help="Hidden states to export: all, -1, -4:, 0,3,6.")] = "all",
    tokens: Annotated[bool, typer.Option("--tokens", help="Export every token's vector (not pooled), with token strings, word index and character offsets.")] = False,
    words: Annotated[bool, typer.Option("--words", help="With --tokens: mean-pool sub-word tokens into words.")] = False,
    stride: Annotated[Optional[int], typer.Option(help="With --tokens: tokens shared by neighbouring windows of a long text (default: half a window).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="With --tokens: window length in tokens (default: the model's maximum).")] = None,
    pooling: Annotated[str, typer.Option(help="mean, cls or max.")] = "mean",
    model: Annotated[Optional[str], typer.Option(help="Model directory or hub id.")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    quantize: QuantOpt = None,
    text_column: Annotated[str, typer.Option(help="CSV column holding the text.")] = "text",
) -> None:
    """Export pooled embeddings of selected hidden states: an array (texts, states, dim) in .npz."""
    from layerwise import layers as grammar
    from layerwise.indexer.encoder import Encoder
    from layerwise.indexer.inputs import read_texts

    if tokens and quantize:
        raise UsageError("--tokens exports the model's own fp32/bf16 states: leave out --quantize")
    if words and not tokens:
        raise UsageError("--words pools the tokens of --tokens: add --tokens")
    if tokens:
        from layerwise.indexer.tokens import export_with_model

        ids, texts = read_texts(input, text_column)
        done = export_with_model(model, ids, texts, layers, output, words=words, stride=stride, max_tokens=max_tokens,
                                 device=device, dtype=dtype, progress=True)
        typer.echo(f"wrote {output}: {done.rows} {done.unit} vectors of {done.texts} texts, hidden states {list(done.layers)} "
                   f"of {done.model} (windows of {done.window} tokens, stride {done.stride})")
        return
    spec = grammar.parse(layers)
    if spec.is_mix:
        raise UsageError(f"embed exports hidden states, not mixes: give a selection such as all or -4: (got '{layers}')")
    ids, texts = read_texts(input, text_column)
    encoder = Encoder(model, device=device, pooling=pooling, dtype=dtype, quantize=quantize)
    result = encoder.encode(texts, spec.resolve(encoder.num_states), progress=True)
    result.save_npz(output, ids=ids)
    typer.echo(f"wrote {output}: embeddings {result.vectors.shape} for hidden states {list(result.layers)} of {encoder.identity.name}")


@app.command()
@handled
def mix(
    collection: CollectionArg,
    name: Annotated[str, typer.Argument(help="Name of the new view.")],
    spec: Annotated[str, typer.Argument(help="Mix expression, e.g. 'wsum(-4:; 0.1,0.2,0.3,0.4)' or 'mean(-4:; raw)'.")],
    index_type: Annotated[str, typer.Option("--index", help="flat, hnsw, ivf or auto.")] = "flat",
    db: DbOpt = None,
    home: HomeOpt = None,
) -> None:
    """Store a named mix view built from the stored vectors (no encoder run)."""
    from layerwise.search.views import save_mix

    view = save_mix(_store(db, home).open(collection), name, spec, index_type=index_type)
    typer.echo(f"view {name} = {view.spec} built from stored vectors")


@app.command()
@handled
def views(
    collection: CollectionArg,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a collection's views: every layer and the stored mixes."""
    from layerwise.search.views import all_views

    found = [{"name": v.name, "spec": v.describe()} for v in all_views(_store(db, home).open(collection))]
    if as_json:
        _print_json(found)
    else:
        typer.echo("\n".join(f"{v['name']:<20} {v['spec']}" for v in found))


@app.command()
@handled
def evaluate(
    collection: CollectionArg,
    queries: Annotated[Path, typer.Option(help="BEIR queries.jsonl (or id<TAB>text).")],
    qrels: Annotated[Path, typer.Option(help="BEIR qrels .tsv or TREC qrels.")],
    view: Annotated[Optional[list[str]], typer.Option("--view", "-v", help="View spec, repeatable: all, -1, mean(-4:), a stored name, bm25, rrf(bm25 | -1), fuse(bm25:0.3 | -1:0.7), stored. Default: every layer, standard mixes, stored views, bm25, rrf(all), rrf(bm25 | -1).")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="NAME@K, repeatable (ndcg, recall, mrr, map, p); the first is tested for significance.")] = None,
    ignore_identical_ids: Annotated[bool, typer.Option("--ignore-identical-ids", help="Drop results whose document id equals the query id.")] = False,
    trials: Annotated[int, typer.Option(help="Randomization-test trials.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the randomization test.")] = 0,
    plot: Annotated[Optional[Path], typer.Option(help="Write a PNG of the first metric by layer.")] = None,
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
    from layerwise import render
    from layerwise.search import datasets
    from layerwise.search.evaluation import DEFAULT_METRICS, evaluate as run_evaluation
    from layerwise.search.searcher import Searcher

    target = _store(db, home).open(collection)
    result = run_evaluation(
        Searcher(target, device=device, dtype=dtype), datasets.read_queries(queries), datasets.read_qrels(qrels), view,
        metric or DEFAULT_METRICS, ignore_identical_ids=ignore_identical_ids, trials=trials, seed=seed, progress=not as_json,
    )
    from layerwise.search.runs import save_run, write_runs

    run_id = save_run(target, result)
    if plot:
        from layerwise.search.plot import plot_layers

        plot_layers(result, plot)
    if csv_out:
        csv_out.write_text(render.evaluation_csv(result))
    if markdown:
        markdown.write_text(render.evaluation_markdown(result))
    if runs:
        write_runs(result, runs)
    if as_json:
        _print_json({"run_id": run_id, **result.to_dict()})
        return
    _console().print(render.evaluation_table(result))
    typer.echo(f"best {result.metrics[0]}: {result.best()}; saved as evaluation run {run_id}" + (f"; plot: {plot}" if plot else ""))


@app.command()
@handled
def compare(
    collection: CollectionArg,
    query: QueryArg,
    layer: Annotated[str, typer.Option("--layer", "-l", help="Views to compare (default: every layer).")] = "all",
    k: KOpt = 10,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One query: top-k of every layer side by side and their Jaccard@k overlap."""
    from layerwise.search.overlap import jaccard_matrix
    from layerwise.search.views import resolve

    searcher = _searcher(collection, k, device, dtype, db, home)
    results = searcher.search(query, resolve(searcher.collection, layer), k)
    names = list(results)
    matrix = jaccard_matrix({n: [h.doc_id for h in hits] for n, hits in results.items()})
    if as_json:
        _print_json({"query": query, "k": k, "views": {n: [h.to_dict() for h in hits] for n, hits in results.items()},
                     "jaccard": {"views": names, "matrix": matrix.round(4).tolist()}})
        return
    from layerwise import render

    console = _console()
    console.print(render.side_by_side(results))
    console.print(render.overlap_table(names, matrix, k))


@app.command("import-smart")
@handled
def import_smart(
    documents: Annotated[Path, typer.Argument(help="SMART documents file (e.g. cran.all.1400).")],
    queries: Annotated[Path, typer.Argument(help="SMART queries file (e.g. cran.qry).")],
    qrels: Annotated[Path, typer.Argument(help="Relevance file (e.g. cranqrel).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="BEIR folder to write.")],
    query_ids: Annotated[str, typer.Option(help="position: number queries 1..n in file order (Cranfield's qrels); field: keep .I.")] = "position",
    grades: Annotated[str, typer.Option(help="as-is, or cleverdon (1 best .. 4, -1/5 none -> 4..1, 0).")] = "as-is",
) -> None:
    """Convert a SMART test collection (Cranfield, CISI, MED, CACM) to BEIR format."""
    from layerwise.search import datasets, smart

    docs = smart.read_documents(documents)
    found_queries = smart.read_queries(queries, query_ids)
    judged = smart.read_qrels(qrels, grades)
    unknown = sorted(set(judged) - set(found_queries), key=lambda q: (len(q), q))
    if unknown:
        typer.secho(f"warning: qrels name {len(unknown)} queries not in {queries} (first: {unknown[:5]}); check --query-ids", fg=typer.colors.YELLOW, err=True)
    datasets.write_beir(output, docs, found_queries, judged)
    pairs = sum(len(v) for v in judged.values())
    typer.echo(f"wrote {output}: {len(docs)} documents, {len(found_queries)} queries, {pairs} judgements for {len(judged)} queries")


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
    from layerwise.search import datasets
    from layerwise.search.learn_mix import learn
    from layerwise.search.searcher import Searcher
    from layerwise.search.views import save_mix

    target = _store(db, home).open(collection)
    searcher = Searcher(target, device=device, dtype=dtype)
    texts = datasets.read_queries(queries)
    learned = learn(searcher, texts, datasets.read_qrels(qrels), separate=separate, steps=steps, lr=lr,
                    temperature=temperature, seed=seed, progress=not as_json)
    save_mix(target, name, learned.doc_spec, learned.query_spec)
    result: dict[str, Any] = {"view": name, "doc_weights": learned.doc_weights, "query_weights": learned.query_weights,
                              "loss_first": learned.losses[0], "loss_last": learned.losses[-1], "training_queries": learned.queries}
    if eval_qrels:
        from layerwise.search.evaluation import evaluate as run_evaluation

        held_out = run_evaluation(searcher, texts, datasets.read_qrels(eval_qrels), [name, "-1"], progress=not as_json)
        result["held_out"] = held_out.to_dict()
    if as_json:
        _print_json(result)
        return
    typer.echo(f"learnt {name} from {learned.queries} queries: loss {learned.losses[0]:.4f} -> {learned.losses[-1]:.4f}")
    typer.echo("document weights: " + "  ".join(f"h{i}={w:.3f}" for i, w in enumerate(learned.doc_weights)))
    if separate:
        typer.echo("query weights:    " + "  ".join(f"h{i}={w:.3f}" for i, w in enumerate(learned.query_weights)))
    if eval_qrels:
        from layerwise import render

        _console().print(render.evaluation_table(held_out))


@app.command()
@handled
def delete(
    collection: CollectionArg,
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids to remove.")],
    db: DbOpt = None,
    home: HomeOpt = None,
) -> None:
    """Remove documents from the database, and from every index (rebuilt from stored vectors)."""
    from layerwise.search.views import rebuild_all

    target = _store(db, home).open(collection)
    with target.writing():
        removed = target.delete_documents(doc_ids)
        if removed:
            rebuild_all(target)
    missing = len(set(doc_ids)) - removed
    typer.echo(f"removed {removed} documents from {collection}" + (f"; {missing} ids were not in it" if missing else ""))


@app.command()
@handled
def check(
    collection: CollectionArg,
    repair: Annotated[bool, typer.Option("--repair", help="Rebuild indices from stored vectors and drop what was lost.")] = False,
    recall: Annotated[bool, typer.Option("--recall", help="Measure recall@10 of each ANN index against exact search.")] = False,
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify database <-> stored vectors <-> every index; exit 1 when they differ."""
    from dataclasses import asdict

    from layerwise.storage import check as checking

    target = _store(db, home).open(collection)
    report = checking.repair(target) if repair else checking.check(target, recall=recall)
    if as_json:
        _print_json({**asdict(report), "ok": report.ok})
    else:
        for line in report.repaired:
            typer.echo(f"repaired: {line}")
        for view in report.views:
            extra = f", recall@10 {view.recall_at_10:.3f}" if view.recall_at_10 is not None else ""
            typer.echo(f"{view.name:<16} {view.kind:<5} {view.ntotal:>9} vectors  {'ok' if view.ok else view.problem}{extra}")
        typer.echo(f"{collection}: {report.passages} passages, {report.vector_rows} vector rows: " +
                   ("consistent" if report.ok else "; ".join(report.problems) + " — run `layerwise check " + collection + " --repair`"))
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except LayerwiseError as exc:  # raised outside a command body (e.g. in a callback)
        _err(str(exc))
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
