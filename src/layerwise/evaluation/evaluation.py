"""Evaluating views on labelled queries: one query encoding, every view, paired significance.

A view spec is a layer selection (one view per layer), a mix, a stored view
name, ``bm25``, or a fusion ``rrf(a | b)`` / ``fuse(a:0.3 | b:0.7)`` of those.
Each view is scored per query; each is tested against the baseline (the last
layer, or ``baseline``) with a paired randomization test on the first metric,
the p-values are corrected across the views (Holm by default, or
Benjamini-Hochberg, or none), and every view's mean of every metric gets a 95%
paired bootstrap interval over queries. The best-view marker goes only to a
view significantly better than the baseline after correction.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from layerwise.errors import InputError, UsageError
from layerwise.evaluation import metrics as M
from layerwise.evaluation.significance import CORRECTIONS, adjust, bootstrap_means, percentile_interval, randomization_test, wins_losses
from layerwise.layers import BM25_PASSAGES
from layerwise.search.plan import BM25, STORED, Plan
from layerwise.search.searcher import Searcher
from layerwise.storage.report import passage_split

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100", "p@10")
STANDARD_MIXES = ("mean(-4:)", "mean(-4:; raw)", "firstlast()", "concat(-2:)")


def default_specs(with_bm25: bool = True) -> list[str]:
    """Every layer, the standard mixes, stored views, RRF over all layers; BM25 (documents, passages) and its fusion where FTS5 is there."""
    lexical = [BM25, BM25_PASSAGES, f"rrf({BM25} | -1)"] if with_bm25 else []
    return ["all", *STANDARD_MIXES, STORED, "rrf(all)", *lexical]


@dataclass
class ViewResult:
    """One view's scores: per-query values, means and bootstrap CIs per metric, and its test against the baseline.

    ``p_value`` is the raw paired randomization-test p on the first metric,
    ``p_adjusted`` the same after the run's correction across all views tested
    against the baseline; ``significant`` is ``p_adjusted < alpha``.
    """

    name: str
    kind: str
    layer: int | None
    means: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(repr=False)
    ci: dict[str, list[float]] = field(default_factory=dict)
    p_value: float | None = None
    p_adjusted: float | None = None
    significant: bool = False
    wins: int = 0
    losses: int = 0
    ties: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ViewResult":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "per_query"},
                   per_query=dict(data.get("per_query") or {}))


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
    warnings: list[str] = field(default_factory=list)
    corpus: dict[str, Any] = field(default_factory=dict)

    @property
    def correction(self) -> str:
        return str(self.config.get("correction", "none"))

    @property
    def alpha(self) -> float:
        return float(self.config.get("alpha", 0.05))

    def best(self, metric: str | None = None) -> str | None:
        """The view with the highest mean among those significantly better than the baseline, else None.

        Significance is tested on the first metric only, so the marker is given on it only.
        """
        metric = metric or self.metrics[0]
        if metric != self.metrics[0]:
            return None
        base = self.view(self.baseline).means[metric]
        better = [v for v in self.views if v.significant and v.means[metric] > base]
        return max(better, key=lambda v: v.means[metric]).name if better else None

    def verdict(self) -> str:
        """One line: the best view and its adjusted p, or that no view beats the baseline significantly."""
        best, metric = self.best(), self.metrics[0]
        how = f"{self.correction}-adjusted" if self.correction != "none" else "uncorrected"
        if best is None:
            return f"no view beats {self.baseline} significantly on {metric} ({how} p < {self.alpha:g})"
        view = self.view(best)
        return f"best {metric}: {best}, above {self.baseline} with {how} p = {view.p_adjusted:.4f}"

    def view(self, name: str) -> ViewResult:
        found = next((v for v in self.views if v.name == name), None)
        if found is None:
            raise UsageError(f"no view '{name}' in this evaluation (views: {', '.join(v.name for v in self.views)})")
        return found

    def to_dict(self, per_query: bool = False) -> dict[str, Any]:
        views = [asdict(v) for v in self.views]
        for view in views if not per_query else []:
            view.pop("per_query")
        return {"collection": self.collection, "model": self.model, "metrics": list(self.metrics), "baseline": self.baseline,
                "queries": self.queries, "correction": self.correction, "alpha": self.alpha, "best": self.best(),
                "verdict": self.verdict(), "corpus": self.corpus, "warnings": self.warnings, "views": views, "config": self.config}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Evaluation":
        """An evaluation back from :meth:`to_dict` (a stored run); TREC runs are not stored."""
        return cls(data["collection"], data["model"], tuple(data["metrics"]), data["baseline"], data["queries"],
                   [ViewResult.from_dict(v) for v in data["views"]], dict(data.get("config") or {}),
                   warnings=list(data.get("warnings") or []), corpus=dict(data.get("corpus") or {}))


Notify = Callable[[str], None]


def evaluate(
    searcher: Searcher,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    specs: Sequence[str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    baseline: str = "-1",
    correction: str = "holm",
    alpha: float = 0.05,
    ignore_identical_ids: bool = False,
    trials: int = 10_000,
    bootstrap: int = 10_000,
    seed: int = 0,
    strict: bool = False,
    progress: bool = False,
    notify: Notify | None = None,
) -> Evaluation:
    """Score every view on the judged queries; test each against the baseline, with corrected p-values and CIs.

    ``notify`` receives a line at each stage (the CLI prints them on stderr whatever the output format).
    """
    _check_options(metrics, correction, alpha, trials, bootstrap)
    say = notify or (lambda _line: None)
    collection = searcher.collection
    warnings = mismatches(qrels, queries, set(searcher.doc_ids.values()), collection.name)
    if warnings and strict:
        raise InputError("; ".join(warnings) + " (--strict)")
    judged = [q for q in qrels if q in queries and any(g > 0 for g in qrels[q].values())]
    if not judged:
        raise UsageError("no query has both a text in --queries and a relevant judgement in --qrels: check that their ids match")
    specs = list(specs or default_specs(collection.store.is_sqlite))
    plan = searcher.plan(specs)
    base = _baseline(plan, baseline)
    say(f"evaluating {len(judged)} queries on {len(plan.requested)} views of {collection.name}: encoding queries and ranking")
    started = time.perf_counter()
    runs = _runs(searcher, plan, [queries[q] for q in judged], judged, max(M.parse_metric(m)[1] for m in metrics), progress)
    if ignore_identical_ids:
        runs = {v: {q: {d: s for d, s in run[q].items() if d != q} for q in run} for v, run in runs.items()}
    say(f"ranked in {time.perf_counter() - started:.1f}s; scoring, testing ({trials} trials) and bootstrap ({bootstrap} resamples)")
    filtered = {q: qrels[q] for q in judged}
    results = [_score(name, runs[name], filtered, metrics, collection.num_states, plan) for name in plan.requested]
    _test_against(results, base, metrics[0], trials, seed, correction, alpha)
    _intervals(results, metrics, bootstrap, seed)
    config = {"specs": specs, "metrics": list(metrics), "baseline": base, "correction": correction, "alpha": alpha,
              "ignore_identical_ids": ignore_identical_ids, "trials": trials, "bootstrap": bootstrap, "seed": seed,
              "versions": _versions()}
    return Evaluation(collection.name, collection.identity.to_dict(), tuple(metrics), base, len(judged), results, config, runs,
                      warnings, passage_split(collection))


def _check_options(metrics: Sequence[str], correction: str, alpha: float, trials: int, bootstrap: int) -> None:
    for metric in metrics:
        M.parse_metric(metric)
    if correction not in CORRECTIONS:
        raise UsageError(f"unknown correction '{correction}': use {', '.join(CORRECTIONS)}")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha {alpha} must be between 0 and 1")
    if trials < 1:
        raise UsageError(f"--trials {trials} must be at least 1 (the randomization test needs trials to give a p-value)")
    if bootstrap < 1:
        raise UsageError(f"--bootstrap {bootstrap} must be at least 1 resample")


def _baseline(plan: Plan, spec: str) -> str:
    """The one view the others are tested against."""
    names = plan.add(spec)
    if len(names) != 1:
        raise UsageError(f"--baseline '{spec}' stands for {len(names)} views ({', '.join(names[:4])}...): give one view, e.g. -1 or bm25")
    return names[0]


def mismatches(qrels: Mapping[str, Mapping[str, int]], queries: Mapping[str, str], doc_ids: set[str], collection: str) -> list[str]:
    """Warnings for qrels that name queries missing from the queries file or documents missing from the collection."""
    out = []
    lost_queries = sorted(q for q in qrels if q not in queries)
    if lost_queries:
        out.append(f"qrels name {len(lost_queries)} of {len(qrels)} queries that are not in the queries file "
                   f"(first: {', '.join(lost_queries[:5])}); they are left out")
    judged = {d for judged in qrels.values() for d, g in judged.items() if g > 0}
    lost_docs = sorted(judged - doc_ids)
    if lost_docs:
        out.append(f"qrels name {len(lost_docs)} of {len(judged)} relevant documents that are not in collection '{collection}' "
                   f"(first: {', '.join(lost_docs[:5])}); no view can retrieve them, so every score is capped: "
                   "check the document ids and that the whole corpus was indexed")
    return out


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


def _test_against(results: list[ViewResult], baseline: str, metric: str, trials: int, seed: int, correction: str, alpha: float) -> None:
    """Paired randomization test of every view against the baseline on ``metric``, then the correction across them."""
    base = next(r for r in results if r.name == baseline)
    queries = sorted(base.per_query[metric])
    reference = np.asarray([base.per_query[metric][q] for q in queries])
    tested = [r for r in results if r.name != baseline]
    for result in tested:
        values = np.asarray([result.per_query[metric][q] for q in queries])
        result.p_value = randomization_test(values, reference, trials, seed)
        result.wins, result.losses, result.ties = wins_losses(values, reference)
    for result, adjusted in zip(tested, adjust([r.p_value for r in tested], correction)):  # type: ignore[misc]
        result.p_adjusted = adjusted
        result.significant = adjusted < alpha


def _intervals(results: list[ViewResult], metrics: Sequence[str], resamples: int, seed: int) -> None:
    """95% paired bootstrap intervals of every view's mean of every metric (one query draw for all of them)."""
    queries = sorted(results[0].per_query[metrics[0]])
    columns = [(r, m) for r in results for m in metrics]
    values = np.asarray([[r.per_query[m][q] for r, m in columns] for q in queries])  # (q, views x metrics)
    interval = percentile_interval(bootstrap_means(values, resamples, seed))  # (views x metrics, 2)
    for (result, metric), (low, high) in zip(columns, interval.tolist()):
        result.ci[metric] = [low, high]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("layerwise", "torch", "transformers", "faiss-cpu", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out
