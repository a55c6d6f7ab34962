"""Retrieval metrics with trec_eval semantics, per query.

- A run's documents are ranked by score descending, ties broken by document id
  descending (trec_eval's order), then cut at k.
- A document is relevant when its judged relevance is >= 1; judgements <= 0 count
  as not relevant and add no gain.
- nDCG@k uses linear gains (the relevance grade) and log2(rank + 1) discounts
  (trec_eval's ``ndcg_cut``); MAP@k divides by all relevant documents
  (``map_cut``); Recall@k by all relevant documents (``recall``); P@k by k even
  when fewer are retrieved (``P``); MRR@k is 1/rank of the first relevant
  document within k (``recip_rank`` on a run cut at k).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from layerwise.errors import UsageError

Run = Mapping[str, Mapping[str, float]]  # query -> document -> score
Qrels = Mapping[str, Mapping[str, int]]  # query -> document -> relevance

METRICS = ("ndcg", "recall", "mrr", "map", "p")


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Documents in trec_eval order: score descending, then document id descending."""
    return [d for d, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def ndcg(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    gains = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    if ideal == 0:
        return 0.0
    dcg = sum(max(judged.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    return dcg / ideal


def recall(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    relevant = sum(1 for g in judged.values() if g > 0)
    return sum(1 for d in ranking[:k] if judged.get(d, 0) > 0) / relevant if relevant else 0.0


def precision(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    return sum(1 for d in ranking[:k] if judged.get(d, 0) > 0) / k


def mrr(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranking[:k]):
        if judged.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def average_precision(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    relevant = sum(1 for g in judged.values() if g > 0)
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, d in enumerate(ranking[:k]):
        if judged.get(d, 0) > 0:
            hits += 1
            total += hits / (i + 1)
    return total / relevant


FUNCTIONS: dict[str, Callable[[list[str], Mapping[str, int], int], float]] = {
    "ndcg": ndcg, "recall": recall, "mrr": mrr, "map": average_precision, "p": precision,
}


def parse_metric(name: str) -> tuple[str, int]:
    """'ndcg@10' -> ('ndcg', 10)."""
    base, _, cut = name.lower().partition("@")
    if base not in FUNCTIONS or not cut.isdigit() or int(cut) < 1:
        raise UsageError(f"unknown metric '{name}': use NAME@K with NAME one of {', '.join(METRICS)} (e.g. ndcg@10)")
    return base, int(cut)


def per_query(run: Run, qrels: Qrels, metric: str) -> dict[str, float]:
    """Metric value of every judged query with at least one relevant document; a query missing from the run scores 0."""
    base, k = parse_metric(metric)
    function = FUNCTIONS[base]
    out = {}
    for query, judged in qrels.items():
        if any(g > 0 for g in judged.values()):
            out[query] = function(ranked(run.get(query, {})), judged, k)
    return out


def mean(values: Mapping[str, float]) -> float:
    return sum(values.values()) / len(values) if values else 0.0
