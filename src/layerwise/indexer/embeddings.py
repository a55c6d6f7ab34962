"""LayerEmbeddings: pooled vectors of several hidden states, with their labels and model identity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layerwise.errors import LayerRangeError
from layerwise.indexer.model import ModelIdentity


@dataclass(frozen=True)
class LayerEmbeddings:
    """Vectors shaped (texts, hidden states, dim); ``layers[j]`` labels ``vectors[:, j]``."""

    vectors: np.ndarray  # (n, k, d)
    layers: tuple[int, ...]
    model: ModelIdentity

    def layer(self, index: int) -> np.ndarray:
        """Vectors (n, d) of one hidden state, by its model index (negative counts from the end)."""
        state = index % self.model.num_states if index < 0 else index
        if state not in self.layers:
            raise LayerRangeError(f"hidden state {index} was not encoded; these were: {list(self.layers)}")
        return self.vectors[:, self.layers.index(state)]

    def stack(self, indices: tuple[int, ...]) -> np.ndarray:
        """Vectors (n, len(indices), d) of several hidden states in the given order."""
        return np.stack([self.layer(i) for i in indices], axis=1)

    def save_npz(self, path: Path, texts: list[str] | None = None, ids: list[str] | None = None) -> None:
        """Write vectors, labels and model identity to a .npz file."""
        import json

        extra = {}
        if ids is not None:
            extra["ids"] = np.asarray(ids, dtype=object).astype(str)
        np.savez(
            path,
            embeddings=self.vectors,
            layers=np.asarray(self.layers, dtype=np.int64),
            labels=np.asarray([f"hidden_states[{i}]" for i in self.layers]),
            model=np.asarray(json.dumps(self.model.to_dict())),
            **extra,
        )
