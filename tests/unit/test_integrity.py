"""Checksums of vector chunks and index files, without a model: fake identities and random vectors."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from layerwise.storage import faiss_index, integrity, rowmap
from layerwise.storage import check as checking
from layerwise.storage.collection import Store
from layerwise.storage.schema import VectorChunkRow
from layerwise.types import Document, ModelIdentity, Passage

IDENTITY = ModelIdentity("fake", "abc", "tok", "mean", 16, 3, 4)


def _batch(n: int, start: int = 0, seed: int = 0):
    docs = [Document(f"d{i}", "", f"text {i}") for i in range(start, start + n)]
    vectors = np.random.default_rng(seed).normal(size=(n, 3, 4)).astype(np.float32)  # (n, states, d)
    return docs, [[Passage(0, d.text, 0, len(d.text))] for d in docs], vectors


def test_each_batch_records_one_checksum_per_layer_and_chunk_of_rows(tmp_path):
    collection = Store(home=tmp_path).create("c", IDENTITY, vector_dtype="float16")
    collection.commit_batch(*_batch(integrity.CHUNK_ROWS + 5))
    collection.commit_batch(*_batch(3, start=5000, seed=1))
    with collection.store.sessions() as s:
        records = integrity.chunk_records(s, collection.id)
    assert sorted(records) == [rowmap.NORMS_LAYER, rowmap.ROWS_LAYER, 0, 1, 2]  # the rows and norms files are checksummed too
    for layer in records:
        assert [(start, rows) for start, rows, _ in records[layer]] == [(0, integrity.CHUNK_ROWS), (integrity.CHUNK_ROWS, 5),
                                                                        (integrity.CHUNK_ROWS + 5, 3)]
    assert not checking.vector_damage(collection)


def test_one_flipped_byte_is_found_only_by_the_deep_check_and_only_in_its_chunk(tmp_path):
    collection = Store(home=tmp_path).create("c", IDENTITY)
    collection.commit_batch(*_batch(10))
    collection.commit_batch(*_batch(10, start=10, seed=1))
    path = collection.vector_file(2).path
    data = bytearray(path.read_bytes())
    data[12 * 16 + 3] ^= 0x01  # row 12, one bit
    path.write_bytes(bytes(data))
    assert not any("checksum" in p for p in checking.check(collection).problems)
    assert [d.describe() for d in checking.vector_damage(collection)] == ["vector rows 10..19 of layer 2 fail their checksum"]


def test_repair_without_an_encoder_blanks_the_range_and_drops_only_its_documents(tmp_path):
    collection = Store(home=tmp_path).create("c", IDENTITY)
    collection.commit_batch(*_batch(10))
    collection.commit_batch(*_batch(10, start=10, seed=1))
    with open(collection.vector_file(0).path, "r+b") as f:
        f.truncate(15 * 16)
    report = checking.repair(collection)
    assert report.ok and "removed 10 documents" in report.repaired[0]
    assert sorted(collection.document_hashes()) == [f"d{i}" for i in range(10)]
    assert collection.vector_file(0).rows_on_disk() == 20 and not checking.vector_damage(collection)


def test_repair_with_an_encoder_writes_back_exactly_the_damaged_ranges(tmp_path):
    collection = Store(home=tmp_path).create("c", IDENTITY)
    docs, passages, vectors = _batch(10)
    collection.commit_batch(docs, passages, vectors)
    path = collection.vector_file(1).path
    path.write_bytes(b"\x00" * path.stat().st_size)
    asked = []

    def reencode(texts: list[str], layers: list[int]) -> np.ndarray:
        asked.append((texts, layers))
        index = [int(t.split()[1]) for t in texts]
        return vectors[index][:, layers]  # (n, k, d)

    report = checking.repair(collection, reencode)
    assert report.ok and asked == [([f"text {i}" for i in range(10)], [1])]
    np.testing.assert_array_equal(collection.layer_vectors(1), vectors[:, 1])


def test_index_files_are_hashed_while_written(tmp_path):
    index = faiss_index.build(np.arange(5), np.random.default_rng(0).normal(size=(5, 4)))
    written = faiss_index.write_atomic(index, tmp_path / "x.faiss")
    assert written == integrity.file_digest(tmp_path / "x.faiss")
    assert faiss_index.read(tmp_path / "x.faiss").ntotal == 5 and os.listdir(tmp_path) == ["x.faiss"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_while_writing_an_index_is_enospc_not_a_faiss_error(tmp_path, monkeypatch):
    class Full(integrity.HashingWriter):
        def write(self, data: bytes) -> int:
            with open("/dev/full", "wb", buffering=0) as full:
                return full.write(data)

    monkeypatch.setattr(faiss_index, "HashingWriter", Full)
    index = faiss_index.build(np.arange(5), np.random.default_rng(0).normal(size=(5, 4)))
    with pytest.raises(OSError) as caught:
        faiss_index.write_atomic(index, tmp_path / "x.faiss")
    assert caught.value.errno == errno.ENOSPC and os.listdir(tmp_path) == []


def test_a_crash_between_append_and_commit_leaves_no_checksum_behind(tmp_path):
    collection = Store(home=tmp_path).create("c", IDENTITY)
    collection.commit_batch(*_batch(4))
    collection.vector_file(0).append(np.ones((2, 4), np.float32))  # appended, never committed
    with collection.store.sessions() as s:
        assert s.query(VectorChunkRow).filter(VectorChunkRow.layer == 0).count() == 1
    assert any("bytes past the 4 committed rows" in p for p in checking.check(collection).problems)
    assert collection.prepare_write() == 4 and not checking.vector_damage(collection)
