"""Figures of an evaluation: the per-layer curve with CI bands, a views x metrics heatmap, per-query scatter.

Every function writes one PNG and returns its path; matplotlib is imported lazily
(start-up time) and runs headless (Agg).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from layerwise.evaluation.evaluation import Evaluation, ViewResult
from layerwise.search.searcher import Comparison

KIND_MARKERS = {"mix": "s", "bm25": "D", "fusion": "^", "layer": "o"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(evaluation: Evaluation) -> str:
    return f"{evaluation.collection}, {evaluation.model['name'].split('/')[-1]}, {evaluation.queries} queries"


def plot_layers(evaluation: Evaluation, path: Path, metric: str | None = None) -> Path:
    """Single layers as a curve with its 95% CI band; every other view as its own point with CI bar beside it.

    The y-axis starts at 0. Views get their own x position, so equal values never hide
    each other; filled markers differ significantly from the baseline after correction.
    """
    plt = _pyplot()
    metric = metric or evaluation.metrics[0]
    layers = sorted((v for v in evaluation.views if v.kind == "layer"), key=lambda v: v.layer)
    others = [v for v in evaluation.views if v.kind != "layer"]
    width = max(7.0, 0.45 * (len(layers) + len(others)) + 2.5)
    fig, ax = plt.subplots(figsize=(width, 5.2), dpi=120)
    xs = [v.layer for v in layers]
    ax.plot(xs, [100 * v.means[metric] for v in layers], "-", color="black", label="single hidden state", zorder=3)
    for view in layers:  # filled: differs from the baseline after correction (the baseline itself: a star)
        star = view.name == evaluation.baseline
        ax.plot([view.layer], [100 * view.means[metric]], "*" if star else "o", color="black", markersize=11 if star else 7,
                markerfacecolor="black" if view.significant or star else "white", zorder=4)
    lows, highs = _interval(layers, metric)
    ax.fill_between(xs, lows, highs, color="black", alpha=0.15, linewidth=0, label="95% bootstrap CI")
    start = (max(xs) if xs else -1) + 1.5
    colours = plt.get_cmap("tab10")
    for i, view in enumerate(others):
        x = start + i
        y = 100 * view.means[metric]
        lo, hi = _interval([view], metric)
        filled = view.significant
        ax.errorbar([x], [y], yerr=[[y - lo[0]], [hi[0] - y]], fmt=KIND_MARKERS[view.kind], color=colours(i % 10),
                    markerfacecolor=colours(i % 10) if filled else "white", markersize=8, capsize=3, zorder=3)
    base = evaluation.view(evaluation.baseline)
    ax.axhline(100 * base.means[metric], color="grey", linestyle=":", linewidth=1, label=f"baseline {base.name}")
    if others:
        ax.axvline(start - 0.75, color="grey", linewidth=0.8)
    ax.set_xticks(xs + [start + i for i in range(len(others))])
    ax.set_xticklabels([str(x) for x in xs] + [v.name for v in others], rotation=0)
    for label in ax.get_xticklabels()[len(xs):]:
        label.set_rotation(40)
        label.set_horizontalalignment("right")
    top = max([*highs.tolist(), *(_interval(others, metric)[1].tolist()), 1.0])
    ax.set_ylim(0, min(103.0, top * 1.08))
    ax.set_xlabel("hidden state (0 = embedding output)  |  mixes, BM25, fusions;  filled marker: differs from the baseline "
                  f"({evaluation.correction}-corrected p < {evaluation.alpha:g})", fontsize=9)
    ax.set_ylabel(f"{metric} x 100")
    ax.set_title(f"{metric} by hidden state ({_short(evaluation)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _interval(views: list[ViewResult], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper CI bounds x 100 (the mean where no CI was computed)."""
    lows = [100 * (v.ci[metric][0] if v.ci.get(metric) else v.means[metric]) for v in views]
    highs = [100 * (v.ci[metric][1] if v.ci.get(metric) else v.means[metric]) for v in views]
    return np.asarray(lows), np.asarray(highs)


def plot_heatmap(evaluation: Evaluation, path: Path) -> Path:
    """Views x metrics, each cell the mean x 100; a * marks a significant difference from the baseline (first metric)."""
    plt = _pyplot()
    views, metrics = evaluation.views, list(evaluation.metrics)
    values = np.array([[100 * v.means[m] for m in metrics] for v in views])  # (views, metrics)
    scaled = values / np.maximum(values.max(axis=0, keepdims=True), 1e-9)  # colour per metric column
    fig, ax = plt.subplots(figsize=(1.3 * len(metrics) + 3, 0.36 * len(views) + 1.6), dpi=120)
    ax.imshow(scaled, cmap="viridis", aspect="auto", vmin=0, vmax=1)
    for i, view in enumerate(views):
        for j in range(len(metrics)):
            mark = "*" if j == 0 and view.significant else ""
            ax.text(j, i, f"{values[i, j]:.1f}{mark}", ha="center", va="center", fontsize=8,
                    color="black" if scaled[i, j] > 0.6 else "white")
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_yticks(range(len(views)), [v.name + (" (baseline)" if v.name == evaluation.baseline else "") for v in views])
    ax.xaxis.tick_top()
    ax.set_title(f"views x metrics, x 100; colour scaled per metric; * differs from {evaluation.baseline} ({_short(evaluation)})", fontsize=9, pad=24)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_scatter(evaluation: Evaluation, view_name: str, path: Path, metric: str | None = None) -> Path:
    """Per-query metric of a view (y) against the baseline (x): wins above the diagonal, losses below."""
    plt = _pyplot()
    metric = metric or evaluation.metrics[0]
    base, view = evaluation.view(evaluation.baseline), evaluation.view(view_name)
    queries = sorted(base.per_query[metric])
    x = np.array([base.per_query[metric][q] for q in queries])
    y = np.array([view.per_query[metric].get(q, 0.0) for q in queries])
    points, counts = np.unique(np.round(np.stack([x, y], axis=1), 4), axis=0, return_counts=True)
    fig, ax = plt.subplots(figsize=(5.6, 5.6), dpi=120)
    colour = np.where(points[:, 1] > points[:, 0] + 1e-9, "tab:green", np.where(points[:, 1] < points[:, 0] - 1e-9, "tab:red", "tab:grey"))
    ax.scatter(points[:, 0], points[:, 1], s=14 + 10 * counts, c=colour, alpha=0.6, edgecolors="none")
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8)
    wins, losses = int(np.sum(y > x + 1e-9)), int(np.sum(y < x - 1e-9))
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_aspect("equal")
    ax.set_xlabel(f"{base.name} (baseline) {metric}")
    ax.set_ylabel(f"{view.name} {metric}")
    p = f"p = {view.p_value:.4f}, adjusted {view.p_adjusted:.4f}" if view.p_value is not None else ""
    ax.set_title(f"per query, {len(queries)} queries; {p}\n{view.name} better (green, above): {wins}; "
                 f"{base.name} better (red, below): {losses}\n(marker area grows with the queries at one point)", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def default_scatter(evaluation: Evaluation) -> list[str]:
    """The view to plot against the baseline when none is named: the best-scoring other view."""
    metric = evaluation.metrics[0]
    others = [v for v in evaluation.views if v.name != evaluation.baseline]
    return [max(others, key=lambda v: v.means[metric]).name] if others else []


def file_name(view: str) -> str:
    """A view name made safe for a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in view).strip("_") or "view"


def write_figures(evaluation: Evaluation, folder: Path, scatter: list[str] | None = None) -> list[str]:
    """layers.png, heatmap.png and scatter-VIEW.png for each scatter view (default: the best-scoring other view)."""
    folder.mkdir(parents=True, exist_ok=True)
    views = scatter or default_scatter(evaluation)
    for name in views:
        evaluation.view(name)  # an unknown view fails before any figure is written
    paths = [plot_layers(evaluation, folder / "layers.png"), plot_heatmap(evaluation, folder / "heatmap.png")]
    paths += [plot_scatter(evaluation, name, folder / f"scatter-{file_name(name)}.png") for name in views if name != evaluation.baseline]
    return [str(p) for p in paths]


def plot_jaccard(comparison: Comparison, path: Path) -> Path:
    """Write compare's Jaccard@k matrix as an annotated heatmap PNG."""
    plt = _pyplot()
    names, matrix = comparison.views, comparison.jaccard
    size = max(4.0, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size), dpi=120)
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7, color="white" if matrix[i, j] < 0.6 else "black")
    ax.set_title(f"Jaccard@{comparison.search.k} overlap: {comparison.search.query[:60]}", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
