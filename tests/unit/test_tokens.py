"""Fast tokenisation (cut to a character budget, Rust encode_batch) equals the HF tokenizer call."""

from functools import lru_cache
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from layerwise.indexer.model import resolve_model_path
from layerwise.indexer.tokens import FastTokenizer

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "data" / "scifact" / "corpus.jsonl"

TRICKY = [
    "",
    "   ",
    "Short.",
    "x" * 5000,  # one word far over 100 characters: a single [UNK]
    "한국어 문장입니다 " * 400,  # a Hangul syllable becomes up to three tokens
    "日本語の文章です。" * 300,  # CJK characters are words of their own
    ("Cafe\u0301 re\u0301sume\u0301 " * 300),  # combining accents, stripped by the normaliser
    "[SEP] [CLS] tokens inside the text " * 200,
    "word " * 253 + "supercalifragilisticexpialidocious" * 3 + " tail" * 50,  # a long word at the kept limit
    ("alpha, beta; gamma! " * 400),
    "\t\n".join(["line"] * 2000),
]


@lru_cache
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model_path(None)[1])


def reference(texts, max_tokens):
    return tokenizer()(list(texts), truncation=True, max_length=max_tokens)["input_ids"]


@pytest.mark.parametrize("max_tokens", [256, 32])
@pytest.mark.parametrize("chars_per_token", [6, 2, 1])
def test_equals_the_hf_call_on_tricky_texts(max_tokens, chars_per_token):
    fast = FastTokenizer(tokenizer(), max_tokens, chars_per_token)
    assert fast(TRICKY) == reference(TRICKY, max_tokens)


def test_a_tight_budget_falls_back_to_whole_texts_and_stays_exact():
    fast = FastTokenizer(tokenizer(), 256, chars_per_token=1)
    texts = ["a reasonably ordinary sentence about logs " * 100]
    assert fast(texts) == reference(texts, 256)
    assert fast.fallbacks == 1  # 256 characters hold far fewer than 254 tokens


def test_a_generous_budget_cuts_without_fallback():
    fast = FastTokenizer(tokenizer(), 64)
    texts = ["plain english words in a long text " * 200] * 3
    assert fast(texts) == reference(texts, 64)
    assert fast.fallbacks == 0 and len(texts[0]) > fast.budget


def test_equals_the_hf_call_on_the_sample_notes():
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLE.rglob("*")) if p.is_file()]
    assert len(texts) > 30
    long = [t * 20 for t in texts]  # long enough to be cut
    for max_tokens in (256, 48):
        assert FastTokenizer(tokenizer(), max_tokens)(texts + long) == reference(texts + long, max_tokens)


@pytest.mark.skipif(not SCIFACT.is_file(), reason="../shared/data/scifact is absent")
def test_equals_the_hf_call_on_scifact_abstracts():
    import json

    with open(SCIFACT, encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(600), f)]
    texts = [f"{d['title']} {d['text']}" for d in docs]
    fast = FastTokenizer(tokenizer(), 256)
    assert fast(texts) == reference(texts, 256)
    assert fast.fallbacks < len(texts) // 20  # the cut holds for almost every abstract
