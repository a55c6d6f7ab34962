"""Commands on collections: index, search, compare, info, list, drop, embed, export, views, delete, compact, check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from layerwise import render
from layerwise.cli.app import (INDEX_TYPES, CollectionArg, DbOpt, DeviceOpt, DtypeOpt, HomeOpt, IndexOpt, JsonOpt, KOpt, forward_search,
                               LayerAlias, PoolingOpt, QuantOpt, QueryArg, ViewOpt, app, handled, open_library, pick, progress)
from layerwise.errors import UsageError
from layerwise.indexer.inputs import TableColumns
from layerwise.settings import EncoderSettings


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
    kb = open_library(db, home, device, dtype).open(name, create=True, settings=settings, overlap=overlap,
                                                max_passages=max_passages, vector_dtype=vector_dtype)
    report = kb.index(inputs, columns=TableColumns(text_column, id_column, title_column), sync=sync, batch_docs=batch_docs,
                      index_type=index_type, engine=engine, ray_address=ray_address, ray_actors=ray_actors, progress=progress())
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
    local: Annotated[bool, typer.Option("--local", help="Search in this process even when a server for this home and database is running.")] = False,
) -> None:
    """Search one or several views (several share one query encoding); a running `layerwise serve` of the same home answers it."""
    chosen = pick(view, layer)
    forwarded = None if local or (device, dtype) != ("auto", "auto") else forward_search(db, home, collection, query, chosen, k)
    if forwarded is not None:
        render.forwarded_search(forwarded, as_json)
        return
    kb = open_library(db, home, device, dtype).open(collection)
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
    kb = open_library(db, home, device, dtype).open(collection)
    comparison = kb.compare(query, pick(view, layer) or "all", k)
    if plot:
        from layerwise.evaluation.plot import plot_jaccard

        plot_jaccard(comparison, plot)
    render.comparison(comparison, as_json)


@app.command()
@handled
def info(collection: CollectionArg, db: DbOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Model, hidden states, passages, bytes on disk, views and default view of a collection."""
    render.info(open_library(db, home).open(collection).info(), as_json)


@app.command("list")
@handled
def list_collections(db: DbOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List collections."""
    library = open_library(db, home)
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
    library = open_library(db, home)
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
                                    progress=progress(), model=model, device=device, dtype=dtype, pooling=pooling, quantize=quantize)
        render.tokens_exported(summary, as_json)
        return
    written, result = embed_file(input, output, layers, text_column, progress=progress(), model=model, device=device,
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
    written = open_library(db, home).open(collection).export(output, layers)
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
    kb = open_library(db, home).open(collection)
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
    kb = open_library(db, home).open(collection)
    current = kb.set_default_view(None) if reset else kb.set_default_view(spec) if spec else kb.default_view
    render.message({"collection": collection, "default_view": current}, f"{collection}: default view {current}", as_json)


@app.command()
@handled
def views(collection: CollectionArg, db: DbOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List a collection's views: every layer and the stored mixes and fusions."""
    kb = open_library(db, home).open(collection)
    render.views(collection, kb.views(), kb.default_view, as_json)


@app.command()
@handled
def delete(
    collection: CollectionArg,
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids to remove.")],
    db: DbOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove documents from the database and from every index (updated in place; `compact` reclaims their vectors)."""
    removed = open_library(db, home).open(collection).delete(doc_ids)
    missing = len(set(doc_ids)) - removed
    text = f"removed {removed} documents from {collection}" + (f"; {missing} ids were not in it" if missing else "")
    render.message({"collection": collection, "removed": removed, "missing": missing}, text, as_json)


@app.command()
@handled
def compact(collection: CollectionArg, db: DbOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Rewrite the vector files without the rows of deleted documents (crash-safe, under the writer lock; searches go on)."""
    report = open_library(db, home).open(collection).compact()
    text = (f"{collection}: {report.rows_before:,} -> {report.rows_after:,} vector rows, "
            f"{report.bytes_before:,} -> {report.bytes_after:,} bytes")
    render.message({"collection": collection, **report.to_dict()}, text, as_json)


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
    report = open_library(db, home).open(collection).check(repair=repair, recall=recall, deep=deep)
    render.check_report(report, as_json)
    if not report.ok:
        raise typer.Exit(1)
