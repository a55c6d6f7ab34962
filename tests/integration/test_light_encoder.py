"""The numpy query encoder against the torch encoder: same vectors (<= 1e-5), same tokens, same identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from layerwise.indexer import light
from layerwise.indexer import model as model_io
from layerwise.indexer.encoder import Encoder
from layerwise.settings import EncoderSettings

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Short.",
    "Layer-wise representations of a transformer differ: lower layers are lexical, upper layers semantic. " * 3,
    "How do I rotate the logs?",
    "x " * 400,  # truncated to the model's limit
]


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAYERWISE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _remembered(encoder: Encoder) -> None:
    model_io.remember(encoder.path, encoder.model.config, encoder.tokenizer)


def test_no_light_encoder_before_a_full_load_remembered_the_model(cache: Path):
    assert light.load(EncoderSettings(device="cpu")) is None


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_default_model_matches_the_torch_encoder(encoder: Encoder, cache: Path, pooling: str):
    _remembered(encoder)
    fast = light.load(EncoderSettings(device="cpu", pooling=pooling))
    assert fast is not None
    encoder.pooling = pooling
    try:
        expected = encoder.encode(TEXTS).vectors
    finally:
        encoder.pooling = "mean"
    got = fast.encode(TEXTS).vectors
    assert got.shape == expected.shape == (len(TEXTS), 7, 384)
    assert np.abs(got - expected).max() <= 1e-5
    assert fast.tokenize(TEXTS) == encoder.tokenize(TEXTS)


def test_identity_and_selected_layers(encoder: Encoder, cache: Path):
    _remembered(encoder)
    fast = light.load(EncoderSettings(device="cpu"))
    assert fast is not None and fast.identity == encoder.identity
    part = fast.encode(TEXTS[:2], layers=[0, -1])
    assert part.layers == (0, 6)
    np.testing.assert_allclose(part.vectors, encoder.encode(TEXTS[:2], [0, 6]).vectors, atol=1e-5)


def test_random_small_bert_matches(tiny_bert_dir: Path, cache: Path):
    settings = EncoderSettings(model=str(tiny_bert_dir), device="cpu")
    tiny = Encoder(settings)  # a full load remembers the model
    fast = light.load(settings)
    assert fast is not None and fast.identity == tiny.identity and fast.num_states == 4
    assert np.abs(fast.encode(TEXTS).vectors - tiny.encode(TEXTS).vectors).max() <= 1e-5


@pytest.mark.parametrize("options", [{"quantize": "int8"}, {"dtype": "bf16"}, {"device": "cuda"}])
def test_settings_only_the_full_encoder_serves(encoder: Encoder, cache: Path, options: dict):
    _remembered(encoder)
    assert light.load(EncoderSettings(**{"device": "cpu", **options})) is None


def test_changed_model_files_are_not_trusted(tiny_bert_dir: Path, cache: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_bert_dir, copy)
    settings = EncoderSettings(model=str(copy), device="cpu")
    Encoder(settings)
    assert light.load(settings) is not None
    config = (copy / "config.json").read_text().replace('"layer_norm_eps": 1e-12', '"layer_norm_eps": 1e-06')
    (copy / "config.json").write_text(config)
    assert light.load(settings) is None


def test_full_query_encoder_setting_is_honoured(encoder: Encoder, cache: Path, monkeypatch: pytest.MonkeyPatch):
    _remembered(encoder)
    monkeypatch.setenv("LAYERWISE_QUERY_ENCODER", "full")
    assert light.load(EncoderSettings(device="cpu")) is None


def test_a_one_shot_search_never_imports_torch(sample_home: Path, encoder: Encoder, cache: Path):
    import subprocess
    import sys

    _remembered(encoder)
    code = ("import sys, layerwise.api as a; kb = a.Library(sys.argv[1], device='cpu').open('sample'); "
            "hits = kb.search_views('rotate the logs', ['all', 'bm25'], 3); "
            "print(hits.hits('layer6')[0].doc_id, type(kb.library.encoder_for(kb.collection.identity)).__name__, "
            "'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(sample_home)], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["ops/log-rotation.md", "LightEncoder", "False", "False"]
