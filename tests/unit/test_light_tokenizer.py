"""TokenizerCalls (indexer/light.py): the Rust tokenizer answering the splitter's calls exactly as the
Hugging Face fast tokenizer does (a tokenizer, no model weights)."""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from layerwise.errors import UsageError
from layerwise.indexer import model as model_io
from layerwise.indexer.light import TokenizerCalls
from layerwise.indexer.passages import Splitter
from tests.unit.test_passages import _PIECES, _random_text

FOLDER = Path(model_io.resolve_model_path(None)[1])


@lru_cache
def hf():
    return AutoTokenizer.from_pretrained(str(FOLDER))


def calls() -> TokenizerCalls:
    return TokenizerCalls(Tokenizer.from_file(str(FOLDER / "tokenizer.json")))


def _texts():
    rng = random.Random(13)
    return [_random_text(rng, n) for n in (0, 1, 7, 60, 300, 1200)] + [
        "x " * 400, "東" * 700, "ab" + "\x00" * 300 + "cd", "[CLS] [SEP] [MASK] literal specials", " ".join(_PIECES)]


def test_calls_equal_the_fast_tokenizer():
    ours, theirs = calls(), hf()
    texts = _texts()
    assert ours.num_special_tokens_to_add(pair=False) == theirs.num_special_tokens_to_add(pair=False)
    for kwargs in ({}, {"add_special_tokens": False}, {"truncation": True, "max_length": 64}, {"truncation": True, "max_length": 256}):
        assert ours(texts, **kwargs)["input_ids"] == theirs(texts, **kwargs)["input_ids"], kwargs
        for text in texts[:4]:
            assert ours(text, **kwargs)["input_ids"] == theirs(text, **kwargs)["input_ids"], kwargs
    mine = ours(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False).encodings
    want = theirs(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False).encodings
    for a, b in zip(mine, want):
        assert (a.ids, a.offsets, a.word_ids) == (b.ids, b.offsets, b.word_ids)


def test_vocabulary_fingerprint_is_the_remembered_one():
    fingerprint = model_io.tokenizer_fingerprint(hf())
    assert fingerprint.partition(":")[2] == model_io.vocab_fingerprint(calls().get_vocab())


@pytest.mark.parametrize("max_tokens,overlap,window_chars", [(256, 32, 1 << 16), (64, 8, 300), (48, 8, 777)])
def test_splitter_cuts_the_same_passages_with_either_tokenizer(max_tokens, overlap, window_chars):
    texts = _texts()
    titles = ["", "A title", "t" * 40, "Title with a rather long set of words " * 3] * 3
    ours = Splitter(calls(), max_tokens, overlap=overlap, window_chars=window_chars)
    theirs = Splitter(hf(), max_tokens, overlap=overlap, window_chars=window_chars)
    assert ours.streams and theirs.streams
    assert ours.split_many(titles[: len(texts)], texts) == theirs.split_many(titles[: len(texts)], texts)
    (first,), = Splitter(calls(), max_tokens, overlap=overlap, max_passages=1).split_many(["T"], ["word " * 50_000])
    (want,), = Splitter(hf(), max_tokens, overlap=overlap, max_passages=1).split_many(["T"], ["word " * 50_000])
    assert first == want and len(first.token_ids) == max_tokens


def test_a_tokenizer_file_that_truncates_or_pads_is_called_like_the_fast_tokenizer(tmp_path: Path):
    backend = Tokenizer.from_file(str(FOLDER / "tokenizer.json"))
    backend.enable_truncation(8)
    backend.enable_padding(length=300)
    backend.save(str(tmp_path / "tokenizer.json"))
    ours = TokenizerCalls(Tokenizer.from_file(str(tmp_path / "tokenizer.json")))
    text = "word " * 100
    assert ours(text)["input_ids"] == hf()(text)["input_ids"]
    assert len(ours(text)["input_ids"]) == 102
    assert ours(text, truncation=True, max_length=16)["input_ids"] == hf()(text, truncation=True, max_length=16)["input_ids"]
    assert len(ours(text)["input_ids"]) == 102, "a truncating call leaves the plain one as it was"


def test_max_tokens_is_checked_as_with_the_fast_tokenizer():
    for asked in (None, 3, 256):
        assert model_io.checked_max_tokens(asked, 256, calls()) == model_io.checked_max_tokens(asked, 256, hf())
    for asked in (2, 257):
        with pytest.raises(UsageError) as ours:
            model_io.checked_max_tokens(asked, 256, calls())
        with pytest.raises(UsageError) as theirs:
            model_io.checked_max_tokens(asked, 256, hf())
        assert str(ours.value) == str(theirs.value)


def test_truncation_needs_a_length():
    with pytest.raises(ValueError, match="max_length"):
        calls()("text", truncation=True)
