"""An evaluation's tables and files: CSV and Markdown tables, TREC runs and the plot, each path checked first."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from layerwise.errors import UsageError
from layerwise.evaluation.evaluation import Evaluation
from layerwise.evaluation.plot import plot_layers
from layerwise.evaluation.runs import write_runs


def table_rows(evaluation: Evaluation) -> tuple[list[str], list[list[str]]]:
    """Header and rows (metrics x100) of the results table; the best view carries a '*'."""
    best = evaluation.best()
    header = ["view", "kind", *evaluation.metrics, f"p vs {evaluation.baseline}", "wins/losses"]
    rows = []
    for v in evaluation.views:
        p = "baseline" if v.name == evaluation.baseline else f"{v.p_value:.4f}"
        wl = "" if v.name == evaluation.baseline else f"{v.wins}/{v.losses}"
        name = f"{v.name} *" if v.name == best else v.name
        rows.append([name, v.kind, *(f"{100 * v.means[m]:.2f}" for m in evaluation.metrics), p, wl])
    return header, rows


def markdown(evaluation: Evaluation) -> str:
    header, rows = table_rows(evaluation)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_text(evaluation: Evaluation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["view", "kind", "layer", *evaluation.metrics, "p_value", "wins", "losses", "ties"])
    for v in evaluation.views:
        writer.writerow([v.name, v.kind, "" if v.layer is None else v.layer, *(f"{v.means[m]:.6f}" for m in evaluation.metrics),
                         "" if v.p_value is None else f"{v.p_value:.6f}", v.wins, v.losses, v.ties])
    return buffer.getvalue()


def check_file(path: Path | None, suffix: str, option: str) -> None:
    """Refuse, before any work, an output file that is a folder, lacks its suffix or has no folder to go in."""
    if path is None:
        return
    if path.is_dir() or path.suffix.lower() != suffix:
        raise UsageError(f"{option} {path} must be a file name ending in {suffix}")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: the folder {path.parent} does not exist; create it first")


def check_outputs(*, plot: Path | None = None, csv: Path | None = None, markdown_path: Path | None = None) -> None:
    """Check every output path before an evaluation runs, so minutes of work never end in an unwritable path."""
    check_file(plot, ".png", "--plot")
    check_file(csv, ".csv", "--csv")
    check_file(markdown_path, ".md", "--markdown")


def write_outputs(evaluation: Evaluation, *, plot: Path | None = None, csv: Path | None = None,
                  markdown_path: Path | None = None, runs: Path | None = None) -> list[str]:
    """Write the files asked for; return the paths actually written."""
    written = []
    if plot:
        plot_layers(evaluation, plot)
        written.append(str(plot))
    if csv:
        csv.write_text(csv_text(evaluation))
        written.append(str(csv))
    if markdown_path:
        markdown_path.write_text(markdown(evaluation))
        written.append(str(markdown_path))
    if runs:
        write_runs(evaluation, runs)
        written.append(str(runs))
    return written
