"""An evaluation's tables and files: CSV and Markdown tables, TREC runs and the plot, each path checked first."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from layerwise.errors import UsageError
from layerwise.evaluation.evaluation import Evaluation
from layerwise.evaluation.plot import plot_layers, write_figures
from layerwise.evaluation.runs import StoredRun, write_runs
from layerwise.types import JSON_SCHEMA_VERSION


def table_rows(evaluation: Evaluation) -> tuple[list[str], list[list[str]]]:
    """Header and rows (metrics x100) of the results table.

    The first metric carries its 95% bootstrap interval; p is the raw paired
    randomization-test p against the baseline, and the adjusted p follows the
    run's correction. '*' marks the best view only when it beats the baseline
    significantly after correction.
    """
    best, first = evaluation.best(), evaluation.metrics[0]
    adjusted = f"p {evaluation.correction}" if evaluation.correction != "none" else "p (uncorrected)"
    header = ["view", "kind", first, "95% CI", *evaluation.metrics[1:], f"p vs {evaluation.baseline}", adjusted, "wins/losses"]
    rows = []
    for v in evaluation.views:
        is_base = v.name == evaluation.baseline
        low, high = v.ci.get(first, [v.means[first]] * 2)
        rows.append([
            f"{v.name} *" if v.name == best else v.name, v.kind, f"{100 * v.means[first]:.2f}", f"{100 * low:.1f}-{100 * high:.1f}",
            *(f"{100 * v.means[m]:.2f}" for m in evaluation.metrics[1:]),
            "baseline" if is_base else _p(v.p_value), "" if is_base else _p(v.p_adjusted), "" if is_base else f"{v.wins}/{v.losses}",
        ])
    return header, rows


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def markdown(evaluation: Evaluation) -> str:
    header, rows = table_rows(evaluation)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + evaluation.verdict() + "\n"


def csv_text(evaluation: Evaluation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    cis = [f"{m}_{end}" for m in evaluation.metrics for end in ("ci_low", "ci_high")]
    writer.writerow(["view", "kind", "layer", *evaluation.metrics, *cis, "p_value", "p_adjusted", "significant", "wins", "losses", "ties"])
    for v in evaluation.views:
        bounds = [f"{b:.6f}" for m in evaluation.metrics for b in v.ci.get(m, ["", ""]) if b != ""]
        writer.writerow([v.name, v.kind, "" if v.layer is None else v.layer, *(f"{v.means[m]:.6f}" for m in evaluation.metrics),
                         *bounds, "" if v.p_value is None else f"{v.p_value:.6f}",
                         "" if v.p_adjusted is None else f"{v.p_adjusted:.6f}", v.significant, v.wins, v.losses, v.ties])
    return buffer.getvalue()


def check_file(path: Path | None, suffix: str, option: str) -> None:
    """Refuse, before any work, an output file that is a folder, lacks its suffix or has no folder to go in."""
    if path is None:
        return
    if path.is_dir() or path.suffix.lower() != suffix:
        raise UsageError(f"{option} {path} must be a file name ending in {suffix}")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: the folder {path.parent} does not exist; create it first")


def check_folder(path: Path | None, option: str) -> None:
    """Refuse an output folder that is an existing file."""
    if path is not None and path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file: give a folder (it is created if missing)")


def check_outputs(*, plot: Path | None = None, csv: Path | None = None, markdown_path: Path | None = None,
                  figures: Path | None = None) -> None:
    """Check every output path before an evaluation runs, so minutes of work never end in an unwritable path."""
    check_file(plot, ".png", "--plot")
    check_file(csv, ".csv", "--csv")
    check_file(markdown_path, ".md", "--markdown")
    check_folder(figures, "--figures")


def write_outputs(evaluation: Evaluation, *, plot: Path | None = None, csv: Path | None = None,
                  markdown_path: Path | None = None, runs: Path | None = None, figures: Path | None = None,
                  scatter: list[str] | None = None) -> list[str]:
    """Write the files asked for; return the paths actually written."""
    written = []
    if plot:
        written.append(str(plot_layers(evaluation, plot)))
    if figures:
        written += write_figures(evaluation, figures, scatter)
    if csv:
        csv.write_text(csv_text(evaluation))
        written.append(str(csv))
    if markdown_path:
        markdown_path.write_text(markdown(evaluation))
        written.append(str(markdown_path))
    if runs:
        written += write_runs(evaluation, runs)
    return written


def export_run(run: StoredRun, path: Path) -> Path:
    """Write a stored run as .json (everything, per-query metrics included), .csv or .md (the table)."""
    writers = {".json": lambda: json.dumps({"schema_version": JSON_SCHEMA_VERSION, "run_id": run.run_id, "created_at": run.created_at,
                                             **run.evaluation.to_dict(per_query=True)}, indent=2, ensure_ascii=False),
               ".csv": lambda: csv_text(run.evaluation), ".md": lambda: markdown(run.evaluation)}
    writer = writers.get(path.suffix.lower())
    if writer is None or path.is_dir():
        raise UsageError(f"runs export writes .json, .csv or .md: '{path}' names none of them")
    path.write_text(writer())
    return path
