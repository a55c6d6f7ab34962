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
        if "ids" in batch:  # pre-tokenised passages: no tokenisation on the actor
            vectors = self.encoder.encode_ids([[int(i) for i in ids] for ids in batch["ids"]]).vectors
        else:
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
        return self._map([{"position": i, "text": t} for i, t in enumerate(texts)], layers)

    def encode_ids(
        self, token_ids: Sequence[Sequence[int]], layers: Sequence[int] | None = None, progress: bool = False
    ) -> LayerEmbeddings:
        """As ``encode`` for passages the splitter already tokenised."""
        return self._map([{"position": i, "ids": list(t)} for i, t in enumerate(token_ids)], layers)

    def _map(self, items: list[dict[str, Any]], layers: Sequence[int] | None) -> LayerEmbeddings:
        import ray

        assert layers is None, "the Ray engine encodes every hidden state"
        dataset = ray.data.from_items(items)
        mapped = dataset.map_batches(
            _EncodeActor, fn_constructor_args=(self.settings,), batch_size=self.batch_size,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=self.actors), num_cpus=1,
        )
        out = np.zeros((len(items), self.local.num_states, self.local.identity.dim), dtype=np.float32)  # (n, states, d)
        for batch in mapped.iter_batches(batch_format="numpy", batch_size=None):
            out[batch["position"]] = batch["vectors"]
        return LayerEmbeddings(out, tuple(range(self.local.num_states)), self.local.identity)
