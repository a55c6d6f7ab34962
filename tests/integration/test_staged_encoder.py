"""The staged index encoder (indexer/staged.py): numpy for a small run, torch once it grows, the same
identity, passages and vectors (<= 1e-5) as the torch encoder, and no torch import for a small job."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from layerwise.api import KnowledgeBase, Library
from layerwise.errors import UsageError
from layerwise.indexer import model as model_io
from layerwise.indexer import staged
from layerwise.indexer.encoder import Encoder
from layerwise.indexer.passages import Splitter
from layerwise.settings import EncoderSettings
from tests.integration.conftest import SAMPLE

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Short.", "Layer-wise representations differ. " * 40, "x " * 400]


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoder: Encoder) -> Path:
    """A fresh facts cache that remembers the default model (what any earlier full load leaves)."""
    monkeypatch.setenv("LAYERWISE_CACHE", str(tmp_path / "cache"))
    model_io.remember(encoder.path, encoder.model.config, encoder.tokenizer)
    return tmp_path / "cache"


class Loads:
    """Stands in for the library's full-encoder loader and counts its calls."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder, self.count = encoder, 0

    def __call__(self) -> Encoder:
        self.count += 1
        return self.encoder


def _ids(encoder: Encoder, texts: list[str]) -> list[list[int]]:
    return encoder.tokenize(texts)


def test_nothing_staged_before_a_full_load_remembered_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoder: Encoder):
    monkeypatch.setenv("LAYERWISE_CACHE", str(tmp_path / "empty"))
    assert staged.load(EncoderSettings(device="cpu"), Loads(encoder)) is None


def test_identity_lengths_and_passages_are_the_torch_encoders(cache: Path, encoder: Encoder):
    stage = staged.load(EncoderSettings(device="cpu"), Loads(encoder))
    assert stage is not None and stage.loaded is None
    assert stage.identity == encoder.identity
    assert (stage.max_tokens, stage.model_limit, stage.num_states) == (encoder.max_tokens, encoder.model_limit, encoder.num_states)
    text = "word " * 5000 + " and 東京 " * 300
    ours = Splitter(stage.tokenizer, stage.max_tokens, 32).split_many(["T"], [text])
    theirs = Splitter(encoder.tokenizer, encoder.max_tokens, 32).split_many(["T"], [text])
    assert ours == theirs and len(ours[0]) > 10
    assert stage.tokenize(TEXTS) == encoder.tokenize(TEXTS)


def test_max_tokens_is_refused_as_by_the_torch_encoder(cache: Path, encoder: Encoder):
    for asked in (2, 10_000):
        with pytest.raises(UsageError) as ours:
            staged.load(EncoderSettings(device="cpu", max_tokens=asked), Loads(encoder))
        with pytest.raises(UsageError) as theirs:
            Encoder(EncoderSettings(device="cpu", max_tokens=asked))
        assert str(ours.value) == str(theirs.value)
    small = staged.load(EncoderSettings(device="cpu", max_tokens=64), Loads(encoder))
    assert small is not None and small.max_tokens == small.identity.max_tokens == 64


def test_a_small_run_is_encoded_by_numpy_within_1e5(cache: Path, encoder: Encoder):
    loads = Loads(encoder)
    stage = staged.load(EncoderSettings(device="cpu"), loads)
    ids = _ids(encoder, TEXTS)
    got = stage.encode_ids(ids)
    assert loads.count == 0 and stage.loaded is None and stage.light_tokens == sum(map(len, ids))
    assert got.layers == tuple(range(7)) and got.model == encoder.identity
    assert np.abs(got.vectors - encoder.encode_ids(ids).vectors).max() <= 1e-5
    part = stage.encode(TEXTS[:2], layers=[0, -1])
    assert part.layers == (0, 6)
    assert np.abs(part.vectors - encoder.encode(TEXTS[:2], [0, 6]).vectors).max() <= 1e-5


def test_torch_takes_over_once_the_run_passes_the_threshold(cache: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch):
    ids = _ids(encoder, TEXTS)
    monkeypatch.setattr(staged, "LIGHT_TOKENS", len(ids[0]) + len(ids[1]))
    loads = Loads(encoder)
    stage = staged.load(EncoderSettings(device="cpu"), loads)
    stage.encode_ids(ids[:2])
    assert loads.count == 0
    later = stage.encode_ids(ids[2:])  # past the threshold: torch, loaded once, exactly its vectors
    assert loads.count == 1 and stage.loaded is encoder
    assert stage.light is None, "the numpy weights are let go"
    np.testing.assert_array_equal(later.vectors, encoder.encode_ids(ids[2:]).vectors)
    stage.encode_ids(ids[:1])
    assert loads.count == 1, "torch stays once loaded"


def test_many_short_texts_go_to_torch(cache: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(staged, "LIGHT_TEXTS", 3)
    loads = Loads(encoder)
    stage = staged.load(EncoderSettings(device="cpu"), loads)
    stage.encode_ids(_ids(encoder, TEXTS[:3]))
    assert loads.count == 0 and stage.light_texts == 3
    stage.encode_ids(_ids(encoder, TEXTS[1:2]))
    assert loads.count == 1


def test_a_torch_encoder_of_another_identity_is_refused(cache: Path, encoder: Encoder, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(staged, "LIGHT_TOKENS", 0)
    other = Encoder(EncoderSettings(model=str(tiny_bert_dir), device="cpu"))
    stage = staged.load(EncoderSettings(device="cpu"), Loads(other))
    with pytest.raises(RuntimeError, match="identity"):
        stage.encode_ids(_ids(encoder, TEXTS[:1]))


def _vectors(kb: KnowledgeBase) -> np.ndarray:
    rows = kb.collection.live_rows()
    return np.stack([kb.collection.layer_vectors(i)[rows] for i in range(kb.collection.num_states)], axis=1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """The sample indexed by the torch encoder alone (query_encoder="full": no staging)."""
    kb = Library(tmp_path_factory.mktemp("torch-home"), device="cpu", query_encoder="full").open("sample", create=True)
    kb.index([SAMPLE / "docs"])
    return kb


def _spans(kb: KnowledgeBase) -> tuple:
    _, doc_ids, ordinals, spans = kb.collection.passage_spans()
    return doc_ids, ordinals.tolist(), spans.tolist()


@pytest.mark.parametrize("light_tokens,batch_docs", [(staged.LIGHT_TOKENS, 512), (0, 512), (600, 4)])
def test_an_index_run_matches_the_torch_encoders(cache: Path, reference: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 light_tokens: int, batch_docs: int) -> None:
    """All numpy, all torch, and numpy for the first batches then torch: the same passages, vectors within
    1e-5 of an index made by the torch encoder alone, and the same search results."""
    monkeypatch.setattr(staged, "LIGHT_TOKENS", light_tokens)
    library = Library(tmp_path / "home", device="cpu")
    kb = library.open("sample", create=True)
    kb.index([SAMPLE / "docs"], batch_docs=batch_docs)
    stage = library._staged[kb.settings()]
    assert kb.collection.identity == reference.collection.identity
    assert _spans(kb) == _spans(reference) and len(_spans(kb)[0]) > 20
    assert np.abs(_vectors(kb) - _vectors(reference)).max() <= 1e-5
    if light_tokens == 0:
        assert stage.loaded is not None and stage.light_tokens == 0
    elif batch_docs == 512:
        assert stage.loaded is None and not library._encoders, "a small run never loads torch"
    else:
        assert stage.loaded is not None and 0 < stage.light_tokens <= light_tokens
    for query in ("how do I rotate the logs", "bread recipe", "stock market"):
        for view in ("-1", "0", "mean(-4:)"):
            assert [h.doc_id for h in kb.search(query, view, 5)] == [h.doc_id for h in reference.search(query, view, 5)]


def test_a_small_index_command_never_imports_torch(cache: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE / "docs" / "ops", docs)
    code = ("import sys; from layerwise.cli import main; sys.argv = ['layerwise', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, "index", "k", str(docs), "--home", str(tmp_path / "home"), "--json"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == ["False", "False"]
    assert '"added": ' in out
