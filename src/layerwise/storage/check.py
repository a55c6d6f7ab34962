"""Checking a collection on disk: database <-> stored vectors <-> every index, and repairing it.

Repair never needs the encoder: vector files are cut back to the committed
rows, documents whose vectors were lost are removed (re-run ``index`` to embed
them again), and every index is rebuilt from the stored vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from layerwise.errors import CorruptIndex
from layerwise.storage import faiss_index
from layerwise.storage.collection import Collection
from layerwise.storage.views import View, all_views, matrix, rebuild_all


@dataclass
class ViewCheck:
    """What one view's index holds compared with the live passages."""

    name: str
    kind: str
    ntotal: int
    ok: bool
    problem: str = ""
    recall_at_10: float | None = None


@dataclass
class CheckReport:
    """Problems found (empty when consistent) and per-view details."""

    collection: str
    passages: int
    vector_rows: int
    problems: list[str] = field(default_factory=list)
    views: list[ViewCheck] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(collection: Collection, recall: bool = False, sample: int = 100) -> CheckReport:
    """Compare database rows, vector files and index files; optionally measure ANN recall@10."""
    collection.forget_rows()
    live = collection.live_rows()
    committed = collection.vector_rows()
    report = CheckReport(collection.name, len(live), committed)
    if len(live) and (live.max() >= committed or live.min() < 0):
        report.problems.append(f"passages point at vector rows beyond the {committed} committed")
    for layer in range(collection.num_states):
        on_disk = collection.vector_file(layer).rows_on_disk()
        if on_disk < committed:
            report.problems.append(f"vector file of layer {layer} holds {on_disk} rows, {committed} committed")
    if collection.indices_stale():
        report.problems.append("indices are older than the last committed change")
    for view in all_views(collection):
        report.views.append(_check_view(collection, view, live, recall, sample))
        if not report.views[-1].ok:
            report.problems.append(f"view {view.name}: {report.views[-1].problem}")
    return report


def _check_view(collection: Collection, view: View, live: np.ndarray, recall: bool, sample: int) -> ViewCheck:
    try:
        index = faiss_index.read(collection.index_path(view.name), collection.name)
    except CorruptIndex as exc:
        return ViewCheck(view.name, "?", 0, False, str(exc).split(": run")[0])
    kind = faiss_index.kind_of(index)
    ids = np.sort(faiss_index.ids(index))
    result = ViewCheck(view.name, kind, int(index.ntotal), True)
    if not np.array_equal(ids, live):
        missing, extra = np.setdiff1d(live, ids).size, np.setdiff1d(ids, live).size
        result.ok, result.problem = False, f"index ids differ from the live passages ({missing} missing, {extra} extra)"
    elif recall and kind != "flat":
        result.recall_at_10 = ann_recall(collection, view, index, sample)
    return result


def ann_recall(collection: Collection, view: View, index: Any, sample: int = 100, k: int = 10) -> float:
    """Mean recall@k of an ANN index against exact search, with stored passages as queries."""
    rows, vectors = matrix(collection, view)
    unit = faiss_index.normalize(vectors)
    picks = np.random.default_rng(0).choice(len(rows), size=min(sample, len(rows)), replace=False)
    exact = rows[np.argsort(-(unit[picks] @ unit.T), axis=1)[:, :k]]  # (s, k)
    _, found = faiss_index.search(index, unit[picks], k)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(exact.tolist(), found.tolist())]))


def repair(collection: Collection) -> CheckReport:
    """Cut vector files to what every layer holds, drop documents that lost vectors, rebuild every index."""
    with collection.writing():
        repaired = _truncate_to_shortest(collection)
        collection.prepare_write()
        rebuild_all(collection)
    report = check(collection)
    report.repaired = repaired + ["rebuilt every index from the stored vectors"]
    return report


def _truncate_to_shortest(collection: Collection) -> list[str]:
    committed = collection.vector_rows()
    shortest = min(collection.vector_file(i).rows_on_disk() for i in range(collection.num_states))
    if shortest >= committed:
        return []
    lost = collection.documents_with_rows_from(shortest)
    collection.delete_documents(lost)
    collection.set_vector_rows(shortest)
    return [f"removed {len(lost)} documents whose vectors were lost (re-run `layerwise index` to embed them again)"]
