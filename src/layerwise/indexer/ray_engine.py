"""Encoding on Ray Data: ``map_batches`` over an actor pool, the model loaded once per actor.

The driver keeps a local :class:`Encoder` for the tokenizer, passage splitting and
the model identity; only the forward passes run on the actors. The vectors come
back in input order and are stored exactly as the local engine stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from layerwise.errors import UsageError
from layerwise.indexer.encoder import Encoder
from layerwise.settings import EncoderSettings
from layerwise.types import LayerEmbeddings


class _EncodeActor:
    """One Ray actor: loads the encoder once, then pools every hidden state of each batch."""

    def __init__(self, settings: EncoderSettings) -> None:
        import torch

        torch.set_num_threads(1)
        self.encoder = Encoder(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.encoder.encode([str(t) for t in batch["text"]]).vectors  # (B, states, d)
        return {"position": batch["position"], "vectors": vectors}


class RayEncoder:
    """Drop-in for Encoder in the indexing pipeline whose ``encode`` runs on Ray Data."""

    def __init__(self, local: Encoder, address: str | None = None, actors: int = 2, batch_size: int = 256) -> None:
        try:
            import ray
        except ImportError:
            raise UsageError("--engine ray needs Ray Data: pip install 'layerwise[ray]'") from None
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        self.local = local
        self.actors = actors
        self.batch_size = batch_size
        # the very settings of the local encoder (dtype and quantize included), one thread per actor
        self.settings = local.settings.with_(max_tokens=local.max_tokens, token_budget=local.token_budget, workers=1)

    def __getattr__(self, name: str) -> Any:  # tokenizer, max_tokens, identity, num_states ...
        return getattr(self.local, name)

    def encode(self, texts: Sequence[str], layers: Sequence[int] | None = None, progress: bool = False) -> LayerEmbeddings:
        """Pooled vectors of every hidden state, computed by the actor pool, in input order."""
        import ray

        assert layers is None, "the Ray engine encodes every hidden state"
        dataset = ray.data.from_items([{"position": i, "text": t} for i, t in enumerate(texts)])
        mapped = dataset.map_batches(
            _EncodeActor, fn_constructor_args=(self.settings,), batch_size=self.batch_size,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=self.actors), num_cpus=1,
        )
        out = np.zeros((len(texts), self.local.num_states, self.local.identity.dim), dtype=np.float32)  # (n, states, d)
        for batch in mapped.iter_batches(batch_format="numpy", batch_size=None):
            out[batch["position"]] = batch["vectors"]
        return LayerEmbeddings(out, tuple(range(self.local.num_states)), self.local.identity)
