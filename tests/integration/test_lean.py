"""The lean one-text pass against transformers' full forward pass: same pooled vectors (<= 1e-5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from layerwise import cores
from layerwise.indexer import lean, team
from layerwise.indexer.encoder import Encoder
from layerwise.settings import EncoderSettings

TEXTS = ["How do I rotate the logs?", "Short.", "Layer-wise representations differ: lower layers are lexical. " * 4, "x " * 400]


def _full_pass(encoder: Encoder, text: str, pooling: str) -> np.ndarray:
    """Pooled (7, d) through the batching path and transformers' modules, the text beside a longer one (padded)."""
    encoder.pooling = pooling
    try:
        return encoder.encode_ids(encoder.tokenize([text, TEXTS[2]])).vectors[0]
    finally:
        encoder.pooling = "mean"


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_a_single_text_takes_the_lean_pass_and_matches_the_full_one(encoder: Encoder, pooling: str):
    assert encoder.lean_pass is not None  # the default model on the CPU in fp32
    for text in TEXTS:
        got = encoder.lean_pass.pooled(encoder.tokenize([text])[0], list(range(7)), pooling).numpy()  # (7, d)
        assert np.abs(got - _full_pass(encoder, text, pooling)).max() <= 1e-5


def test_encode_of_one_text_equals_its_row_in_a_batch(encoder: Encoder):
    alone = encoder.encode([TEXTS[0]], [0, -1])
    assert alone.layers == (0, 6) and alone.vectors.shape == (1, 2, 384)
    batched = encoder.encode(TEXTS, [0, -1]).vectors[:1]
    assert np.abs(alone.vectors - batched).max() <= 1e-5


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu"])
def test_random_small_bert_of_each_activation(tmp_path: Path, act: str):
    torch.manual_seed(1)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=64, hidden_act=act)
    model = BertModel(config).eval()
    ids = [101, 7, 55, 3, 99, 102]
    with torch.inference_mode():
        states = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states  # 4 x (1, T, d)
    expected = torch.stack([s[0].mean(0) for s in states])  # (4, d)
    got = lean.of(model, torch.device("cpu"), torch.float32).pooled(ids, [0, 1, 2, 3], "mean")
    assert torch.abs(got - expected).max() <= 1e-5


def test_only_plain_fp32_bert_on_the_cpu(tiny_bert_dir: Path):
    model = BertModel.from_pretrained(tiny_bert_dir).eval()
    assert lean.of(model, torch.device("cpu"), torch.bfloat16) is None
    assert lean.of(model, torch.device("cuda"), torch.float32) is None
    model.config.position_embedding_type = "relative_key"
    assert lean.of(model, torch.device("cpu"), torch.float32) is None
    assert Encoder(EncoderSettings(device="cpu", quantize="int8")).lean_pass is None


@pytest.mark.parametrize("granted", [1, 2])
def test_a_search_granted_one_core_or_every_core_encodes_the_same_vectors(encoder: Encoder, monkeypatch: pytest.MonkeyPatch,
                                                                           granted: int):
    monkeypatch.setattr(cores, "share", lambda *_: granted)
    monkeypatch.setattr(team, "_taken_over", True)  # as in a server: two cores go through the team thread
    outside = encoder.encode([TEXTS[2]]).vectors
    with cores.searching():
        inside = encoder.encode([TEXTS[2]]).vectors
    assert np.abs(inside - outside).max() <= 1e-5


def test_the_pass_is_the_same_on_one_kernel_thread_and_on_two(encoder: Encoder):
    """One thread multiplies whole feed-forward matrices, two multiply column halves (HalvedFeedForward): the same
    sums, so the same bits, whatever share of the cores a search was granted; and within 1e-5 of the full model."""
    before = torch.get_num_threads()
    try:
        for text in TEXTS[:3]:
            ids = encoder.tokenize([text])[0]
            torch.set_num_threads(1)
            one = encoder.lean_pass.pooled(ids, list(range(7)), "mean")  # (7, d)
            torch.set_num_threads(2)
            two = encoder.lean_pass.pooled(ids, list(range(7)), "mean")
            assert torch.equal(one, two)
            assert np.abs(two.numpy() - _full_pass(encoder, text, "mean")).max() <= 1e-5
    finally:
        torch.set_num_threads(before)
    assert all(h is not None for h in encoder.lean_pass.halves)  # the two-thread pass took the halves


def test_an_odd_inner_width_keeps_whole_matrices():
    torch.manual_seed(2)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=63,
                        max_position_embeddings=64)
    model = BertModel(config).eval()
    ids = [101, 9, 31, 102]
    with torch.inference_mode():
        states = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    lean_pass = lean.of(model, torch.device("cpu"), torch.float32)
    assert lean_pass is not None and lean_pass.halves == [None, None]  # 63 is odd
    got = lean_pass.pooled(ids, [0, 1, 2], "mean")
    assert torch.abs(got - torch.stack([s[0].mean(0) for s in states])).max() <= 1e-5
