"""Learning layer weights from training qrels, over the stored vectors, with torch on the CPU.

The mix is a softmax over hidden states of learnt logits, applied to per-layer
L2-normalised pooled vectors and normalised again (``wsum(...)`` in the layer
grammar). Optionally the query side has its own weights. The loss is a
multi-positive contrastive (InfoNCE) loss: each training query against every
stored passage (or a sample of them on large collections), the passages of its
relevant documents counting as positives. Deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from layerwise.errors import UsageError
from layerwise.search.searcher import Searcher
from layerwise.storage.views import layer_views


@dataclass(frozen=True)
class LearnedMix:
    """Learnt weights per hidden state for documents and queries, and the loss curve."""

    doc_weights: tuple[float, ...]
    query_weights: tuple[float, ...]
    losses: tuple[float, ...]
    queries: int

    @staticmethod
    def _spec(weights: tuple[float, ...]) -> str:
        return f"wsum(0:{len(weights)}; {','.join(f'{w:.6f}' for w in weights)})"

    @property
    def doc_spec(self) -> str:
        return self._spec(self.doc_weights)

    @property
    def query_spec(self) -> str | None:
        return None if self.query_weights == self.doc_weights else self._spec(self.query_weights)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def _mix(stack: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(logits, dim=0)  # (H,)
    return _unit(torch.einsum("nhd,h->nd", stack, weights))  # (n, d)


def training_pairs(searcher: Searcher, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]) -> tuple[list[str], list[np.ndarray]]:
    """Texts of judged queries and, for each, the vector rows of its relevant documents' passages."""
    rows, docs, doc_ids = searcher.collection.passage_table
    position = {d: i for i, d in enumerate(doc_ids)}
    texts, positives = [], []
    for qid, judged in qrels.items():
        wanted = {position[d] for d, g in judged.items() if g > 0 and d in position}
        if qid in queries and wanted:
            texts.append(queries[qid])
            positives.append(np.flatnonzero(np.isin(docs, list(wanted))))
    if not texts:
        raise UsageError("no training query has a text and a relevant document in this collection: check --queries and --qrels")
    return texts, positives


def learn(
    searcher: Searcher,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    separate: bool = False,
    steps: int = 200,
    lr: float = 0.05,
    temperature: float = 0.05,
    max_passages: int = 50_000,
    seed: int = 0,
    progress: bool = False,
) -> LearnedMix:
    """Fit softmax layer weights that maximise the contrastive likelihood of relevant passages."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    collection = searcher.collection
    texts, positives = training_pairs(searcher, queries, qrels)
    states = collection.num_states
    q_stack = _unit(torch.from_numpy(searcher.encode(texts, layer_views(states)).vectors))  # (q, H, d)
    d_stack = _unit(torch.from_numpy(np.stack([np.asarray(collection.layer_vectors(i)[collection.live_rows()], np.float32) for i in range(states)], 1)))  # (N, H, d)
    target = torch.zeros(len(texts), len(d_stack), dtype=torch.bool)  # (q, N)
    for i, rows in enumerate(positives):
        target[i, torch.from_numpy(rows)] = True
    doc_logits = torch.zeros(states, requires_grad=True)
    query_logits = torch.zeros(states, requires_grad=True) if separate else doc_logits
    optimiser = torch.optim.Adam(list({id(t): t for t in (doc_logits, query_logits)}.values()), lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc="learning mix", disable=not progress, leave=False):
        sample = _sample(target, max_passages, rng)
        scores = _mix(q_stack, query_logits) @ _mix(d_stack[sample], doc_logits).T / temperature  # (q, n)
        positive = scores.masked_fill(~target[:, sample], float("-inf")).logsumexp(dim=1)  # (q,)
        loss = (scores.logsumexp(dim=1) - positive).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    weights = lambda logits: tuple(float(w) for w in torch.softmax(logits.detach(), 0))  # noqa: E731
    return LearnedMix(weights(doc_logits), weights(query_logits), tuple(losses), len(texts))


def _sample(target: torch.Tensor, limit: int, rng: np.random.Generator) -> torch.Tensor:
    """All passages, or every positive plus random others up to ``limit``."""
    total = target.shape[1]
    if total <= limit:
        return torch.arange(total)
    positive = torch.nonzero(target.any(dim=0)).flatten().numpy()
    others = rng.choice(total, size=max(limit - len(positive), 0), replace=False)
    return torch.from_numpy(np.union1d(positive, others))
