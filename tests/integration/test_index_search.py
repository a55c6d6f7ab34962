"""Index then search with the real default model."""

from __future__ import annotations

import numpy as np

from layerwise.indexer.encoder import Encoder
from layerwise.indexer.inputs import InputReport
from layerwise.indexer.pipeline import index_documents
from layerwise.search.searcher import Searcher
from layerwise.storage.views import layer_views, save_mix
from layerwise.storage.collection import Store
from layerwise.types import Document


def test_every_passage_finds_itself_at_rank_one(sample_home, encoder: Encoder):
    collection = Store(home=sample_home).open("sample")
    searcher = Searcher(collection, lambda _: encoder)
    rows, _, _ = collection.passage_table
    info = collection.passages(rows.tolist())
    texts = [info[r].text for r in rows.tolist()]
    last = layer_views(collection.num_states)[-1]
    rankings = searcher.rank(last, last.of_query(searcher.encode(texts, [last])), 1)
    assert [int(r.rows[0]) for r in rankings] == rows.tolist()


def test_stored_vectors_equal_a_fresh_encoding(sample_home, encoder: Encoder):
    collection = Store(home=sample_home).open("sample")
    rows = collection.live_rows()[:5]
    info = collection.passages(rows.tolist())
    fresh = encoder.encode([info[r].text for r in rows.tolist()]).vectors
    for layer in range(collection.num_states):
        np.testing.assert_allclose(collection.layer_vectors(layer)[rows], fresh[:, layer], atol=1e-5)


def test_search_all_layers_shares_one_query_encoding(sample_home, encoder: Encoder, monkeypatch):
    collection = Store(home=sample_home).open("sample")
    searcher = Searcher(collection, lambda _: encoder)
    calls = []
    original = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda *a, **k: calls.append(1) or original(*a, **k))
    results = searcher.search("how do I rotate the logs", ["all"], k=3).results
    assert len(calls) == 1 and list(results) == [f"layer{i}" for i in range(7)]
    assert results["layer6"][0].doc_id == "ops/log-rotation.md"


def test_mix_view_from_stored_vectors_equals_manual_mix(sample_home, encoder: Encoder):
    collection = Store(home=sample_home).open("sample")
    view = save_mix(collection, "last2", "wsum(-2:; 0.25,0.75)")
    rows = collection.live_rows()
    a, b = (np.asarray(collection.layer_vectors(i)[rows]) for i in (5, 6))
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    expected = unit(0.25 * unit(a) + 0.75 * unit(b))
    searcher = Searcher(collection, lambda _: encoder)
    index = searcher.index(view)
    assert index.ntotal == len(rows)
    got = index.index.reconstruct_n(0, len(rows)) if hasattr(index, "index") else None
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_reindex_unchanged_skips_and_changed_reencodes(tmp_path, encoder: Encoder):
    collection = Store(home=tmp_path).create("c", encoder.identity)
    docs = [Document("a", "", "apples are red"), Document("b", "", "bananas are yellow")]
    first = index_documents(collection, encoder, docs, InputReport())
    again = index_documents(collection, encoder, [docs[0], Document("b", "", "blueberries are blue")], InputReport())
    assert (first.added, again.unchanged, again.updated, again.passages) == (2, 1, 1, 1)
    hits = Searcher(collection, lambda _: encoder).search("blue berries", ["-1"], 1).results["layer6"]
    assert hits[0].doc_id == "b" and "blueberries" in hits[0].text


def test_learn_mix_is_deterministic_for_a_seed_and_stored_as_a_view(sample_home, encoder: Encoder):
    from pathlib import Path

    from layerwise.evaluation import datasets
    from layerwise.evaluation.learn_mix import learn

    sample = Path(__file__).resolve().parents[2] / "examples" / "sample"
    collection = Store(home=sample_home).open("sample")
    searcher = Searcher(collection, lambda _: encoder)
    queries, qrels = datasets.read_queries(sample / "queries.jsonl"), datasets.read_qrels(sample / "qrels.tsv")
    runs = [learn(searcher, queries, qrels, steps=30, seed=3, separate=True) for _ in range(2)]
    assert runs[0] == runs[1]
    assert abs(sum(runs[0].doc_weights) - 1) < 1e-5 and runs[0].losses[-1] < runs[0].losses[0]
    view = save_mix(collection, "learned", runs[0].doc_spec, runs[0].query_spec)
    assert view.query_spec is not None and view.layers(7) == tuple(range(7))
