"""Token-level export against plain transformers: short texts, words, long texts in windows, bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from layerwise.cli import app
from layerwise.indexer import model as model_io
from layerwise.indexer.token_export import export

SHORT = [
    "The quick brown fox jumps over the lazy dog.",
    "Tokenization of unbelievably long words, e.g. 'antidisestablishmentarianism'.",
    "hi",
    "Café au lait — naïve résumé ünïcödé.",
]
LONG = " ".join(f"Sentence {i} talks about topic {i % 7} and the weather in city number {i}." for i in range(60))


@pytest.fixture(scope="module")
def loaded():
    name, model, tokenizer, _ = model_io.load(None)
    return name, model.eval(), tokenizer


def _states(model, input_ids: list[int]) -> np.ndarray:
    """Every hidden state of one unpadded input from plain transformers, (T, states, d)."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([input_ids]), output_hidden_states=True).hidden_states
    return torch.stack(out, dim=2)[0].numpy()


def _export(loaded, tmp_path: Path, texts: list[str], layers: list[int], **options) -> dict:
    name, model, tokenizer = loaded
    path = tmp_path / "out.npz"
    export(model, tokenizer, {"name": name}, [str(i) for i in range(len(texts))], texts, layers, path,
           max_tokens=options.pop("max_tokens", 256), **options)
    return dict(np.load(path))


def test_short_texts_match_plain_transformers(loaded, tmp_path):
    _, model, tokenizer = loaded
    layers = [0, 3, 6]
    data = _export(loaded, tmp_path, SHORT, layers)
    start = data["text_start"]
    for i, text in enumerate(SHORT):
        encoded = tokenizer(text, return_offsets_mapping=True)
        rows = slice(start[i], start[i + 1])
        assert np.abs(data["vectors"][rows] - _states(model, encoded["input_ids"])[:, layers]).max() <= 1e-5
        assert data["token_ids"][rows].tolist() == encoded["input_ids"]
        assert data["tokens"][rows].tolist() == tokenizer.convert_ids_to_tokens(encoded["input_ids"])
        assert data["word_index"][rows].tolist() == [-1 if w is None else w for w in encoded.word_ids()]
        assert data["char_offsets"][rows].tolist() == [list(o) for o in encoded["offset_mapping"]]


def test_words_are_the_mean_of_their_tokens_in_plain_transformers(loaded, tmp_path):
    _, model, tokenizer = loaded
    data = _export(loaded, tmp_path, SHORT[:2], [6], words=True)
    text = SHORT[1]
    encoded = tokenizer(text, return_offsets_mapping=True)
    states = _states(model, encoded["input_ids"])[:, [6]]
    word_ids = encoded.word_ids()
    expected = [states[[t for t, w in enumerate(word_ids) if w == word]].mean(axis=0) for word in sorted({w for w in word_ids if w is not None})]
    rows = slice(data["text_start"][1], data["text_start"][2])
    assert np.abs(data["vectors"][rows] - np.stack(expected)).max() <= 1e-5
    assert data["tokens"][rows].tolist()[:4] == ["Tokenization", "of", "unbelievably", "long"]
    assert "antidisestablishmentarianism" in data["tokens"][rows].tolist()


def test_a_long_text_takes_each_token_from_the_window_where_it_is_most_central(loaded, tmp_path):
    _, model, tokenizer = loaded
    max_tokens, stride = 64, 30
    data = _export(loaded, tmp_path, [LONG], list(range(7)), max_tokens=max_tokens, stride=stride)
    full = tokenizer(LONG, truncation=False)["input_ids"]
    content, size = full[1:-1], max_tokens - 2
    assert len(content) > 5 * size and data["vectors"].shape == (len(full), 7, 384)
    step = size - stride
    starts = list(range(0, len(content) - size, step)) + [len(content) - size]
    checked = 0
    for start in starts:  # a direct encoding of each window: [CLS] chunk [SEP]
        direct = _states(model, [full[0], *content[start : start + size], full[-1]])
        # tokens at least a quarter window from both edges, which this window owns
        for position in range(start + size // 4, start + size - size // 4):
            centrality = min(position - start, start + size - 1 - position)
            if all(min(position - s, s + size - 1 - position) < centrality for s in starts if s != start and s <= position < s + size):
                assert np.abs(data["vectors"][1 + position] - direct[1 + position - start]).max() <= 1e-5
                checked += 1
    assert checked > len(content) // 2
    # the window context matters: a token near a window centre differs from the same token encoded alone
    assert np.abs(data["vectors"][1 + size // 2, 6] - _states(model, [full[0], content[size // 2], full[-1]])[1, 6]).max() > 1e-3


def test_cli_writes_safetensors_with_tokens_and_refuses_other_suffixes(tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("first text here\nsecond one\n")
    out = tmp_path / "tok.safetensors"
    result = CliRunner().invoke(app, ["embed", str(texts), "--tokens", "--layers", "-2:", "-o", str(out)])
    assert result.exit_code == 0, result.output
    from safetensors import safe_open

    with safe_open(str(out), "np") as f:
        assert f.get_tensor("vectors").shape == (9, 2, 384) and f.get_tensor("layers").tolist() == [5, 6]
        assert json.loads(f.metadata()["tokens"])[:4] == ["[CLS]", "first", "text", "here"]
    bad = CliRunner().invoke(app, ["embed", str(texts), "--tokens", "-o", str(tmp_path / "tok.parquet")])
    assert bad.exit_code == 2 and ".npz or .safetensors" in bad.output and not (tmp_path / "tok.parquet").exists()
    words = CliRunner().invoke(app, ["embed", str(texts), "--words", "--layers", "-1", "-o", str(tmp_path / "w.npz")])
    assert words.exit_code == 0, words.output  # --words implies --tokens
    assert np.load(tmp_path / "w.npz")["tokens"].tolist() == ["first", "text", "here", "second", "one"]
    pooled = CliRunner().invoke(app, ["embed", str(texts), "--tokens", "--pooling", "cls", "-o", str(tmp_path / "p.npz")])
    assert pooled.exit_code == 2 and "--pooling" in pooled.output


_PEAK = """
import resource, sys
from pathlib import Path
from layerwise.indexer.token_export import export_with_model
n = int(sys.argv[1])
text = " ".join(f"token{i % 97} filler words" for i in range(n))
export_with_model(None, ["t"], [text], "all", Path(sys.argv[2]), max_tokens=128, stride=32, device="cpu")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_memory_stays_bounded_on_a_long_input(tmp_path):
    """Peak RSS grows far less than the vectors written: they stream to disk."""
    def peak(words: int) -> tuple[int, int]:
        out = tmp_path / f"t{words}.npz"
        done = subprocess.run([sys.executable, "-c", _PEAK, str(words), str(out)], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
        return int(done.stdout.split()[-1]), out.stat().st_size // 2**20

    small_mb, small_written = peak(1500)
    large_mb, large_written = peak(6000)
    assert large_written - small_written > 200  # 7 states x 384 dims x ~18k more tokens
    assert large_mb - small_mb < (large_written - small_written) / 3, (small_mb, large_mb, small_written, large_written)
