"""Checking a collection on disk: database <-> stored vectors <-> every index, and repairing it.

``check`` compares what is cheap to compare: the database's own quick check, vector
file sizes against the committed rows, every index file against the size and
checksum it was written with and its ids against the live passages, and the rows
file beside the vectors against the database. ``--deep`` also rereads every vector
byte, and every byte of the rows and norms files, against its chunk checksum
(storage/integrity.py), runs SQLite's full integrity check and rehashes every
document's text. Exact views have no index file to check: they search the vectors.

``repair`` refuses a damaged database (it is the source of truth), cuts vector files
back to the committed rows, re-derives damaged or lost vector rows (``reencode``:
the service layer encodes the passage texts the database holds; without it, the
documents that had rows there are removed and ``index`` embeds them again), remakes
the rows and norms files from their sources where they disagree, drops
stored views whose names are no longer allowed, and rebuilds every index from the
verified vectors. Damaged vectors never reach an index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from layerwise.errors import CorruptIndex, StorageError
from layerwise.storage import ann, compaction, damage, faiss_index, integrity, rowmap
from layerwise.storage.collection import Collection
from layerwise.storage.exact import ExactIndex
from layerwise.storage.rowmap import RowState
from layerwise.storage.schema import DocumentRow, PassageRow
from layerwise.storage.views import View, all_views, rebuild_all
from layerwise.types import Document

# reencode(passage texts, layers) -> vectors (texts, layers, dim) from the collection's encoder
Reencode = Callable[[list[str], list[int]], np.ndarray]


@dataclass
class ViewCheck:
    """What one view's index holds compared with the live passages."""

    name: str
    kind: str
    ntotal: int
    ok: bool
    problem: str = ""
    recall_at_10: float | None = None
    dead: int = 0  # deleted rows an HNSW graph still holds (skipped at search time)


@dataclass
class CheckReport:
    """Problems found (empty when consistent) and per-view details."""

    collection: str
    passages: int
    vector_rows: int
    problems: list[str] = field(default_factory=list)
    views: list[ViewCheck] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    deep: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def check(collection: Collection, recall: bool = False, sample: int = 100, deep: bool = False) -> CheckReport:
    """Compare database rows, vector files and index files; optionally measure ANN recall@10 and reread every byte."""
    collection.forget_rows()
    report = CheckReport(collection.name, 0, 0, problems=database_problems(collection, deep), deep=deep)
    live = collection.live_rows()
    committed = collection.vector_rows()
    report.passages, report.vector_rows = len(live), committed
    if len(live) and (live.max() >= committed or live.min() < 0):
        report.problems.append(f"passages point at vector rows beyond the {committed} committed")
    report.problems += _vector_file_problems(collection, committed)
    if deep:
        report.problems += [d.describe() for d in vector_damage(collection, committed) if d.why == "checksum"]
    report.problems += [f"stored view {v.name!r} has a name that is no longer allowed (--repair removes it)"
                        for v in collection.stored_views(valid=False)]
    if collection.indices_stale():
        report.problems.append("indices are older than the last committed change")
    state = _check_rows(collection, committed, live, report, deep)
    for view in all_views(collection):
        report.views.append(_check_view(collection, view, state, live, recall, sample))
        if not report.views[-1].ok:
            report.problems.append(f"view {view.name}: {report.views[-1].problem}")
    return report


def _vector_file_problems(collection: Collection, committed: int) -> list[str]:
    problems = []
    for layer in range(collection.num_states):
        file = collection.vector_file(layer)
        size = file.path.stat().st_size if file.path.exists() else 0
        if size < committed * file.row_bytes:
            problems.append(f"vector file of layer {layer} holds {file.rows_on_disk()} rows, {committed} committed")
        elif size > committed * file.row_bytes:
            problems.append(f"vector file of layer {layer} has {size - committed * file.row_bytes} bytes past the "
                            f"{committed} committed rows (left by an interrupted write, or added by something else)")
    return problems


def vector_damage(collection: Collection, committed: int | None = None) -> list[integrity.Damage]:
    """Every damaged or lost range of committed vector rows, in every layer (reads every byte)."""
    committed = collection.vector_rows() if committed is None else committed
    with collection.store.sessions() as s:
        records = integrity.chunk_records(s, collection.id)
    return [d for layer in range(collection.num_states)
            for d in integrity.damaged_rows(collection.vector_file(layer), layer, committed, records.get(layer, []), deep=True)]


def database_problems(collection: Collection, deep: bool) -> list[str]:
    """Damage to the metadata database: SQLite's own check, and (deep) documents whose text no longer matches its hash."""
    store = collection.store
    return damage.problems(store.engine, store.url, deep) + (_document_problems(collection) if deep else [])


def _document_problems(collection: Collection) -> list[str]:
    """Documents whose stored title and text no longer hash to their recorded content hash."""
    with collection.store.sessions() as s:
        found = s.execute(select(DocumentRow.doc_id, DocumentRow.title, DocumentRow.text, DocumentRow.content_hash)
                          .where(DocumentRow.collection_id == collection.id))
        bad = [doc_id for doc_id, title, text, digest in found if Document(doc_id, title, text).content_hash != digest]
    if not bad:
        return []
    return [damage.message(collection.store.url, f"{len(bad)} documents' text differs from its recorded hash, e.g. {bad[0]!r}")]


def _check_rows(collection: Collection, committed: int, live: np.ndarray, report: CheckReport, deep: bool) -> RowState:
    """The rows and norms files against the database and (deep) their checksums; returns the state search would map."""
    report.problems += rowmap.problems(collection, committed, deep)
    state = RowState(collection, committed)
    if not np.array_equal(state.live, live) and not any(rowmap.ROWS_FILE in p for p in report.problems):
        report.problems.append(f"{rowmap.ROWS_FILE} marks other rows live than the database holds")
    return state


def _check_view(collection: Collection, view: View, state: RowState, live: np.ndarray, recall: bool, sample: int) -> ViewCheck:
    if ann.kind_for(collection, view, len(live)) == "flat":
        return ViewCheck(view.name, "flat", len(live), True)  # exact over the vector files: nothing more to hold
    path = collection.index_path(view.name)
    with collection.store.sessions() as s:
        changed = integrity.index_problem(s, collection.id, path.relative_to(collection.dir).as_posix(), path)
    if changed:
        return ViewCheck(view.name, "?", 0, False, changed)
    try:
        index = faiss_index.read(path, collection.name)
    except CorruptIndex as exc:
        return ViewCheck(view.name, "?", 0, False, str(exc).split(": run")[0])
    kind = faiss_index.kind_of(index)
    ids = np.sort(faiss_index.ids(index))
    dead = np.setdiff1d(ids, live)
    result = ViewCheck(view.name, kind, int(index.ntotal), True, dead=len(dead) if kind == "hnsw" else 0)
    missing = np.setdiff1d(live, ids).size
    if missing or (len(dead) and kind != "hnsw") or len(dead) > ann.HNSW_DEAD_LIMIT * max(len(ids), 1):
        result.ok, result.problem = False, f"index ids differ from the live passages ({missing} missing, {len(dead)} extra)"
    elif recall:
        result.recall_at_10 = ann_recall(collection, view, ann.AnnIndex(index, ExactIndex(collection, view, state)), sample)
    return result


def ann_recall(collection: Collection, view: View, index: ann.AnnIndex, sample: int = 100, k: int = 10) -> float:
    """Mean recall@k of an ANN view against exact search over the vector files, with stored passages as queries."""
    exact = index.exact
    live = exact.state.live
    picks = np.sort(np.random.default_rng(0).choice(live, size=min(sample, len(live)), replace=False))
    raw, _ = exact.vectors.unit_rows(picks)
    _, truth = exact.search(raw, k)  # (s, k)
    _, found = index.search(raw, k)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(truth.tolist(), found.tolist())]))


def repair(collection: Collection, reencode: Reencode | None = None) -> CheckReport:
    """Cut vector files to the committed rows, re-derive damaged rows (or drop their documents without ``reencode``),
    drop views with refused names, and rebuild every index from the verified vectors."""
    refused = database_problems(collection, deep=True)
    if refused:
        raise StorageError(refused[0])
    with collection.writing():
        compaction.recover(collection)
        repaired = _cut_extra_rows(collection)
        found = vector_damage(collection)
        if found:
            repaired += _rederive(collection, found, reencode) if reencode else _drop_damaged(collection, found)
        repaired += rowmap.repair(collection, collection.vector_rows(), vectors_changed=bool(found))
        repaired += _drop_refused_views(collection)
        rebuild_all(collection)
    report = check(collection, deep=True)
    report.repaired = repaired + ["rebuilt every index from the verified vectors"]
    return report


def _cut_extra_rows(collection: Collection) -> list[str]:
    committed = collection.vector_rows()
    cut = []
    for layer in range(collection.num_states):
        file = collection.vector_file(layer)
        if file.path.exists() and file.path.stat().st_size > committed * file.row_bytes:
            file.truncate(committed)
            cut.append(layer)
    return [f"cut the vector files of layers {', '.join(map(str, cut))} back to the {committed} committed rows"] if cut else []


def _ranges(found: list[integrity.Damage]) -> dict[tuple[int, int], list[int]]:
    """Damaged (start, rows) ranges with the layers damaged there, so each range is encoded once."""
    out: dict[tuple[int, int], list[int]] = {}
    for d in found:
        out.setdefault((d.start, d.rows), []).append(d.layer)
    return out


def _rederive(collection: Collection, found: list[integrity.Damage], reencode: Reencode) -> list[str]:
    """Re-encode the live passages of every damaged range from their stored text and write them back."""
    live = set(collection.live_rows().tolist())
    encoded = 0
    for (start, rows), layers in _ranges(found).items():
        wanted = sorted(r for r in live if start <= r < start + rows)
        info = collection.passages(wanted)
        vectors = reencode([info[r].text for r in wanted], layers) if wanted else None  # (n, len(layers), d)
        encoded += len(wanted)
        for j, layer in enumerate(layers):
            file = collection.vector_file(layer)
            block = integrity.derive_block(rows, start, wanted, collection.identity.dim, file.dtype,
                                           lambda _rows: vectors[:, j])  # type: ignore[index]
            _write_block(collection, layer, start, block)
    return [f"re-encoded {encoded} passages from their stored text for: " + "; ".join(d.describe() for d in found)]


def _drop_damaged(collection: Collection, found: list[integrity.Damage]) -> list[str]:
    """Without an encoder: remove the documents with rows in damaged ranges and blank the ranges."""
    live = collection.live_rows()
    hit = sorted({int(r) for d in found for r in live[(live >= d.start) & (live < d.start + d.rows)]})
    with collection.store.sessions() as s:
        docs = sorted(set(s.scalars(select(DocumentRow.doc_id).join(PassageRow).where(
            PassageRow.collection_id == collection.id, PassageRow.row.in_(hit))))) if hit else []
    collection.delete_documents(docs)
    for d in found:
        _write_block(collection, d.layer, d.start, np.zeros((d.rows, collection.identity.dim), collection.vector_file(d.layer).dtype))
    return [f"removed {len(docs)} documents whose vectors were lost or damaged (re-run `layerwise index` to embed them "
            "again): " + "; ".join(d.describe() for d in found)]


def _write_block(collection: Collection, layer: int, start: int, block: np.ndarray) -> None:
    integrity.write_rows(collection.vector_file(layer), start, block)
    with collection.store.sessions.begin() as s:
        integrity.replace_chunk(s, collection.id, layer, start, block)


def _drop_refused_views(collection: Collection) -> list[str]:
    refused = [v.name for v in collection.stored_views(valid=False)]
    if refused:
        collection.delete_views(refused)
        return [f"removed stored views whose names are no longer allowed: {', '.join(map(repr, refused))}"]
    return []
