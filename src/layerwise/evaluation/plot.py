"""The per-layer plot: a metric against hidden-state index, mixes, fusion and BM25 as reference lines."""

from __future__ import annotations

from pathlib import Path

from layerwise.evaluation.evaluation import Evaluation
from layerwise.search.searcher import Comparison


def plot_layers(evaluation: Evaluation, path: Path, metric: str | None = None) -> None:
    """Write a PNG of metric by layer with every non-layer view as a labelled horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = metric or evaluation.metrics[0]
    layers = sorted((v for v in evaluation.views if v.kind == "layer"), key=lambda v: v.layer)
    others = [v for v in evaluation.views if v.kind != "layer"]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    ax.plot([v.layer for v in layers], [100 * v.means[metric] for v in layers], "o-", color="black", label="single layer", zorder=3)
    colours = plt.get_cmap("tab10")
    for i, view in enumerate(others):
        style = {"bm25": ":", "fusion": "-.", "mix": "--"}[view.kind]
        ax.axhline(100 * view.means[metric], color=colours(i % 10), linestyle=style, label=f"{view.name} ({view.kind})")
    ax.set_xlabel("hidden state (0 = embedding output)")
    ax.set_ylabel(f"{metric} x 100")
    ax.set_xticks([v.layer for v in layers])
    ax.set_title(f"{evaluation.collection}: {metric} by layer ({evaluation.queries} queries, {evaluation.model['name'].split('/')[-1]})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_jaccard(comparison: Comparison, path: Path) -> Path:
    """Write compare's Jaccard@k matrix as an annotated heatmap PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
