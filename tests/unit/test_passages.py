"""Passage splitting with the packaged tokenizer (a tokenizer, no model weights)."""

from functools import lru_cache

import pytest
from transformers import AutoTokenizer

from layerwise.errors import UsageError
from layerwise.indexer.model import resolve_model_path
from layerwise.indexer.passages import Splitter


@lru_cache
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model_path(None)[1])


def _long_text(words=700):
    return " ".join(f"word{i % 50} alpha{i}" for i in range(words))


def test_short_document_is_one_passage_with_title_prefix():
    (p,), = Splitter(tokenizer(), 256).split_many(["Title"], ["Some short text."])
    assert p.text == "Title Some short text." and (p.char_start, p.char_end) == (0, len("Some short text."))


def test_passages_fit_the_model_and_overlap():
    text = _long_text()
    splitter = Splitter(tokenizer(), 64, overlap=8)
    passages = splitter.split_many(["A title"], [text])[0]
    assert len(passages) > 5
    for p in passages:
        assert len(tokenizer()(p.text)["input_ids"]) <= 64
        assert p.text == "A title " + text[p.char_start : p.char_end]
    for a, b in zip(passages, passages[1:]):
        assert b.char_start < a.char_end, "neighbours overlap"
    assert passages[-1].char_end == len(text)


def test_first_passage_equals_truncation_of_title_plus_text():
    text = _long_text()
    first = Splitter(tokenizer(), 256).split_many(["Title"], [text])[0][0]
    truncated = tokenizer()("Title " + text, truncation=True, max_length=256)["input_ids"]
    assert tokenizer()(first.text)["input_ids"] == truncated


def test_max_passages_keeps_the_first():
    assert len(Splitter(tokenizer(), 64, overlap=8, max_passages=1).split_many([""], [_long_text()])[0]) == 1


def test_empty_body_with_title_is_the_title():
    assert [p.text for p in Splitter(tokenizer(), 64, overlap=8).split_many(["Only title"], [""])[0]] == ["Only title"]


def test_bad_overlap():
    with pytest.raises(UsageError, match="overlap"):
        Splitter(tokenizer(), 64, overlap=40)
