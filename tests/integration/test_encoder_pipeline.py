"""The overlapped encoder pipeline (producer thread, chunked tokenisation, several batches and
workers) and half-precision pooling, run on the CPU in fp32 and bf16."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.errors import UsageError
from layerwise.indexer import encoder as encoder_module
from layerwise.indexer.encoder import Encoder
from layerwise.settings import EncoderSettings

from .test_encoder_reference import reference

TEXTS = [
    f"Sentence {i}: " + " ".join(["layers", "differ", "in", "what", "they", "encode"][: 1 + i % 6]) * (1 + i % 9)
    for i in range(60)
] + ["lorem ipsum dolor " * 200, "x", ""]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokenise in chunks of 7 and 16 texts, so the producer makes many chunks and batches."""
    monkeypatch.setattr(encoder_module, "FIRST_CHUNK", 7)
    monkeypatch.setattr(encoder_module, "CHUNK", 16)
    monkeypatch.setattr(encoder_module, "FEED_DEPTH", 2)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine per (text, layer) of two (n, k, d) arrays."""
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.mark.parametrize("workers", [1, 2])
def test_overlapped_fp32_matches_transformers(tiny_bert_dir, small_chunks, workers: int):
    tiny = Encoder(EncoderSettings(str(tiny_bert_dir), device="cpu", token_budget=256, workers=workers))
    got = tiny.encode(TEXTS).vectors
    expected = np.concatenate([reference(tiny, TEXTS[i : i + 8], "mean") for i in range(0, len(TEXTS), 8)])
    assert np.abs(got - expected).max() <= 1e-5


def test_encode_ids_equals_encode(tiny_bert_dir, small_chunks):
    tiny = Encoder(EncoderSettings(str(tiny_bert_dir), device="cpu", token_budget=256))
    ids = tiny.tokenizer(TEXTS, truncation=True, max_length=tiny.max_tokens)["input_ids"]
    whole = tiny.encode(TEXTS).vectors  # batches differ (texts are tokenised chunk by chunk): fp32 rounding only
    np.testing.assert_allclose(tiny.encode_ids(ids).vectors, whole, atol=1e-6)
    np.testing.assert_allclose(tiny.encode_ids(ids, layers=(3, 1)).vectors, whole[:, [3, 1]], atol=1e-6)


def test_encode_ids_refuses_inputs_longer_than_the_model(tiny_bert_dir):
    tiny = Encoder(EncoderSettings(str(tiny_bert_dir), device="cpu"))
    with pytest.raises(UsageError, match="1..128"):
        tiny.encode_ids([[101, 102], list(range(200))])


def test_empty_inputs_give_empty_arrays(tiny_bert_dir):
    tiny = Encoder(EncoderSettings(str(tiny_bert_dir), device="cpu"))
    assert tiny.encode([]).vectors.shape == (0, 4, 32) and tiny.encode_ids([]).vectors.shape == (0, 4, 32)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_bf16_stays_within_cosine_0_9999_of_fp32_on_every_layer(encoder: Encoder, small_chunks, pooling: str):
    half = Encoder(EncoderSettings(device="cpu", dtype="bf16", pooling=pooling, token_budget=1024))
    full = Encoder(EncoderSettings(device="cpu", pooling=pooling, token_budget=1024))
    texts = TEXTS[::3] + ["The mitochondria is the powerhouse of the cell and produces ATP. " * 12]
    got, expected = half.encode(texts).vectors, full.encode(texts).vectors
    assert got.dtype == np.float32
    worst = _cosines(got, expected).min(axis=0)  # (k,) per layer
    assert worst.min() >= 0.9999, worst
