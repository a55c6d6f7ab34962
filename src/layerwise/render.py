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
