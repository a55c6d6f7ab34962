"""Keeping evaluation runs: stored in the database with per-query metrics; listed, shown, compared and exported.

``diff`` puts two runs side by side: for every view they share, both means of a
metric, the difference, and a paired randomization test over the queries both
runs scored (corrected across the shared views like an evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

import numpy as np

from layerwise.errors import UsageError
from layerwise.evaluation.datasets import write_trec_run
from layerwise.evaluation.evaluation import Evaluation
from layerwise.evaluation.significance import adjust, randomization_test, wins_losses
from layerwise.storage.collection import Collection, Store
from layerwise.storage.schema import CollectionRow, EvalRunRow


def save_run(collection: Collection, evaluation: Evaluation) -> int:
    """Store config, versions and per-view metrics; return the run id."""
    with collection.store.sessions.begin() as s:
        row = EvalRunRow(collection_id=collection.id, config=evaluation.config, results=evaluation.to_dict(per_query=True))
        s.add(row)
        s.flush()
        return int(row.id)


def write_runs(evaluation: Evaluation, folder: Path) -> list[str]:
    """Per-view TREC run files from the per-query rankings kept on the evaluation; ids with whitespace are encoded and said so."""
    folder.mkdir(parents=True, exist_ok=True)
    written, encoded = [], 0
    for name, run in evaluation.runs.items():
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        encoded = max(encoded, write_trec_run(folder / f"{safe}.run", run, safe))
        written.append(str(folder / f"{safe}.run"))
    if encoded:
        evaluation.warnings.append(
            f"{encoded} query or document ids contain whitespace, which TREC run files cannot hold: the runs in {folder} "
            "percent-encode '%' and whitespace in every id (space -> %20); encode the qrels' ids the same way for trec_eval")
    return written


def list_runs(collection: Collection) -> list[dict[str, Any]]:
    """Every stored evaluation run of a collection, newest first, as stored."""
    with collection.store.sessions() as s:
        rows = s.scalars(select(EvalRunRow).where(EvalRunRow.collection_id == collection.id).order_by(EvalRunRow.id.desc()))
        return [{"run_id": r.id, "created_at": r.created_at.isoformat(), **r.results} for r in rows]


@dataclass
class StoredRun:
    """One stored evaluation run: its id, when, its collection, and the evaluation itself."""

    run_id: int
    created_at: str
    collection: str
    evaluation: Evaluation

    def summary(self) -> dict[str, Any]:
        e = self.evaluation
        first = e.metrics[0]
        return {"run_id": self.run_id, "created_at": self.created_at, "collection": self.collection, "queries": e.queries,
                "views": len(e.views), "baseline": e.baseline, "metric": first,
                "baseline_mean": e.view(e.baseline).means[first], "best": e.best(), "verdict": e.verdict()}


def stored_runs(store: Store, collection: str | None = None) -> list[StoredRun]:
    """Every stored run, newest first; only the named collection's when one is given."""
    query = select(EvalRunRow, CollectionRow.name).join(CollectionRow, CollectionRow.id == EvalRunRow.collection_id)
    if collection is not None:
        store.open(collection)  # an unknown name gets its clear error
        query = query.where(CollectionRow.name == collection)
    with store.sessions() as s:
        rows = s.execute(query.order_by(EvalRunRow.id.desc())).all()
    return [_stored(row, name) for row, name in rows]


def load_run(store: Store, run_id: int) -> StoredRun:
    """One stored run by id, or a clear error naming the runs there are."""
    with store.sessions() as s:
        found = s.execute(select(EvalRunRow, CollectionRow.name).join(CollectionRow, CollectionRow.id == EvalRunRow.collection_id)
                          .where(EvalRunRow.id == int(run_id))).first()
        known = list(s.scalars(select(EvalRunRow.id).order_by(EvalRunRow.id.desc()).limit(10)))
    if found is None:
        listed = ", ".join(map(str, known)) or "none yet: run `layerwise evaluate`"
        raise UsageError(f"no evaluation run {run_id} (latest runs: {listed}); `layerwise runs list` shows them")
    return _stored(*found)


def _stored(row: EvalRunRow, collection: str) -> StoredRun:
    return StoredRun(int(row.id), row.created_at.isoformat(), collection, Evaluation.from_dict(row.results))


@dataclass
class ViewDiff:
    """One view in two runs: both means, the paired test over their common queries."""

    view: str
    mean_a: float
    mean_b: float
    p_value: float
    p_adjusted: float
    wins: int
    losses: int

    @property
    def delta(self) -> float:
        return self.mean_b - self.mean_a


@dataclass
class RunDiff:
    """Two runs side by side on one metric."""

    run_a: int
    run_b: int
    metric: str
    queries: int
    correction: str
    views: list[ViewDiff]
    only_a: list[str]
    only_b: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"run_a": self.run_a, "run_b": self.run_b, "metric": self.metric, "common_queries": self.queries,
                "correction": self.correction, "only_in_a": self.only_a, "only_in_b": self.only_b,
                "views": [{**v.__dict__, "delta": v.delta} for v in self.views]}


def diff_runs(a: StoredRun, b: StoredRun, metric: str | None = None, *, trials: int = 10_000, seed: int = 0,
              correction: str = "holm") -> RunDiff:
    """Every view both runs scored: means, difference, paired randomization test (b against a) over common queries."""
    metric = metric or a.evaluation.metrics[0]
    for run in (a, b):
        if metric not in run.evaluation.metrics:
            raise UsageError(f"run {run.run_id} has no {metric} (it has {', '.join(run.evaluation.metrics)}): pick one with --metric")
        if not all(v.per_query for v in run.evaluation.views):
            raise UsageError(f"run {run.run_id} was stored without per-query metrics (an older layerwise): evaluate again to diff it")
    names_a = [v.name for v in a.evaluation.views]
    names_b = {v.name for v in b.evaluation.views}
    shared = [n for n in names_a if n in names_b]
    queries = sorted(set(a.evaluation.views[0].per_query[metric]) & set(b.evaluation.views[0].per_query[metric]))
    if not shared or not queries:
        raise UsageError(f"runs {a.run_id} and {b.run_id} share no view or no query: nothing to compare")
    views = []
    for name in shared:
        x = np.asarray([a.evaluation.view(name).per_query[metric][q] for q in queries])
        y = np.asarray([b.evaluation.view(name).per_query[metric][q] for q in queries])
        wins, losses, _ = wins_losses(y, x)
        views.append(ViewDiff(name, float(x.mean()), float(y.mean()), randomization_test(y, x, trials, seed), 1.0, wins, losses))
    for view, adjusted in zip(views, adjust([v.p_value for v in views], correction)):
        view.p_adjusted = adjusted
    return RunDiff(a.run_id, b.run_id, metric, len(queries), correction, views,
                   [n for n in names_a if n not in names_b], sorted(names_b - set(names_a)))
