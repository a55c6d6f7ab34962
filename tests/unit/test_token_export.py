"""Token export without a model: window planning, word pooling and the streaming file writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from layerwise.errors import UsageError
from layerwise.indexer.token_file import TokenFileWriter, check_path
from layerwise.indexer.token_export import Piece, TokenizedText, WordPooler, plan_windows, word_spans


@pytest.mark.parametrize(("n", "size", "stride"), [(10, 10, 5), (11, 10, 5), (100, 10, 0), (100, 10, 9), (1000, 62, 31), (37, 8, 3)])
def test_every_token_is_owned_once_by_its_most_central_window(n: int, size: int, stride: int):
    windows = plan_windows(n, size, stride)
    owned = np.concatenate([np.arange(w.own_start, w.own_end) for w in windows])
    assert owned.tolist() == list(range(n))  # each token exactly once, in order
    for w in windows:
        assert 0 <= w.start <= w.own_start < w.own_end <= w.end <= n
        assert w.end - w.start == min(size, n)
    for p in range(n):  # no other window holds p farther from its edges
        owner = next(w for w in windows if w.own_start <= p < w.own_end)
        mine = min(p - owner.start, owner.end - 1 - p)
        starts = list(range(0, max(n - size, 0), size - stride)) + [max(n - size, 0)]
        assert all(min(p - s, s + size - 1 - p) <= mine for s in starts if s <= p < s + size)


def test_a_window_with_half_overlap_keeps_tokens_a_quarter_window_from_its_edges():
    windows = plan_windows(1000, 100, 50)
    for w in windows[1:-1]:
        assert w.own_start - w.start >= 24 and w.end - w.own_end >= 24


@pytest.mark.parametrize("stride", [-1, 10, 11])
def test_a_stride_that_leaves_no_progress_is_refused(stride: int):
    with pytest.raises(UsageError, match="--stride"):
        plan_windows(100, 10, stride)


def _tokenized() -> TokenizedText:
    # "[CLS] un ##believ ##able fox [SEP]" for the text "unbelievable fox"
    return TokenizedText(ids=np.arange(6), tokens=["[CLS]", "un", "##believ", "##able", "fox", "[SEP]"],
                         word_index=np.array([-1, 0, 0, 0, 1, -1]), offsets=np.array([[0, 0], [0, 2], [2, 8], [8, 12], [13, 16], [0, 0]]),
                         lead=1, trail=1)


def test_words_are_the_mean_of_their_sub_words_even_across_pieces():
    t = _tokenized()
    vectors = np.arange(6 * 2 * 3, dtype=np.float32).reshape(6, 2, 3)
    pooler = WordPooler(t)
    done = pooler.feed(Piece(0, 0, 3, vectors[0:3])) + pooler.feed(Piece(0, 3, 6, vectors[3:6])) + pooler.finish()
    assert [w for w, _ in done] == [0, 1]
    np.testing.assert_allclose(done[0][1], vectors[1:4].mean(axis=0))
    np.testing.assert_allclose(done[1][1], vectors[4])
    strings, spans = word_spans(t, "unbelievable fox")
    assert strings == ["unbelievable", "fox"] and spans.tolist() == [[0, 12], [13, 16]]


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_the_writer_round_trips_vectors_strings_and_offsets(tmp_path, suffix: str):
    t = _tokenized()
    vectors = np.random.default_rng(0).normal(size=(6, 2, 3)).astype(np.float32)
    path = tmp_path / f"out{suffix}"
    writer = TokenFileWriter(path, (0, 6), 3, {"name": "m"}, "token")
    for text_id in ("a", "b"):
        writer.begin_text(text_id)
        writer.add_vectors(vectors[:2])
        writer.add_vectors(vectors[2:])
        writer.add_rows(t.tokens, t.word_index, t.offsets, t.ids)
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
    if suffix == ".npz":
        data = dict(np.load(path))
        tokens, ids, model = data["tokens"].tolist(), data["ids"].tolist(), json.loads(str(data["model"]))
    else:
        from safetensors import safe_open
        from safetensors.numpy import load_file

        data = load_file(str(path))
        with safe_open(str(path), "np") as f:
            meta = f.metadata()
        tokens, ids, model = json.loads(meta["tokens"]), json.loads(meta["ids"]), json.loads(meta["model"])
    np.testing.assert_array_equal(data["vectors"], np.concatenate([vectors, vectors]))
    assert data["text_start"].tolist() == [0, 6, 12] and data["layers"].tolist() == [0, 6]
    assert tokens == t.tokens * 2 and ids == ["a", "b"] and model == {"name": "m"}
    assert data["char_offsets"][:6].tolist() == t.offsets.tolist() and data["word_index"][6:].tolist() == t.word_index.tolist()
    assert data["token_ids"].tolist() == list(range(6)) * 2


@pytest.mark.parametrize("name", ["out.parquet", "out", "vectors.npy"])
def test_an_output_without_a_supported_suffix_is_refused(tmp_path, name: str):
    with pytest.raises(UsageError, match=r"\.npz or \.safetensors"):
        check_path(tmp_path / name)
