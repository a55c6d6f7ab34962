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


# --- streaming: the same passages as one whole-document tokenizer call -------------------------

def _whole_document_split(splitter, title, text):
    """The splitter as it was before streaming: one tokenizer call over the whole body (the oracle)."""
    tok = splitter.tokenizer
    enc = tok([text], add_special_tokens=False, return_offsets_mapping=True).encodings[0]
    offsets, word_ids = enc.offsets, enc.word_ids
    title_len = len(tok(title, add_special_tokens=False)["input_ids"]) if title else 0
    prefix = f"{title} " if title else ""
    window = splitter.body_budget - min(title_len, splitter.body_budget // 2)
    if not offsets:
        return [(0, title, 0, 0)] if title.strip() else []
    out, start = [], 0
    while True:
        end = min(start + window, len(offsets))
        a, b = offsets[start][0], offsets[end - 1][1]
        out.append((len(out), prefix + text[a:b], a, b))
        if end >= len(offsets) or len(out) == splitter.max_passages:
            return out
        cut = limit = end
        cut = first = max(end - splitter.overlap, start + 1)
        while cut < limit and cut > 0 and word_ids[cut] is not None and word_ids[cut] == word_ids[cut - 1]:
            cut += 1
        start = cut if cut < limit else first


_PIECES = [
    "alpha", "Beta", "gamma,", "delta.", "(epsilon)", "zeta-eta", "théta", "iota\u0301", "kappa’s", "東京都",
    "😀🎉", "naïve", "straße", "[SEP]", "[UNK]", "x" * 130, "supercalifragilisticexpialidocious", "3.14159",
    "\x00", "\u200b", "don't", "e\u0301e\u0301", "ﬁne", "İstanbul", "Ωmega", "…", "\t", "\n\n", "  ",
]


def _random_text(rng, words):
    parts = []
    for _ in range(words):
        parts.append(rng.choice(_PIECES))
        parts.append(rng.choice([" ", " ", " ", "", "\n", "  "]))
    return "".join(parts)


@pytest.mark.parametrize("window_chars", [256, 300, 777])
def test_streaming_split_equals_whole_document_split(window_chars):
    import random

    rng = random.Random(window_chars)
    whole = Splitter(tokenizer(), 64, overlap=8)
    streamed = Splitter(tokenizer(), 64, overlap=8, window_chars=window_chars)
    sizes = [0, 1, 3, 10, 50, 120, 255, 256, 257, 299, 300, 301, 600, 2000]
    texts = [_random_text(rng, n) for n in sizes] + [
        "a" * 5000,  # one word longer than many windows
        "word " * 3000,  # a window border after every few words
        "東" * 2000,  # multibyte characters, each its own word, across every border
        "😀" * 1500,  # 4-byte UTF-8 characters
        "x " * 127 + "y" * 1000 + " tail",  # a long word straddling a border
        "ab" + "\x00" * 700 + "cd end",  # removed characters joining a word across a border
    ]
    titles = ["", "A title", "t" * 40, "Title with a rather long set of words " * 3]
    for k, text in enumerate(texts):
        title = titles[k % len(titles)]
        got = [(p.ordinal, p.text, p.char_start, p.char_end) for p in streamed.split_many([title], [text])[0]]
        assert got == _whole_document_split(whole, title, text), (k, text[:80])


def test_streaming_respects_max_passages_and_reads_only_what_it_needs():
    text = "word " * 200_000
    calls = []
    tok = tokenizer()

    class Counting:
        def __getattr__(self, name):
            return getattr(tok, name)

        def __call__(self, texts, **kw):
            calls.append(sum(len(t) for t in texts) if isinstance(texts, list) else len(texts))
            return tok(texts, **kw)

    splitter = Splitter(Counting(), 256, max_passages=1)
    (first,), = splitter.split_many(["T"], [text])
    assert first.text == "T " + text[: first.char_end]
    assert sum(calls) < 100_000, "the first passage must not tokenize the whole document"


def test_batched_first_windows_do_not_change_passages():
    import random

    rng = random.Random(7)
    texts = [_random_text(rng, rng.randint(0, 400)) for _ in range(60)]
    titles = [rng.choice(["", "Doc", "A longer title"]) for _ in texts]
    splitter = Splitter(tokenizer(), 64, overlap=8, window_chars=512)
    together = splitter.split_many(titles, texts)
    alone = [splitter.split_many([t], [x])[0] for t, x in zip(titles, texts)]
    assert together == alone


# --- token ids: exactly what re-tokenizing the passage text gives ------------------------------

def _assert_ids_match(splitter, passages):
    filled = 0
    for p in passages:
        if p.token_ids:
            filled += 1
            want = splitter.tokenizer(p.text, truncation=True, max_length=splitter.max_tokens)["input_ids"]
            assert list(p.token_ids) == want, p.text[:80]
    return filled


@pytest.mark.parametrize("max_tokens,overlap", [(256, 32), (64, 8)])
def test_token_ids_equal_retokenizing_random_text(max_tokens, overlap):
    import random

    rng = random.Random(max_tokens)
    texts = [_random_text(rng, n) for n in (0, 5, 80, 400, 1500)]
    titles = ["", "Title", "", "A very long title " * 30, "x"]
    splitter = Splitter(tokenizer(), max_tokens, overlap=overlap, window_chars=1000)
    split = splitter.split_many(titles, texts)
    passages = [p for ps in split for p in ps]
    assert _assert_ids_match(splitter, passages) == len(passages)
    mid_word = [p for text, ps in zip(texts, split) for p in ps if p.char_start and text[p.char_start - 1 : p.char_start + 1].isalnum()]
    assert mid_word, "the texts include words longer than the overlap, whose windows start inside them"


def test_token_ids_equal_retokenizing_the_sample():
    from pathlib import Path

    from layerwise.indexer.inputs import InputReport, read_documents

    sample = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
    docs = list(read_documents([sample], InputReport()))
    for max_tokens, overlap in [(256, 32), (48, 8)]:
        splitter = Splitter(tokenizer(), max_tokens, overlap=overlap)
        passages = [p for ps in splitter.split_many([d.title for d in docs], [d.text for d in docs]) for p in ps]
        assert _assert_ids_match(splitter, passages) == len(passages) > len(docs) // 2


def _shared_data():
    from pathlib import Path

    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return None


def test_token_ids_equal_retokenizing_scifact():
    import itertools
    import json

    data = _shared_data()
    corpus = data / "scifact" / "corpus.jsonl" if data else None
    if corpus is None or not corpus.is_file():
        pytest.skip("../shared/data/scifact is absent")
    with open(corpus, encoding="utf-8") as f:
        rows = [json.loads(line) for line in itertools.islice(f, 400)]
    for max_tokens, overlap in [(256, 32), (96, 16)]:
        splitter = Splitter(tokenizer(), max_tokens, overlap=overlap)
        passages = [p for ps in splitter.split_many([r["title"] for r in rows], [r["text"] for r in rows]) for p in ps]
        assert _assert_ids_match(splitter, passages) == len(passages)


def test_tokenizers_that_cannot_stream_leave_token_ids_empty():
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers

    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    other = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    splitter = Splitter(other, 80, overlap=4, window_chars=256)
    passages = splitter.split_many([""], ["a b " * 300])[0]
    assert not splitter.streams and len(passages) > 3
    assert all(p.token_ids == () for p in passages)
