"""Layer diagnostics from stored vectors: norms, anisotropy and linear CKA between hidden states.

Everything here reads the raw pooled vectors a collection stores (no encoder run):

* norm statistics of each hidden state's pooled vectors (mean, std, min, median, max);
* anisotropy, the expected cosine similarity of two different random passages
  (Ethayarajh, 2019), computed exactly over all pairs:
  ``(||sum u||^2 - n) / (n (n - 1))`` for the n unit vectors ``u``;
* linear CKA between every pair of hidden states (Kornblith et al., 2019):
  ``||Y'^T X'||_F^2 / (||X'^T X'||_F ||Y'^T Y'||_F)`` with column-centred X', Y'.

CKA is computed on at most ``sample`` passages drawn at random (seeded), since its
cost grows with rows x dim^2 per pair; norms and anisotropy use every live passage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layerwise.errors import UsageError
from layerwise.storage.collection import Collection

DEFAULT_SAMPLE = 3000


@dataclass(frozen=True)
class LayerStats:
    """One hidden state: norm statistics of its pooled vectors and its anisotropy."""

    layer: int
    norm_mean: float
    norm_std: float
    norm_min: float
    norm_median: float
    norm_max: float
    anisotropy: float


@dataclass(frozen=True)
class Diagnostics:
    """Per-layer statistics and the CKA matrix of one collection."""

    collection: str
    model: str
    passages: int
    cka_sample: int
    layers: list[LayerStats]
    cka: np.ndarray  # (L, L)

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "model": self.model, "passages": self.passages,
                "cka_sample": self.cka_sample, "layers": [asdict(s) for s in self.layers],
                "cka": {"layers": [s.layer for s in self.layers], "matrix": np.round(self.cka, 6).tolist()}}


def norm_stats(vectors: np.ndarray) -> dict[str, float]:
    """Mean, std, min, median and max of the L2 norms of rows (n, d)."""
    norms = np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1)  # (n,)
    return {"norm_mean": float(norms.mean()), "norm_std": float(norms.std()), "norm_min": float(norms.min()),
            "norm_median": float(np.median(norms)), "norm_max": float(norms.max())}


def anisotropy(vectors: np.ndarray) -> float:
    """Mean cosine similarity over all pairs of distinct rows (zero rows left out)."""
    x = np.asarray(vectors, dtype=np.float64)  # (n, d)
    norms = np.linalg.norm(x, axis=1)  # (n,)
    unit = x[norms > 0] / norms[norms > 0, None]  # (m, d)
    n = len(unit)
    if n < 2:
        raise UsageError("anisotropy needs at least two passages with a non-zero vector")
    total = unit.sum(axis=0)  # (d,)
    return float((total @ total - n) / (n * (n - 1)))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations of the same rows, (n, d1) and (n, d2)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean(axis=0)  # (n, d1)
    y = y - y.mean(axis=0)  # (n, d2)
    cross = np.linalg.norm(y.T @ x) ** 2  # ||Y^T X||_F^2
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / denom) if denom > 0 else float("nan")


def cka_matrix(states: Sequence[np.ndarray]) -> np.ndarray:
    """Linear CKA between every pair of representations of the same rows, (L, L)."""
    centred = [np.asarray(s, dtype=np.float64) - np.asarray(s, dtype=np.float64).mean(axis=0) for s in states]
    self_norms = [np.linalg.norm(c.T @ c) for c in centred]
    out = np.eye(len(states))  # (L, L)
    for i in range(len(states)):
        for j in range(i + 1, len(states)):
            denom = self_norms[i] * self_norms[j]
            value = np.linalg.norm(centred[j].T @ centred[i]) ** 2 / denom if denom > 0 else np.nan
            out[i, j] = out[j, i] = value
    return out


def diagnose(collection: Collection, sample: int = DEFAULT_SAMPLE, seed: int = 0) -> Diagnostics:
    """Norms and anisotropy of every hidden state over all live passages; CKA over a seeded sample of them."""
    if sample < 2:
        raise UsageError(f"--sample {sample} must be at least 2 passages")
    rows = collection.live_rows()  # (n,) rows of passages still in the collection
    if len(rows) < 2:
        raise UsageError(f"collection '{collection.name}' has {len(rows)} passages: diagnostics need at least two")
    chosen = np.sort(np.random.default_rng(seed).choice(rows, size=min(sample, len(rows)), replace=False))  # (s,)
    stats, sampled = [], []
    for layer in range(collection.num_states):
        stats.append(_layer_stats(layer, collection.layer_vectors(layer), rows))
        sampled.append(np.asarray(collection.layer_vectors(layer)[chosen], dtype=np.float64))  # (s, d)
    return Diagnostics(collection.name, collection.identity.name, len(rows), len(chosen), stats, cka_matrix(sampled))


def _layer_stats(layer: int, stored: np.ndarray, rows: np.ndarray, chunk: int = 65_536) -> LayerStats:
    """Norm statistics and anisotropy of one hidden state, read in chunks of rows (bounded memory)."""
    norms, total, nonzero = [], np.zeros(stored.shape[1]), 0
    for start in range(0, len(rows), chunk):
        block = np.asarray(stored[rows[start : start + chunk]], dtype=np.float64)  # (c, d)
        size = np.linalg.norm(block, axis=1)  # (c,)
        norms.append(size)
        total += (block[size > 0] / size[size > 0, None]).sum(axis=0)  # (d,)
        nonzero += int(np.count_nonzero(size))
    if nonzero < 2:
        raise UsageError("anisotropy needs at least two passages with a non-zero vector")
    every = np.concatenate(norms)  # (n,)
    return LayerStats(layer, float(every.mean()), float(every.std()), float(every.min()), float(np.median(every)),
                      float(every.max()), float((total @ total - nonzero) / (nonzero * (nonzero - 1))))


def plot_diagnostics(diagnostics: Diagnostics, path: Path) -> Path:
    """The CKA heatmap (left) and anisotropy and mean norm by hidden state (right), one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = [s.layer for s in diagnostics.layers]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 5.4), dpi=120, gridspec_kw={"width_ratios": [1.15, 1]})
    image = left.imshow(diagnostics.cka, cmap="magma", vmin=0, vmax=1)
    if len(layers) <= 16:
        for i in range(len(layers)):
            for j in range(len(layers)):
                value = diagnostics.cka[i, j]
                left.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="black" if value > 0.6 else "white")
    left.set_xticks(range(len(layers)), layers)
    left.set_yticks(range(len(layers)), layers)
    left.set_xlabel("hidden state")
    left.set_ylabel("hidden state")
    left.set_title(f"linear CKA between hidden states ({diagnostics.cka_sample:,} passages)", fontsize=10)
    fig.colorbar(image, ax=left, fraction=0.046, pad=0.04)
    right.plot(layers, [s.anisotropy for s in diagnostics.layers], "o-", color="tab:red", label="anisotropy (mean cosine of passage pairs)")
    right.set_ylim(0, 1)
    right.set_xlabel("hidden state (0 = embedding output)")
    right.set_ylabel("anisotropy", color="tab:red")
    right.set_xticks(layers)
    twin = right.twinx()
    twin.errorbar(layers, [s.norm_mean for s in diagnostics.layers], yerr=[s.norm_std for s in diagnostics.layers],
                  fmt="s--", color="tab:blue", capsize=3, label="mean L2 norm (± std)")
    twin.set_ylim(0, max(s.norm_mean + s.norm_std for s in diagnostics.layers) * 1.1)
    twin.set_ylabel("pooled-vector L2 norm", color="tab:blue")
    handles = right.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    right.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper left")
    right.set_title("anisotropy and norm by hidden state", fontsize=10)
    right.grid(alpha=0.3)
    fig.suptitle(f"{diagnostics.collection}: {diagnostics.model.split('/')[-1]}, {diagnostics.passages:,} passages", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
