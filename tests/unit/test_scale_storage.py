"""The rows file, exact search over mapped vectors, in-place index updates, IDSelector filtering and compaction.

No model: a fake identity (3 hidden states of dimension 16) and random vectors.
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import event

from layerwise.search.searcher import Searcher
from layerwise.storage import ann, bm25, check as checking, compaction, exact, faiss_index, integrity, rowmap
from layerwise.storage.collection import Collection, Store
from layerwise.storage.exact import ExactIndex
from layerwise.storage.rowmap import RowState
from layerwise.storage.views import all_views, layer_views, update_all
from layerwise.errors import UsageError
from layerwise.types import Document, LayerEmbeddings, ModelIdentity, Passage

IDENTITY = ModelIdentity("fake", "abc", "tok", "mean", 16, 3, 16)


def _add(col: Collection, start: int, n: int, seed: int = 0, passages_each: int = 1, replace: bool = False) -> np.ndarray:
    docs = [Document(f"d{i}", "", f"text {i} word{i % 7}") for i in range(start, start + n)]
    parts = [[Passage(j, f"{d.text} part {j}", 0, 5) for j in range(passages_each)] for d in docs]
    vectors = np.random.default_rng(seed).normal(size=(n * passages_each, 3, 16)).astype(np.float32)
    col.commit_batch(docs, parts, vectors, replace=[d.doc_id for d in docs] if replace else ())
    return vectors


def _state(col: Collection) -> RowState:
    return RowState(col, col.vector_rows())


def _brute(col: Collection, layer: int, queries: np.ndarray, k: int) -> np.ndarray:
    state = _state(col)
    vectors = np.asarray(col.layer_vectors(layer), dtype=np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = faiss_index.normalize(queries) @ unit.T
    scores[:, np.asarray(state.keys) < 0] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_rows_file_follows_commits_replaces_and_deletes(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY)
    vectors = _add(col, 0, 4, passages_each=2)
    _add(col, 0, 1, seed=1, replace=True)  # d0 re-encoded: its two old rows die
    assert col.delete_documents(["d2"]) == 1
    keys = np.asarray(_state(col).keys)
    names = col.document_names()
    assert [names.get(k, "-") for k in keys.tolist()] == ["-", "-", "d1", "d1", "-", "-", "d3", "d3", "d0"]
    np.testing.assert_array_equal(_state(col).live, np.sort(col.live_rows()))
    norms = np.asarray(_state(col).norms)
    np.testing.assert_allclose(norms[:8], np.linalg.norm(vectors, axis=2), rtol=1e-6)


def test_writer_cuts_crash_leftovers_and_remakes_a_rows_file_that_missed_a_delete(tmp_path, monkeypatch):
    col = Store(home=tmp_path).create("c", IDENTITY)
    _add(col, 0, 5)
    rowmap.row_file(col).append(np.full((3, 1), 7, np.int64))  # rows appended, then killed before the commit
    rowmap.norm_file(col).append(np.ones((2, 3), np.float32))
    with monkeypatch.context() as m:
        m.setattr(rowmap, "mark_dead", lambda *a: None)  # killed between a delete's commit and its marks
        col.delete_documents(["d1"])
    assert 1 in _state(col).live  # not yet repaired: searches drop it when its passage is gone
    assert col.prepare_write() == 5
    assert rowmap.row_file(col).rows_on_disk() == 5 and rowmap.norm_file(col).rows_on_disk() == 5
    assert _state(col).live.tolist() == [0, 2, 3, 4]
    update_all(col)
    assert checking.check(col, deep=True).ok  # the remade rows file was checksummed again


def test_rows_and_norms_files_are_checksummed_through_appends_deletes_and_compaction(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY)
    _add(col, 0, 1500)
    _add(col, 1500, 700, seed=1)
    col.delete_documents([f"d{i}" for i in range(0, 2200, 3)])  # marks in both batches' chunks
    update_all(col)
    report = checking.check(col, deep=True)
    assert report.ok, report.problems  # the delete committed the digests its marks give the rows file
    with col.writing():
        col.prepare_write()
        compaction.compact(col, all_views(col))
    update_all(col)
    report = checking.check(col, deep=True)
    assert report.ok, report.problems  # compaction recorded the digests of every file it rewrote
    with col.store.sessions() as s:
        records = integrity.chunk_records(s, col.id)
    assert sorted(records) == [rowmap.NORMS_LAYER, rowmap.ROWS_LAYER, 0, 1, 2]
    assert all(sum(rows for _, rows, _ in records[layer]) == col.vector_rows() == 1466 for layer in records)


@pytest.mark.parametrize("which", ["rows", "norms"])
def test_check_finds_a_changed_rows_or_norms_file_and_repair_remakes_it(tmp_path, which):
    col = Store(home=tmp_path).create("c", IDENTITY)
    _add(col, 0, 50)
    update_all(col)
    before = _state(col)
    keys, norms = np.array(before.keys), np.array(before.norms)
    file = rowmap.row_file(col) if which == "rows" else rowmap.norm_file(col)
    data = bytearray(file.path.read_bytes())
    data[10 * file.row_bytes + 1] ^= 0x40  # row 10: another document, or another norm
    file.path.write_bytes(bytes(data))
    cheap, deep = checking.check(col), checking.check(col, deep=True)
    assert not deep.ok and any(file.path.name in p for p in deep.problems)
    assert cheap.ok == (which == "norms")  # the rows file is compared with the database; norms only by checksum
    repaired = checking.repair(col)
    assert repaired.ok and any(f"remade {file.path.name}" in r for r in repaired.repaired)
    np.testing.assert_array_equal(_state(col).keys, keys)
    np.testing.assert_array_equal(_state(col).norms, norms)


def test_reader_of_an_older_collection_maps_rows_from_the_database(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY)
    _add(col, 0, 3)
    col.delete_documents(["d0"])
    rowmap.row_file(col).path.unlink()
    rowmap.norm_file(col).path.unlink()
    state = _state(col)
    assert state.live.tolist() == [1, 2] and state.norms is None
    queries = np.random.default_rng(5).normal(size=(2, 16)).astype(np.float32)
    _, rows = ExactIndex(col, layer_views(3)[1], state).search(queries, 2)
    np.testing.assert_array_equal(rows, _brute(col, 1, queries, 2))
    col.prepare_write()  # the first writer makes both files
    assert rowmap.row_file(col).rows_on_disk() == 3 and rowmap.norm_file(col).rows_on_disk() == 3


def test_a_reader_searching_again_scans_an_8bit_copy_with_the_same_results(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY)
    _add(col, 0, 2000)
    col.delete_documents([f"d{i}" for i in range(0, 2000, 5)])
    index = ExactIndex(col, layer_views(3)[2], _state(col))
    queries = np.random.default_rng(3).normal(size=(40, 16)).astype(np.float32)
    first = index.search(queries[:1], 30)
    assert index._quantized is None  # a one-shot search reads the mapped rows only
    for query in queries:
        scores, rows = index.search(query[None], 30)
        expected_scores, expected_rows = index._scan(query[None], 30)
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    assert index._quantized is not None and index._quantized.ntotal == 1600
    np.testing.assert_array_equal(first[1], index.search(queries[:1], 30)[1])
    np.testing.assert_array_equal(index.search(queries[:1], 30)[1], _brute(col, 2, queries[:1], 30))


def test_an_evaluation_batch_scans_the_mapped_rows(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY)
    _add(col, 0, 300)
    index = ExactIndex(col, layer_views(3)[1], _state(col))
    queries = np.random.default_rng(4).normal(size=(10, 16)).astype(np.float32)
    for _ in range(3):
        _, rows = index.search(queries, 5)
    assert index._quantized is None
    np.testing.assert_array_equal(rows, _brute(col, 1, queries, 5))


@pytest.mark.parametrize("seed", range(4))
def test_quantized_rows_widen_the_candidates_until_the_bound_proves_the_top_n(seed: int):
    """A cluster of 500 rows closer together than the 8-bit error among 2,500 spread ones: the first 2n candidates
    cannot be proven, the search widens past the cluster and still returns the exact top n."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=16).astype(np.float32)
    spread = rng.normal(size=(2500, 16)).astype(np.float32)
    cluster = base + rng.normal(scale=3e-3, size=(500, 16)).astype(np.float32)  # score gaps ~1e-6: no float ties
    unit = faiss_index.normalize(np.concatenate([spread, cluster]))
    rows = np.arange(3000, dtype=np.int64) * 2  # rows of the file are not positions in the copy
    quantized = exact.QuantizedRows(rows, unit)
    asked: list[int] = []

    def scores_of(query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        asked.append(len(candidates))
        return unit[candidates // 2] @ query

    query = faiss_index.normalize(base[None] + rng.normal(scale=0.3, size=(1, 16)).astype(np.float32))  # gaps >> float ulp
    got_scores, got_rows = quantized.search(query, 25, scores_of)
    expected = np.argsort(-(unit @ query[0]), kind="stable")[:25]
    np.testing.assert_array_equal(got_rows[0], rows[expected])
    np.testing.assert_allclose(got_scores[0], (unit @ query[0])[expected], atol=1e-6)
    assert asked[0] == 89 and len(asked) > 1  # max(2n, n + 64) first, then wider


@pytest.mark.parametrize("seed", range(3))
def test_the_8bit_scores_are_within_the_error_bound_of_the_exact_ones(seed: int):
    """Every row's 8-bit scan score lies within ``error`` of its float64 exact score, for rows and queries of
    real-embedding shape (384 dimensions, offset from the origin as sentence embeddings are). FAISS 1.15.1's
    QT_8bit_direct scans returned 0 for every row from 32 dimensions on (a 16-dimension test passed), and the
    search took the first candidates as proven: this is the check that caught it."""
    rng = np.random.default_rng(seed)
    unit = faiss_index.normalize(rng.normal(loc=0.3, size=(2000, 384)).astype(np.float32))
    quantized = exact.QuantizedRows(np.arange(2000, dtype=np.int64), unit)
    query = faiss_index.normalize(rng.normal(loc=0.3, size=(1, 384)).astype(np.float32))
    approx, labels = quantized.index.search(query, 2000)  # (1, 2000) each
    exact_scores = unit[labels[0]].astype(np.float64) @ query[0].astype(np.float64)
    assert np.abs(approx[0] - exact_scores).max() <= quantized.error
    assert quantized.error < 0.05  # 8 bits a dimension: the bound stays useful


def test_a_collection_refuses_more_passages_than_its_cap(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY, max_passages=1)
    _add(col, 0, 3)
    with pytest.raises(UsageError, match="more than this collection's 1 passages"):
        _add(col, 3, 2, passages_each=2)
    assert col.vector_rows() == 3 and len(col.document_names()) == 3  # nothing of the refused batch


def test_the_8bit_pass_drops_rows_deleted_after_its_copy_was_made(tmp_path):
    """The copy is made from the live rows of the searcher's state; a delete marks rows dead in the mapped rows
    file afterwards, and the exact rescoring must not let them take places (the last top-k came back short)."""
    col = Store(home=tmp_path).create("c", IDENTITY)
    vectors = _add(col, 0, 1000)  # 8 x 74 first candidates <= 1,000 rows: the 8-bit pass serves a top 10
    state = _state(col)
    index = ExactIndex(col, layer_views(3)[2], state)
    query = vectors[:1, 2]
    index.search(query, 10)
    index.search(query, 10)  # the second search makes the 8-bit copy
    assert index._quantized is not None
    top = index.search(query, 10)[1][0]
    col.delete_documents(["d0"])  # row 0, the query's own vector, is the best hit
    assert top[0] == 0 and state(np.array([0]))[0] < 0  # the reader's mapped rows file sees the delete
    scores, rows = index.search(query, 10)
    assert 0 not in rows[0] and (rows[0] >= 0).all() and np.isfinite(scores[0]).all()


def test_exact_search_over_mapped_files_equals_brute_force_and_skips_dead_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(exact, "CHUNK", 64)  # several blocks
    col = Store(home=tmp_path).create("c", IDENTITY)
    _add(col, 0, 300)
    col.delete_documents([f"d{i}" for i in range(0, 300, 3)])
    queries = np.random.default_rng(9).normal(size=(5, 16)).astype(np.float32)
    scores, rows = ExactIndex(col, layer_views(3)[2], _state(col)).search(queries, 20)
    np.testing.assert_array_equal(rows, _brute(col, 2, queries, 20))
    assert not np.isin(rows, np.arange(0, 300, 3)).any() and np.all(np.diff(scores, axis=1) <= 0)


def _centroids(index) -> np.ndarray:
    return index.quantizer.reconstruct_n(0, index.nlist)


@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_ivf_views_remove_and_add_ids_in_place(tmp_path, kind):
    col = Store(home=tmp_path).create("c", IDENTITY)
    col.set_index_type(kind)
    _add(col, 0, 1500)
    update_all(col)
    view = layer_views(3, kind)[0]
    path = col.index_path(view.name)
    trained = _centroids(faiss_index.read(path))
    col.delete_documents([f"d{i}" for i in range(100)])
    _add(col, 1500, 50, seed=3)
    assert ann.update(col, view, _state(col)) == "updated"
    index = faiss_index.read(path)
    np.testing.assert_array_equal(np.sort(faiss_index.ids(index)), _state(col).live)
    np.testing.assert_array_equal(_centroids(index), trained)  # same centroids: not rebuilt
    assert ann.update(col, view, _state(col)) == "kept"


def test_fast_scan_codes_added_after_a_remove_equal_those_of_a_fresh_index():
    faiss = faiss_index._faiss()
    rng = np.random.default_rng(5)
    unit = faiss_index.normalize(rng.normal(size=(6000, 32)).astype(np.float32))
    trained = faiss.serialize_index(faiss_index.empty("ivfpq", 32, 6000, unit[:3000]))
    dead = np.sort(rng.choice(5000, 700, replace=False))
    changed = faiss.deserialize_index(trained)
    faiss_index.add(changed, np.arange(5000), unit[:5000])
    assert faiss_index.remove(changed, dead) == 700
    faiss_index.add(changed, np.arange(5000, 6000), unit[5000:])  # packed into the lists' last blocks
    keep = np.r_[np.setdiff1d(np.arange(5000), dead), np.arange(5000, 6000)]
    fresh = faiss.deserialize_index(trained)
    faiss_index.add(fresh, keep, unit[keep])
    params = faiss_index.probing(changed.nlist)
    a = faiss_index.search(changed, unit[:300:7], 50, params)
    b = faiss_index.search(fresh, unit[:300:7], 50, params)
    np.testing.assert_array_equal(a[0], b[0])  # every code scores as in a clean build


def test_an_ivfpq_file_of_the_earlier_layout_is_rebuilt_and_ivfpq_scores_are_exact_inner_products(tmp_path):
    faiss = faiss_index._faiss()
    col = Store(home=tmp_path).create("c", IDENTITY)
    col.set_index_type("ivfpq")
    vectors = _add(col, 0, 1200)
    view = layer_views(3, "ivfpq")[1]
    unit = faiss_index.normalize(vectors[:, 1])
    old = faiss.IndexIVFPQ(faiss.IndexFlatIP(16), 16, 34, 4, 8, faiss.METRIC_INNER_PRODUCT)  # 8-bit codes, inner product
    old.train(unit)
    faiss_index.add(old, np.arange(1200), unit)
    path = col.index_path(view.name)
    col.record_index(path, faiss_index.write_atomic(old, path))
    assert faiss_index.kind_of(old) == "ivfpq" and not faiss_index.current(old)
    assert ann.update(col, view, _state(col)) == "built"
    assert faiss_index.current(faiss_index.read(path)) and ann.update(col, view, _state(col)) == "kept"
    update_all(col)  # the other views, and the collection marked indexed
    index = Searcher(col, lambda _: None).index(view)
    scores, rows = index.search(vectors[:5, 1], 3)
    np.testing.assert_array_equal(rows[:, 0], np.arange(5))
    np.testing.assert_allclose(scores, np.take_along_axis(unit[:5] @ unit.T, rows, axis=1), rtol=1e-5, atol=1e-6)
    approximate, _ = faiss_index.search(index.index, vectors[:5, 1], 3)  # the codes' own scores: L2 distances read as q.x
    assert np.all(np.diff(approximate, axis=1) <= 0) and np.all(np.abs(approximate) <= 1.5)


def test_hnsw_skips_dead_ids_with_an_id_selector_until_10_percent_are_dead(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY)
    col.set_index_type("hnsw")
    vectors = _add(col, 0, 200)
    update_all(col)
    view = layer_views(3, "hnsw")[1]
    col.delete_documents(["d5", "d6"])
    assert ann.update(col, view, _state(col)) == "kept"  # the graph keeps dead ids
    assert len(faiss_index.ids(faiss_index.read(col.index_path(view.name)))) == 200
    col.mark_indexed()
    searcher = Searcher(col, lambda _: None)
    index = searcher.index(view)
    assert index.kind == "hnsw"
    _, rows = index.search(vectors[[5, 6], 1], 10)
    assert not np.isin(rows, [5, 6]).any() and (rows >= 0).all()  # still 10 results each
    unfiltered = faiss_index.search(index.index, vectors[[5, 6], 1], 1)[1]
    assert unfiltered[:, 0].tolist() == [5, 6]  # without the selector the dead rows come first
    col.delete_documents([f"d{i}" for i in range(10, 40)])
    assert ann.update(col, view, _state(col)) == "built"
    np.testing.assert_array_equal(np.sort(faiss_index.ids(faiss_index.read(col.index_path(view.name)))), _state(col).live)


def _fake_encoder(vectors: np.ndarray):
    class Fake:
        identity = IDENTITY

        def encode(self, texts, layers=None, progress=False):
            layers = tuple(layers or range(3))
            return LayerEmbeddings(vectors[: len(texts)][:, list(layers)], layers, IDENTITY)

    return Fake()


def test_a_warm_search_reads_only_the_top_k_passages_in_one_query(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY)
    vectors = _add(col, 0, 500)
    update_all(col)
    searcher = Searcher(col, lambda _: _fake_encoder(vectors[7:8]))
    statements: list[str] = []
    event.listen(col.store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    hits = searcher.search("q", ["-1"], k=5).hits()
    assert [h.doc_id for h in hits][0] == "d7" and len(hits) == 5
    assert len(statements) == 1 and "IN (" in statements[0] and "ORDER BY" not in statements[0]


def _exact_top(col: Collection, queries: np.ndarray) -> list[list[tuple[str, float]]]:
    searcher = Searcher(col, lambda _: None)
    names = searcher.doc_ids
    out = []
    for view in all_views(col):
        scores, rows = ExactIndex(col, view, searcher.row_map).search(queries, 10)
        keys = searcher.row_map(rows)
        out += [[(names[k], round(float(s), 5)) for k, s in zip(ks, ss)] for ks, ss in zip(keys.tolist(), scores.tolist())]
    return out


def test_compact_drops_dead_rows_and_keeps_every_result(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY)
    col.set_index_type("ivf")
    _add(col, 0, 1400, passages_each=1)
    col.delete_documents([f"d{i}" for i in range(0, 1400, 4)])
    update_all(col)
    queries = np.random.default_rng(2).normal(size=(4, 16)).astype(np.float32)
    before = _exact_top(col, queries)
    report = compaction.compact(col, all_views(col))
    assert (report.rows_before, report.rows_after) == (1400, 1050) and report.bytes_after < report.bytes_before
    assert col.vector_rows() == 1050 and _state(col).live.tolist() == list(range(1050))
    assert _exact_top(col, queries) == before
    ids = faiss_index.ids(faiss_index.read(col.index_path("layer0")))
    np.testing.assert_array_equal(np.sort(ids), np.arange(1050))
    update_all(col)
    assert checking.check(col).ok
    with col.store.sessions() as s:
        rows, _ = bm25.search(s, col.id, "text 1399", 1)
    assert col.passages(rows.tolist())[int(rows[0])].doc_id == "d1399"


@pytest.mark.parametrize("crash_after", ["journal", "database"])
def test_an_interrupted_compaction_is_undone_or_finished_by_the_next_writer(tmp_path, monkeypatch, crash_after):
    col = Store(home=tmp_path).create("c", IDENTITY)
    _add(col, 0, 60)
    col.delete_documents([f"d{i}" for i in range(0, 60, 2)])
    queries = np.random.default_rng(4).normal(size=(3, 16)).astype(np.float32)
    before = _exact_top(col, queries)

    def crash(*_a, **_k):
        raise KeyboardInterrupt  # stands for SIGKILL at this point (the integration test kills for real)

    monkeypatch.setattr(compaction, "_renumber_database" if crash_after == "journal" else "_finish", crash)
    with pytest.raises(KeyboardInterrupt):
        compaction.compact(col, all_views(col))
    monkeypatch.undo()
    assert compaction.journal_path(col).exists()
    col.prepare_write()
    assert not compaction.journal_path(col).exists() and not list(col.dir.rglob("*.compact"))
    assert col.vector_rows() == (60 if crash_after == "journal" else 30)
    assert _exact_top(col, queries) == before


def test_info_reports_bytes_per_passage_of_vectors_row_files_ann_and_database(tmp_path):
    from layerwise.storage.report import describe

    col = Store(home=tmp_path).create("c", IDENTITY)
    _add(col, 0, 1200)
    col.set_index_type("ivfpq")
    update_all(col)
    info = describe(col)
    per = info["bytes_per_passage"]
    assert per["vector"] == 3 * 16 * 4 and per["row_file"] == 8 + 3 * 4
    assert 0 < per["index"] < per["vector"]  # 2-byte PQ codes and an id per row, plus centroids and codebooks
    assert info["database_bytes"] > 0 and per["database (whole file)"] > 0


@pytest.mark.parametrize("kind", ["ivf", "ivfpq", "hnsw"])
def test_readers_open_ann_files_memory_mapped_and_search_them(tmp_path, kind):
    col = Store(home=tmp_path).create("c", IDENTITY)
    col.set_index_type(kind)
    vectors = _add(col, 0, 1100)
    update_all(col)
    index = Searcher(col, lambda _: None).index(layer_views(3, kind)[2])
    assert index.kind == kind
    lists = type(faiss_index._faiss().downcast_InvertedLists(index.index.invlists)).__name__ if kind != "hnsw" else None
    if kind == "ivf":  # the inverted lists stay on disk, mapped
        assert lists == "OnDiskInvertedLists"
    if kind == "ivfpq":  # fast-scan lists (4-bit codes in blocks of 32) cannot be mapped: read whole, d/12 bytes + an id a row
        assert lists == "BlockInvertedLists" and faiss_index.current(index.index)
    _, rows = index.search(vectors[:5, 2], 1)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("budget", [0.03, 0.2])
def test_ivf_queries_visit_lists_nearest_first_until_the_code_budget(tmp_path, monkeypatch, budget):
    monkeypatch.setattr(ann, "PROBE_BUDGET", budget)
    col = Store(home=tmp_path).create("c", IDENTITY)
    col.set_index_type("ivfpq")
    vectors = _add(col, 0, 3000)
    update_all(col)
    index = Searcher(col, lambda _: None).index(layer_views(3, "ivfpq")[1])
    unit = faiss_index.normalize(vectors[:20, 1])
    probes = index.probes(unit)
    _, nearest = index.ivf.quantizer.search(unit, index.max_probe)
    for lists, used in zip(nearest, probes.tolist()):
        before = int(index.sizes[lists[: used - 1]].sum())  # codes of the lists visited before the last one
        assert 1 <= used <= index.max_probe and before < ann.PROBE_BUDGET * index.ntotal
        assert used == index.max_probe or index.sizes[lists[:used]].sum() >= ann.PROBE_BUDGET * index.ntotal
    if budget < 0.05:  # 3% of 3,000 codes is one or two of the 54 lists: the budget, not the K/6 cap, stops them
        assert probes.max() < index.max_probe
    _, rows = index.search(vectors[:20, 1], 1)
    assert rows[:, 0].tolist() == list(range(20))  # each stored vector finds itself after exact rescoring


def test_one_search_ranks_several_dense_views_in_threads_as_one_at_a_time(tmp_path, monkeypatch):
    col = Store(home=tmp_path).create("c", IDENTITY)
    _add(col, 0, 200, passages_each=2)
    searcher = Searcher(col, lambda _: None)
    views = layer_views(3)
    embeddings = LayerEmbeddings(np.random.default_rng(7).normal(size=(4, 3, 16)).astype(np.float32), (0, 1, 2), IDENTITY)
    threaded = searcher._rank_dense(views, embeddings, 10, progress=False)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    serial = searcher._rank_dense(views, embeddings, 10, progress=False)
    assert list(threaded) == [v.name for v in views]
    for name in serial:
        for a, b in zip(threaded[name], serial[name]):
            np.testing.assert_array_equal(a.docs, b.docs)
            np.testing.assert_array_equal(a.rows, b.rows)
