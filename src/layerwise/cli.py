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
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]


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
        except Exception as exc:  # an internal failure: one line, the traceback on demand
            if os.environ.get("LAYERWISE_DEBUG"):
                raise
            _err(f"internal error: {type(exc).__name__}: {exc} (set LAYERWISE_DEBUG=1 for the traceback)")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _store(db: str | None, home: Path | None):  # noqa: ANN202
    from layerwise.storage.collection import Store

    return Store(db, home)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _console():  # noqa: ANN202
    from rich.console import Console

    return Console()


@app.command()
@handled
def index(
    inputs: Annotated[list[Path], typer.Argument(help="Files or folders: .txt/.md (one document each), BEIR .jsonl, .csv/.tsv.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name (created on first use).")],
    model: Annotated[Optional[str], typer.Option(help="Model directory or hub id (default: packaged all-MiniLM-L6-v2).")] = None,
    pooling: Annotated[str, typer.Option(help="mean, cls or max.")] = "mean",
    overlap: Annotated[int, typer.Option(help="Tokens shared by neighbouring passages.")] = 32,
    max_tokens: Annotated[Optional[int], typer.Option(help="Passage length in tokens (default: the model's maximum).")] = None,
    vector_dtype: Annotated[str, typer.Option(help="Stored raw vectors: float32 or float16.")] = "float32",
    text_column: Annotated[str, typer.Option(help="CSV column holding the text.")] = "text",
    id_column: Annotated[Optional[str], typer.Option(help="CSV column holding the document id (default: row number).")] = None,
    title_column: Annotated[Optional[str], typer.Option(help="CSV column holding the title.")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Also remove documents no longer in the inputs.")] = False,
    device: DeviceOpt = "auto",
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
    encoder = Encoder(model, device=device, pooling=pooling, max_tokens=max_tokens)
    try:
        target = store.open(collection)
    except CollectionNotFound:
        target = store.create(collection, encoder.identity, vector_dtype, overlap)
    summary = index_documents(target, encoder, docs, report, sync=sync, progress=not as_json)
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
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    query: Annotated[str, typer.Argument(help="What to look for.")],
    layer: Annotated[str, typer.Option("--layer", "-l", help="Layer (-1), selection (all, -4:), mix (mean(-4:)), stored view name, or bm25.")] = "-1",
    k: Annotated[int, typer.Option("-k", help="Documents per view.")] = 10,
    device: DeviceOpt = "auto",
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search one or several layers/views; several views share one query encoding."""
    from layerwise.search.searcher import Searcher
    from layerwise.search.views import BM25, resolve

    if not query.strip():
        raise UsageError("the query is empty: give some words to search for")
    if k < 1:
        raise UsageError(f"-k {k} must be at least 1")
    target = _store(db, home).open(collection)
    searcher = Searcher(target, device=device)
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
    collection: Annotated[str, typer.Argument(help="Collection name.")],
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
    collection: Annotated[str, typer.Argument(help="Collection name.")],
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
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .npz file.")],
    layers: Annotated[str, typer.Option(help="Hidden states to export: all, -1, -4:, 0,3,6.")] = "all",
    pooling: Annotated[str, typer.Option(help="mean, cls or max.")] = "mean",
    model: Annotated[Optional[str], typer.Option(help="Model directory or hub id.")] = None,
    device: DeviceOpt = "auto",
    text_column: Annotated[str, typer.Option(help="CSV column holding the text.")] = "text",
) -> None:
    """Export pooled embeddings of selected hidden states: an array (texts, states, dim) in .npz."""
    from layerwise import layers as grammar
    from layerwise.indexer.encoder import Encoder
    from layerwise.indexer.inputs import read_texts

    spec = grammar.parse(layers)
    if spec.is_mix:
        raise UsageError(f"embed exports hidden states, not mixes: give a selection such as all or -4: (got '{layers}')")
    ids, texts = read_texts(input, text_column)
    encoder = Encoder(model, device=device, pooling=pooling)
    result = encoder.encode(texts, spec.resolve(encoder.num_states), progress=True)
    result.save_npz(output, ids=ids)
    typer.echo(f"wrote {output}: embeddings {result.vectors.shape} for hidden states {list(result.layers)} of {encoder.identity.name}")


@app.command()
@handled
def mix(
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    name: Annotated[str, typer.Argument(help="Name of the new view.")],
    spec: Annotated[str, typer.Argument(help="Mix expression, e.g. 'wsum(-4:; 0.1,0.2,0.3,0.4)' or 'mean(-4:; raw)'.")],
    db: DbOpt = None,
    home: HomeOpt = None,
) -> None:
    """Store a named mix view built from the stored vectors (no encoder run)."""
    from layerwise.search.views import save_mix

    view = save_mix(_store(db, home).open(collection), name, spec)
    typer.echo(f"view {name} = {view.spec} built from stored vectors")


def main() -> None:
    """Console entry point."""
    try:
        app()
    except LayerwiseError as exc:  # raised outside a command body (e.g. in a callback)
        _err(str(exc))
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
