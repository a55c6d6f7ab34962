"""Storage without a model: fake identities and random vectors."""

import numpy as np
import pytest

from layerwise.errors import CollectionExists, CollectionNotFound, CorruptIndex, ModelMismatch, StorageError
from layerwise.types import Document
from layerwise.types import ModelIdentity
from layerwise.types import Passage
from layerwise.storage import faiss_index
from layerwise.storage.collection import Store
from layerwise.storage.vectors import VectorFile

IDENTITY = ModelIdentity("fake", "abc", "tok", "mean", 16, 3, 4)


def _docs(n, start=0):
    docs = [Document(f"d{i}", "", f"text {i}") for i in range(start, start + n)]
    return docs, [[Passage(0, d.text, 0, len(d.text))] for d in docs]


def test_commit_then_crash_leftovers_are_truncated(tmp_path):
    store = Store(home=tmp_path)
    col = store.create("c", IDENTITY)
    docs, passages = _docs(3)
    vectors = np.random.default_rng(0).normal(size=(3, 3, 4)).astype(np.float32)
    col.commit_batch(docs, passages, vectors)
    col.vector_file(0).append(np.ones((2, 4), np.float32))  # a crash after writing vectors, before the commit
    assert col.prepare_write() == 3
    np.testing.assert_array_equal(col.layer_vectors(1), vectors[:, 1])
    assert col.vector_file(0).rows_on_disk() == 3


def test_replace_and_delete_documents(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY)
    docs, passages = _docs(3)
    col.commit_batch(docs, passages, np.zeros((3, 3, 4), np.float32))
    col.commit_batch(docs[:1], passages[:1], np.ones((1, 3, 4), np.float32), replace=["d0"])
    assert col.counts() == {"documents": 3, "passages": 3, "vector_rows": 4}
    assert sorted(col.live_rows().tolist()) == [1, 2, 3]
    assert col.delete_documents(["d1", "missing"]) == 1
    assert col.counts()["documents"] == 2


def test_collections_by_name(tmp_path):
    store = Store(home=tmp_path)
    store.create("c", IDENTITY)
    with pytest.raises(CollectionExists):
        store.create("c", IDENTITY)
    with pytest.raises(CollectionNotFound, match="no collection 'x'"):
        store.open("x")
    store.drop("c")
    assert store.names() == []


def test_identity_mismatch_is_refused(tmp_path):
    col = Store(home=tmp_path).create("c", IDENTITY)
    with pytest.raises(ModelMismatch, match="num_states"):
        col.check_identity(ModelIdentity("other", "abc", "tok", "mean", 16, 7, 4))


def test_float16_vector_file_round_trip(tmp_path):
    file = VectorFile(tmp_path / "v", 4, "float16")
    data = np.arange(8, dtype=np.float32).reshape(2, 4)
    file.append(data)
    np.testing.assert_array_equal(file.read(2), data.astype(np.float16))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_gathered_rows_equal_the_mapped_ones_in_the_order_asked(tmp_path, dtype: str):
    file = VectorFile(tmp_path / "v", 4, dtype)
    file.append(np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32))
    rows = np.array([49, 3, 3, 17, 0])
    np.testing.assert_array_equal(file.gather(rows), np.asarray(file.read(50))[rows])
    assert file.gather(np.zeros(0, dtype=np.int64)).shape == (0, 4)
    with pytest.raises(StorageError, match="shorter than row 50"):
        file.gather(np.array([2, 50]))


def test_index_round_trip_and_corrupt_file(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, 8)).astype(np.float32)
    index = faiss_index.build(np.arange(100, 120), vectors)
    path = tmp_path / "i.faiss"
    faiss_index.write_atomic(index, path)
    scores, ids = faiss_index.search(faiss_index.read(path), vectors[:3], 1)
    assert ids[:, 0].tolist() == [100, 101, 102]
    np.testing.assert_allclose(scores[:, 0], 1.0, rtol=1e-5)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CorruptIndex, match="corrupt or truncated: run `layerwise check c --repair`"):
        faiss_index.read(path, "c")


def test_index_stays_on_the_cpu_without_faiss_gpus():
    index = faiss_index.build(np.arange(3), np.eye(3, 4, dtype=np.float32))
    hnsw = faiss_index.build(np.arange(3), np.eye(3, 4, dtype=np.float32), "hnsw")
    assert faiss_index.on_device(hnsw, "cuda", gpus=0) is hnsw  # only flat indices have a torch path
    assert faiss_index.on_device(index, "cpu", gpus=1) is index


@pytest.mark.parametrize(("kind", "n", "expected"), [("auto", 1000, "flat"), ("auto", 60_000, "ivfpq"), ("ivf", 500, "flat"), ("ivfpq", 500, "flat"), ("hnsw", 10, "hnsw")])
def test_index_type_choice(kind, n, expected):
    assert faiss_index.choose(kind, n) == expected


def test_ivf_and_hnsw_find_exact_neighbours_mostly():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    for kind in ("ivf", "hnsw"):
        index = faiss_index.build(np.arange(3000), vectors, kind)
        assert faiss_index.kind_of(index) == kind
        _, ids = faiss_index.search(index, vectors[:50], 1)
        assert (ids[:, 0] == np.arange(50)).mean() >= 0.9


def test_parallel_index_builds_are_bounded_by_views_cores_and_memory(monkeypatch):
    from layerwise.storage import views

    monkeypatch.setattr(views.os, "cpu_count", lambda: 16)
    assert views.build_workers(7, 5_000, 384) == 7
    assert views.build_workers(7, 200_000, 384) == 1  # 920 MB a view: one at a time
    assert views.build_workers(7, 50_000, 384) == 2
    monkeypatch.setattr(views.os, "cpu_count", lambda: 2)
    assert views.build_workers(7, 5_000, 384) == 2
