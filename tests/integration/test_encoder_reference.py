"""The encoder against plain transformers (output_hidden_states=True) and sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerwise.indexer.encoder import Encoder
from layerwise.settings import EncoderSettings

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Short.",
    "Layer-wise representations of a transformer differ: lower layers are lexical, upper layers semantic. " * 3,
    "How do I rotate the logs?",
]


def reference(encoder: Encoder, texts: list[str], pooling: str) -> np.ndarray:
    """Pooled vectors (n, states, d) from plain transformers with output_hidden_states=True."""
    batch = encoder.tokenizer(texts, padding=True, truncation=True, max_length=encoder.max_tokens, return_tensors="pt")
    with torch.no_grad():
        states = encoder.model(**batch, output_hidden_states=True).hidden_states
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = []
    for h in states:
        if pooling == "mean":
            pooled.append((h * mask).sum(1) / mask.sum(1))
        elif pooling == "cls":
            pooled.append(h[:, 0])
        else:
            pooled.append(h.masked_fill(mask == 0, -1e9).max(1).values)
    return torch.stack(pooled, 1).numpy()


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_default_model_matches_transformers(encoder: Encoder, pooling: str):
    encoder.pooling = pooling
    try:
        got = encoder.encode(TEXTS).vectors
    finally:
        encoder.pooling = "mean"
    assert got.shape == (len(TEXTS), 7, 384)
    assert np.abs(got - reference(encoder, TEXTS, pooling)).max() <= 1e-5


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_random_small_bert_matches_transformers(tiny_bert_dir, pooling: str):
    tiny = Encoder(EncoderSettings(model=str(tiny_bert_dir), device="cpu", pooling=pooling))
    assert tiny.num_states == 4 and tiny.max_tokens == 128
    got = tiny.encode(TEXTS).vectors
    assert got.shape == (len(TEXTS), 4, 32)
    assert np.abs(got - reference(tiny, TEXTS, pooling)).max() <= 1e-5


def test_a_text_embeds_the_same_alone_and_in_a_padded_batch(encoder: Encoder):
    texts = ["x " * 150, "A medium length sentence about databases and indexes.", "hi", TEXTS[2]]
    batched = encoder.encode(texts).vectors
    for i, text in enumerate(texts):
        alone = encoder.encode([text]).vectors[0]
        assert np.abs(alone - batched[i]).max() <= 1e-5


def test_selected_layers_and_early_stop_equal_the_full_pass(encoder: Encoder):
    full = encoder.encode(TEXTS).vectors
    part = encoder.encode(TEXTS, layers=(0, 2)).vectors
    np.testing.assert_allclose(part, full[:, [0, 2]], atol=1e-6)


def test_last_layer_equals_sentence_transformers(encoder: Encoder):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(encoder.path, device="cpu")
    expected = model.encode(TEXTS, normalize_embeddings=True)
    last = encoder.encode(TEXTS).layer(-1)
    last = last / np.linalg.norm(last, axis=1, keepdims=True)
    assert (expected * last).sum(1).min() >= 0.99999


def test_identity_records_the_model(encoder: Encoder):
    ident = encoder.identity
    assert (ident.name, ident.num_states, ident.dim, ident.max_tokens, ident.pooling) == (
        "sentence-transformers/all-MiniLM-L6-v2", 7, 384, 256, "mean")
