"""Session-scoped real models: the packaged default and a random small BERT with another layer count."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerwise.indexer.encoder import Encoder
from layerwise.indexer.model import resolve_model_path
from layerwise.settings import EncoderSettings

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample"


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder(EncoderSettings(device="cpu"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(None)[1])
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """A home with the bundled sample indexed as collection 'sample'."""
    from layerwise.indexer.inputs import InputReport, read_documents
    from layerwise.indexer.pipeline import index_documents
    from layerwise.storage.collection import Store

    home = tmp_path_factory.mktemp("home")
    store = Store(home=home)
    collection = store.create("sample", encoder.identity)
    report = InputReport()
    index_documents(collection, encoder, list(read_documents([SAMPLE / "docs"], report)), report)
    return home
