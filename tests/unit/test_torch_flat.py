"""The torch flat search (used on GPUs without faiss-gpu) returns what faiss's flat index returns."""

import numpy as np

from layerwise.storage import faiss_index


def _index(n=500, d=24, seed=3):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    ids = rng.permutation(10 * n)[:n]
    return faiss_index.build(ids, vectors, "flat"), rng.standard_normal((7, d)).astype(np.float32)


def test_same_ids_and_scores_as_faiss():
    index, queries = _index()
    expected_scores, expected_ids = faiss_index.search(index, queries, 10)
    torch_index = faiss_index.torch_flat(index, "cpu")
    scores, ids = faiss_index.search(torch_index, queries, 10)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert torch_index.ntotal == index.ntotal == 500


def test_k_past_the_end_pads_with_minus_one():
    index, queries = _index(n=3)
    scores, ids = faiss_index.torch_flat(index, "cpu").search(faiss_index.normalize(queries), 5)
    assert (ids[:, 3:] == -1).all() and (ids[:, :3] >= 0).all() and np.isneginf(scores[:, 3:]).all()


def test_cpu_stays_on_faiss():
    index, _ = _index(n=10)
    assert faiss_index.on_device(index, "cpu") is index
