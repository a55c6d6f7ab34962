"""Terminal presentation: rich tables and plain lines for people, JSON (docs/json.md) for scripts.

Text that comes from documents is escaped before it reaches the terminal: rich
markup is quoted and control characters (ANSI escapes) are made visible, so a
document cannot restyle or rewrite the screen.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from layerwise.types import JSON_SCHEMA_VERSION, Hit

if TYPE_CHECKING:
    from pathlib import Path

    from layerwise.api import IndexReport
    from layerwise.evaluation.diagnostics import Diagnostics
    from layerwise.evaluation.evaluation import Evaluation
    from layerwise.evaluation.runs import RunDiff, StoredRun
    from layerwise.evaluation.learn_mix import LearnedMix
    from layerwise.search.searcher import Comparison, SearchResult
    from layerwise.storage.check import CheckReport
    from layerwise.types import LayerEmbeddings

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """Document text made inert for a terminal: control characters shown as \\xNN, rich markup escaped."""
    return escape(_CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text))


def snippet(text: str, width: int = 120) -> str:
    flat = " ".join(text.split())
    return safe(flat if len(flat) <= width else flat[: width - 1] + "…")


def console() -> Console:
    """A console as wide as the terminal, or $COLUMNS, or 200 columns when writing to a pipe."""
    if os.environ.get("COLUMNS", "").isdigit():
        return Console(width=int(os.environ["COLUMNS"]))
    found = Console()
    return found if found.is_terminal else Console(width=200)


def print_json(data: Any) -> None:
    payload = data if "schema_version" in data else {"schema_version": JSON_SCHEMA_VERSION, **data}
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def message(data: dict[str, Any], text: str, as_json: bool) -> None:
    """A one-line outcome: the text for people, the data for scripts."""
    if as_json:
        print_json(data)
    else:
        typer.echo(text)


def note(line: str) -> None:
    """A progress line on stderr (whatever the output format: stdout may be JSON)."""
    typer.echo(line, err=True)


def warn(lines: Sequence[str]) -> None:
    for line in lines:
        typer.secho(f"warning: {line}", fg=typer.colors.YELLOW, err=True)


def os_error(exc: OSError) -> str:
    """One line for a failed file operation, naming the file and what to do."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"the disk is full{where}: free space and run the command again; committed batches are kept"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {exc.strerror}; choose a writable --home/--db or fix the permissions"
    return f"{exc.strerror or exc}{where}"


# -- indexing ------------------------------------------------------------------------------------
def index_report(report: IndexReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    warn(report.inputs.warnings)
    s = report.summary
    typer.echo(f"{report.collection}: {s.added} added, {s.updated} updated, {s.unchanged} unchanged, "
               f"{s.removed} removed; {s.passages} passages encoded in {s.seconds:.1f}s")
    if report.inputs.skipped:
        typer.secho(f"skipped {len(report.inputs.skipped)}:", fg=typer.colors.YELLOW)
        typer.echo("\n".join(f"  {line}" for line in report.inputs.skipped))


# -- searching -----------------------------------------------------------------------------------
def hits_table(view: str, hits: list[Hit]) -> Table:
    table = Table(title=f"view {safe(view)}", title_justify="left")
    for column, style in (("rank", "dim"), ("score", "cyan"), ("document", "bold"), ("title", ""), ("passage", "")):
        table.add_column(column, style=style, overflow="fold")
    for h in hits:
        table.add_row(str(h.rank), f"{h.score:.4f}", safe(h.doc_id), snippet(h.title, 40), snippet(h.text))
    return table


def side_by_side(results: dict[str, list[Hit]]) -> Table:
    table = Table(title="top documents per view (score)", title_justify="left")
    table.add_column("rank", style="dim")
    for view in results:
        table.add_column(safe(view), overflow="fold")
    depth = max((len(h) for h in results.values()), default=0)
    for rank in range(depth):
        cells = [f"{safe(hits[rank].doc_id)} ({hits[rank].score:.3f})" if rank < len(hits) else "" for hits in results.values()]
        table.add_row(str(rank + 1), *cells)
    return table


def search_result(result: SearchResult, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    _search_tables(result.results)


def forwarded_search(data: dict[str, Any], as_json: bool) -> None:
    """A search answered by a running server: its JSON (the schema of SearchResult.to_dict) printed the same way."""
    if as_json:
        print_json(data)
        return
    _search_tables({r["view"]: [Hit(**h) for h in r["hits"]] for r in data["results"]})


def _search_tables(results: dict[str, list[Hit]]) -> None:
    if len(results) == 1:
        console().print(hits_table(*next(iter(results.items()))))
    else:
        console().print(side_by_side(results))


def overlap_table(names: list[str], matrix: Any, k: int) -> Table:
    table = Table(title=f"Jaccard@{k} overlap between views", title_justify="left")
    table.add_column("")
    for name in names:
        table.add_column(safe(name), justify="right")
    for name, row in zip(names, matrix):
        table.add_row(safe(name), *(f"{x:.2f}" for x in row))
    return table


def comparison(result: Comparison, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    out = console()
    out.print(side_by_side(result.search.results))
    out.print(overlap_table(result.views, result.jaccard, result.search.k))


# -- collections ---------------------------------------------------------------------------------
def info(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    table = Table(title=f"collection {safe(data['name'])}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        if key == "views":
            value = "\n".join(f"{v['name']}: {v['spec']} ({v['index_bytes']:,} bytes)" for v in value)
        elif key in ("model", "bytes_per_passage"):
            value = "\n".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        if key != "schema_version":
            table.add_row(key, safe(str(value)))
    console().print(table)


def collections(names: list[str], url: str, as_json: bool) -> None:
    if as_json:
        print_json({"database": url, "collections": names})
    else:
        typer.echo("\n".join(names) if names else f"no collections in {url}")


def views(collection: str, found: list[dict[str, str]], default: str, as_json: bool) -> None:
    if as_json:
        print_json({"collection": collection, "default_view": default, "views": found})
    else:
        typer.echo("\n".join(f"{v['name']:<20} {v['spec']}" for v in found) + f"\ndefault view: {default}")


def embedded(path: Path, result: LayerEmbeddings, as_json: bool) -> None:
    data = {"output": str(path), "shape": list(result.vectors.shape), "layers": list(result.layers), "model": result.model.to_dict()}
    text = f"wrote {path}: embeddings {result.vectors.shape} for hidden states {list(result.layers)} of {result.model.name}"
    message(data, text, as_json)


def tokens_exported(summary: Any, as_json: bool) -> None:
    data = {"output": summary.path, "texts": summary.texts, "rows": summary.rows, "unit": summary.unit,
            "layers": list(summary.layers), "model": summary.model, "window": summary.window, "stride": summary.stride}
    text = (f"wrote {summary.path}: {summary.rows} {summary.unit} vectors of {summary.texts} texts, hidden states "
            f"{list(summary.layers)} of {summary.model} (windows of {summary.window} tokens, stride {summary.stride})")
    message(data, text, as_json)


def check_report(report: CheckReport, as_json: bool) -> None:
    if as_json:
        print_json({**asdict(report), "ok": report.ok})
        return
    lines = [f"repaired: {line}" for line in report.repaired]
    for view in report.views:
        extra = f", recall@10 {view.recall_at_10:.3f}" if view.recall_at_10 is not None else ""
        lines.append(f"{view.name:<16} {view.kind:<5} {view.ntotal:>9} vectors  {'ok' if view.ok else view.problem}{extra}")
    verdict = "consistent" if report.ok else "; ".join(report.problems) + f" — run `layerwise check {report.collection} --repair`"
    reread = " (every vector byte reread)" if report.deep else ""
    lines.append(f"{report.collection}: {report.passages} passages, {report.vector_rows} vector rows{reread}: {verdict}")
    typer.echo("\n".join(lines))


# -- evaluation ----------------------------------------------------------------------------------
def evaluation_table(evaluation: Evaluation) -> Table:
    from layerwise.evaluation.report import table_rows

    header, rows = table_rows(evaluation)
    first = evaluation.metrics[0]
    title = (f"{evaluation.collection}: {evaluation.queries} queries, metrics x100, 95% paired bootstrap CI; "
             f"paired randomization test on {first} against {evaluation.baseline}, {evaluation.correction} correction; "
             f"* = significantly better after correction")
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(header):
        table.add_column(safe(column), justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*(safe(c) for c in row), style="bold green" if row[0].endswith(" *") else None)
    return table


def evaluation(result: Evaluation, written: list[str], as_json: bool, run_id: int | None = None) -> None:
    """The table (or JSON with per-query metrics), the verdict, the passage note and any qrels warnings (stderr)."""
    saved = run_id is None
    run_id = run_id if run_id is not None else result.config.get("run_id")
    warn(result.warnings)
    if as_json:
        print_json({"run_id": run_id, **result.to_dict(per_query=True), "written": written})
        return
    console().print(evaluation_table(result))
    if result.corpus.get("note"):
        typer.echo(f"passages: {result.corpus['note']}")
    where = f"saved as evaluation run {run_id}" if saved else f"evaluation run {run_id}"
    typer.echo(f"{result.verdict()}; {where}" + (f"; wrote {', '.join(written)}" if written else ""))


def runs_list(runs: Sequence[StoredRun], as_json: bool) -> None:
    if as_json:
        print_json({"runs": [r.summary() for r in runs]})
        return
    if not runs:
        typer.echo("no evaluation runs yet: `layerwise evaluate COLLECTION --queries Q --qrels R` stores one")
        return
    table = Table(title="evaluation runs, newest first", title_justify="left")
    for column in ("run", "created", "collection", "queries", "views", "baseline", "verdict"):
        table.add_column(column)
    for r in runs:
        s = r.summary()
        verdict = f"{s['metric']} {100 * s['baseline_mean']:.2f}; " + (f"best {s['best']}" if s["best"] else "no view significantly better")
        table.add_row(str(s["run_id"]), s["created_at"][:19], safe(s["collection"]), str(s["queries"]), str(s["views"]),
                      safe(s["baseline"]), safe(verdict))
    console().print(table)


def run_diff(diff: RunDiff, as_json: bool) -> None:
    if as_json:
        print_json(diff.to_dict())
        return
    title = (f"run {diff.run_a} (A) vs run {diff.run_b} (B): {diff.metric} x100 on {diff.queries} common queries; "
             f"paired randomization test, {diff.correction} correction")
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(("view", "A", "B", "B - A", "p", f"p {diff.correction}", "B wins/losses")):
        table.add_column(column, justify="left" if i == 0 else "right")
    for v in diff.views:
        table.add_row(safe(v.view), f"{100 * v.mean_a:.2f}", f"{100 * v.mean_b:.2f}", f"{100 * v.delta:+.2f}",
                      f"{v.p_value:.4f}", f"{v.p_adjusted:.4f}", f"{v.wins}/{v.losses}")
    console().print(table)
    for label, names in (("only in A", diff.only_a), ("only in B", diff.only_b)):
        if names:
            typer.echo(f"{label}: {', '.join(names)}")


def diagnostics(found: Diagnostics, written: list[str], as_json: bool) -> None:
    if as_json:
        print_json({**found.to_dict(), "written": written})
        return
    title = (f"{found.collection}: {found.model}, {found.passages:,} passages; anisotropy = mean cosine of two different "
             f"passages; CKA with the last state on {found.cka_sample:,} sampled passages")
    table = Table(title=safe(title), title_justify="left")
    for i, column in enumerate(("state", "norm mean", "std", "min", "median", "max", "anisotropy", "CKA with prev", "CKA with last")):
        table.add_column(column, justify="right")
    for i, s in enumerate(found.layers):
        prev = f"{found.cka[i, i - 1]:.3f}" if i else ""
        table.add_row(str(s.layer), f"{s.norm_mean:.3f}", f"{s.norm_std:.3f}", f"{s.norm_min:.3f}", f"{s.norm_median:.3f}",
                      f"{s.norm_max:.3f}", f"{s.anisotropy:.3f}", prev, f"{found.cka[i, -1]:.3f}")
    console().print(table)
    typer.echo("the full CKA matrix is in --json" + (f"; wrote {', '.join(written)}" if written else ""))


def learned_mix(name: str, learned: LearnedMix, held_out: Evaluation | None, as_json: bool) -> None:
    if as_json:
        data = {"view": name, "doc_weights": learned.doc_weights, "query_weights": learned.query_weights,
                "loss_first": learned.losses[0], "loss_last": learned.losses[-1], "training_queries": learned.queries,
                "held_out": held_out.to_dict() if held_out else None}
        print_json(data)
        return
    typer.echo(f"learnt {name} from {learned.queries} queries: loss {learned.losses[0]:.4f} -> {learned.losses[-1]:.4f}")
    typer.echo("document weights: " + "  ".join(f"h{i}={w:.3f}" for i, w in enumerate(learned.doc_weights)))
    if learned.query_weights != learned.doc_weights:
        typer.echo("query weights:    " + "  ".join(f"h{i}={w:.3f}" for i, w in enumerate(learned.query_weights)))
    if held_out is not None:
        console().print(evaluation_table(held_out))


def smart_import(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    warn(summary["warnings"])
    typer.echo(f"wrote {summary['output']}: {summary['documents']} documents, {summary['queries']} queries, "
               f"{summary['judgements']} judgements for {summary['judged_queries']} queries")
