"""Evaluating views on labelled queries: one query encoding, every view, paired significance.

A view spec is a layer selection (one view per layer), a mix, a stored view
name, ``bm25``, or a fusion ``rrf(a | b)`` / ``fuse(a:0.3 | b:0.7)`` of those.
Each view is scored per query; each is tested against the baseline (the last
layer) with a paired randomization test on the first metric.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from layerwise.errors import UsageError
from layerwise.evaluation import metrics as M
from layerwise.evaluation.significance import randomization_test, wins_losses
from layerwise.search.plan import BM25, STORED, Plan
from layerwise.search.searcher import Searcher

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100", "p@10")
STANDARD_MIXES = ("mean(-4:)", "mean(-4:; raw)", "firstlast()", "concat(-2:)")


def default_specs(with_bm25: bool = True) -> list[str]:
    """Every layer, the standard mixes, stored views, RRF over all layers; BM25 and its fusion where FTS5 is there."""
    lexical = [BM25, f"rrf({BM25} | -1)"] if with_bm25 else []
    return ["all", *STANDARD_MIXES, STORED, "rrf(all)", *lexical]


@dataclass
class ViewResult:
    """One view's scores: per-query values and means per metric, and its test against the baseline."""

    name: str
    kind: str
    layer: int | None
    means: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(repr=False)
    p_value: float | None = None
    wins: int = 0
    losses: int = 0
    ties: int = 0


@dataclass
class Evaluation:
    """An evaluation run: every view's results for one collection and query set."""

    collection: str
    model: dict[str, Any]
    metrics: tuple[str, ...]
    baseline: str
    queries: int
    views: list[ViewResult]
    config: dict[str, Any]
    runs: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict, repr=False)

    def best(self, metric: str | None = None) -> str:
        metric = metric or self.metrics[0]
        return max(self.views, key=lambda v: v.means[metric]).name

    def view(self, name: str) -> ViewResult:
        return next(v for v in self.views if v.name == name)

    def to_dict(self, per_query: bool = False) -> dict[str, Any]:
        views = [asdict(v) for v in self.views]
        for view in views if not per_query else []:
            view.pop("per_query")
        return {"collection": self.collection, "model": self.model, "metrics": list(self.metrics), "baseline": self.baseline,
                "queries": self.queries, "best": self.best(), "views": views, "config": self.config}


def evaluate(
    searcher: Searcher,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    specs: Sequence[str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    ignore_identical_ids: bool = False,
    trials: int = 10_000,
    seed: int = 0,
    progress: bool = False,
) -> Evaluation:
    """Score every view on the judged queries; test each against the last layer."""
    for metric in metrics:
        M.parse_metric(metric)
    judged = [q for q in qrels if q in queries and any(g > 0 for g in qrels[q].values())]
    if not judged:
        raise UsageError("no query has both a text in --queries and a relevant judgement in --qrels: check that their ids match")
    specs = list(specs or default_specs(searcher.collection.store.is_sqlite))
    plan = searcher.plan(specs)
    baseline = plan.add("-1")[0]
    runs = _runs(searcher, plan, [queries[q] for q in judged], judged, max(M.parse_metric(m)[1] for m in metrics), progress)
    if ignore_identical_ids:
        runs = {v: {q: {d: s for d, s in run[q].items() if d != q} for q in run} for v, run in runs.items()}
    filtered = {q: qrels[q] for q in judged}
    results = [_score(name, runs[name], filtered, metrics, searcher.collection.num_states, plan) for name in plan.requested]
    _test_against(results, baseline, metrics[0], trials, seed)
    collection = searcher.collection
    config = {"specs": specs, "metrics": list(metrics), "ignore_identical_ids": ignore_identical_ids,
              "trials": trials, "seed": seed, "versions": _versions()}
    return Evaluation(collection.name, collection.identity.to_dict(), tuple(metrics), baseline, len(judged), results, config, runs)


def _runs(searcher: Searcher, plan: Plan, texts: list[str], qids: list[str], depth: int, progress: bool) -> dict[str, dict[str, dict[str, float]]]:
    rankings = searcher.rankings(texts, plan, depth, progress)
    doc_ids = searcher.doc_ids
    return {
        name: {q: {doc_ids[d]: float(s) for d, s in zip(r.docs.tolist(), r.scores.tolist())} for q, r in zip(qids, rankings[name])}
        for name in plan.requested
    }


def _score(name: str, run: M.Run, qrels: M.Qrels, metrics: Sequence[str], num_states: int, plan: Plan) -> ViewResult:
    per_query = {m: M.per_query(run, qrels, m) for m in metrics}
    kind = plan.kind(name)
    layer = plan.dense[name].layers(num_states)[0] if kind == "layer" else None
    return ViewResult(name, kind, layer, {m: M.mean(v) for m, v in per_query.items()}, per_query)


def _test_against(results: list[ViewResult], baseline: str, metric: str, trials: int, seed: int) -> None:
    base = next(r for r in results if r.name == baseline)
    queries = sorted(base.per_query[metric])
    reference = np.asarray([base.per_query[metric][q] for q in queries])
    for result in results:
        if result.name == baseline:
            continue
        values = np.asarray([result.per_query[metric][q] for q in queries])
        result.p_value = randomization_test(values, reference, trials, seed)
        result.wins, result.losses, result.ties = wins_losses(values, reference)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("layerwise", "torch", "transformers", "faiss-cpu", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out
