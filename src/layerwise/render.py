"""Terminal presentation of results: rich tables for hits, side-by-side views and info."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from layerwise.search.searcher import Hit


def snippet(text: str, width: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def hits_table(results: dict[str, list[Hit]]) -> Table:
    (view, hits), = results.items()
    table = Table(title=f"view {view}", title_justify="left")
    for column, style in (("rank", "dim"), ("score", "cyan"), ("document", "bold"), ("title", ""), ("passage", "")):
        table.add_column(column, style=style, overflow="fold")
    for h in hits:
        table.add_row(str(h.rank), f"{h.score:.4f}", h.doc_id, snippet(h.title, 40), snippet(h.text))
    return table


def side_by_side(results: dict[str, list[Hit]]) -> Table:
    table = Table(title="top documents per view (score)", title_justify="left")
    table.add_column("rank", style="dim")
    for view in results:
        table.add_column(view, overflow="fold")
    depth = max((len(h) for h in results.values()), default=0)
    for rank in range(depth):
        cells = [f"{hits[rank].doc_id} ({hits[rank].score:.3f})" if rank < len(hits) else "" for hits in results.values()]
        table.add_row(str(rank + 1), *cells)
    return table


def info_panel(data: dict[str, Any]) -> Table:
    table = Table(title=f"collection {data['name']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        if key == "views":
            value = "\n".join(f"{v['name']}: {v['spec']} ({v['index_bytes']:,} bytes)" for v in value)
        elif key == "model":
            value = "\n".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, int):
            value = f"{value:,}"
        table.add_row(key, str(value))
    return table


def overlap_table(names: list[str], matrix: Any, k: int) -> Table:
    table = Table(title=f"Jaccard@{k} overlap between views", title_justify="left")
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")
    for name, row in zip(names, matrix):
        table.add_row(name, *(f"{x:.2f}" for x in row))
    return table


def _eval_rows(evaluation: Any) -> tuple[list[str], list[list[str]]]:
    best = evaluation.best()
    header = ["view", "kind", *evaluation.metrics, f"p vs {evaluation.baseline}", "wins/losses"]
    rows = []
    for v in evaluation.views:
        p = "baseline" if v.name == evaluation.baseline else f"{v.p_value:.4f}"
        wl = "" if v.name == evaluation.baseline else f"{v.wins}/{v.losses}"
        name = f"{v.name} *" if v.name == best else v.name
        rows.append([name, v.kind, *(f"{100 * v.means[m]:.2f}" for m in evaluation.metrics), p, wl])
    return header, rows


def evaluation_table(evaluation: Any) -> Table:
    header, rows = _eval_rows(evaluation)
    title = (f"{evaluation.collection}: {evaluation.queries} queries, metrics x100; * best {evaluation.metrics[0]}; "
             f"paired randomization test on {evaluation.metrics[0]}")
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*row, style="bold green" if row[0].endswith(" *") else None)
    return table


def evaluation_markdown(evaluation: Any) -> str:
    header, rows = _eval_rows(evaluation)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def evaluation_csv(evaluation: Any) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["view", "kind", "layer", *evaluation.metrics, "p_value", "wins", "losses", "ties"])
    for v in evaluation.views:
        writer.writerow([v.name, v.kind, "" if v.layer is None else v.layer, *(f"{v.means[m]:.6f}" for m in evaluation.metrics),
                         "" if v.p_value is None else f"{v.p_value:.6f}", v.wins, v.losses, v.ties])
    return buffer.getvalue()
