"""The per-layer plot: a metric against hidden-state index, mixes, fusion and BM25 as reference lines."""

from __future__ import annotations

from pathlib import Path

from layerwise.search.evaluation import Evaluation


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
