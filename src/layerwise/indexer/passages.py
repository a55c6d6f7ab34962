"""Splitting documents into passages that fit the encoder, with character offsets.

A document ``title + " " + text`` is cut into windows of at most the model's
maximum length (special tokens included) with a token overlap between
neighbours. Windows end on token boundaries and later windows start on word
starts, so a passage re-tokenizes to the same tokens. Every passage is prefixed
with the title, and the first passage is exactly what a truncating encoder
(MTEB, sentence-transformers) would embed. Offsets are character positions in
the document text, so a hit shows its span.

Long documents are split as a stream: the body is tokenized a bounded window of
characters at a time and passages are yielded as they are cut, so memory stays
bounded and time linear however long the document is (a 100 MB single-line text
once took 7 GB in one tokenizer call). A window's last words (those that start
within ``GUARD_CHARS`` of its end, where a word or special-token literal may be
cut) are dropped and tokenized again at the start of the next window, which
begins on a word start. That gives exactly the tokens of a whole-document call
for tokenizers whose words do not depend on what precedes them: WordPiece with
BERT pre-tokenization, i.e. the BERT family. Other tokenizers are tokenized
whole, as before.

Each passage carries its model input ids (``token_ids``, special tokens
included), built from the body tokens without a second tokenizer call; they
equal ``tokenizer(passage.text, truncation=True, max_length=max_tokens)``. A
window that had to start inside a word longer than the overlap (so its text
re-tokenizes differently) is tokenized again on its own. Tokenizers that do not
stream exactly leave ``token_ids`` empty, and the encoder tokenizes the text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from layerwise.errors import UsageError
from layerwise.types import Passage

WINDOW_CHARS = 1 << 16  # characters per tokenizer call on one long document
CALL_CHARS = 1 << 18  # characters per batched tokenizer call over the first windows of many documents
GUARD_CHARS = 128  # words starting this close to a window's end are tokenized again in the next window


@dataclass(frozen=True)
class Splitter:
    """Cuts documents into passages for one tokenizer and length limit."""

    tokenizer: Any
    max_tokens: int
    overlap: int = 32
    max_passages: int | None = None
    window_chars: int = WINDOW_CHARS
    limit: int | None = None  # the model's maximum input length, named in errors when known
    _wrap: tuple[tuple[int, ...], tuple[int, ...]] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.max_passages is not None and self.max_passages < 1:
            raise UsageError(f"--max-passages {self.max_passages} must be at least 1")
        smallest = self.tokenizer.num_special_tokens_to_add(pair=False) + 2 * (self.overlap + 1)
        if self.max_tokens < smallest:
            valid = f"{smallest}..{self.limit}" if self.limit else f"at least {smallest}"
            raise UsageError(
                f"--max-tokens {self.max_tokens} is too small: with --overlap {self.overlap} a passage takes {valid} tokens "
                "(lower --overlap for shorter passages)"
            )
        if not 0 <= self.overlap < self.body_budget // 2:
            raise UsageError(f"--overlap {self.overlap} must be between 0 and {self.body_budget // 2 - 1} tokens")
        if self.window_chars < 2 * GUARD_CHARS:
            raise ValueError(f"window_chars {self.window_chars} must be at least {2 * GUARD_CHARS}")
        object.__setattr__(self, "_wrap", _special_wrap(self.tokenizer) if _streams_exactly(self.tokenizer) else None)

    @property
    def body_budget(self) -> int:
        return self.max_tokens - self.tokenizer.num_special_tokens_to_add(pair=False)

    @property
    def streams(self) -> bool:
        """Whether long bodies are tokenized window by window (and token ids filled)."""
        return self._wrap is not None

    def split_many(self, titles: Sequence[str], texts: Sequence[str]) -> list[list[Passage]]:
        """Passages of each (title, text) document."""
        out: list[list[Passage]] = [[] for _ in texts]
        for i, passage in self.stream(titles, texts):
            out[i].append(passage)
        return out

    def stream(self, titles: Sequence[str], texts: Sequence[str]) -> Iterator[tuple[int, Passage]]:
        """(document index, passage) in document order, cut as the bodies are tokenized.

        The first window of several documents is tokenized in one batched call
        (at most ``CALL_CHARS`` characters); the rest of a long body one window
        at a time, only as far as the passages asked for so far need.
        """
        for group in _groups([min(len(t), self._first_chars(t)) for t in texts], CALL_CHARS):
            title_ids = self._title_ids([titles[i] for i in group])
            firsts = self._tokenize([texts[i][: self._first_chars(texts[i])] for i in group])
            for i, first, title in zip(group, firsts, title_ids):
                body = _Body(self, texts[i], first)
                for passage in self._cut(titles[i], title, texts[i], body):
                    yield i, passage

    def _first_chars(self, text: str) -> int:
        return self.window_chars if self.streams else len(text)

    def _tokenize(self, texts: list[str]) -> list[Any]:
        """Tokenizer encodings (ids, offsets, word ids) of the texts, no special tokens."""
        if not texts:
            return []
        return self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False).encodings

    def _title_ids(self, titles: Sequence[str]) -> list[list[int]]:
        with_title = [i for i, t in enumerate(titles) if t]
        out: list[list[int]] = [[] for _ in titles]
        if with_title:
            ids = self.tokenizer([titles[i] for i in with_title], add_special_tokens=False)["input_ids"]
            for i, tokens in zip(with_title, ids):
                out[i] = list(tokens)
        return out

    def _cut(self, title: str, title_ids: list[int], text: str, body: _Body) -> Iterator[Passage]:
        """The passages of one document (the algorithm of a whole-document split, over a token stream)."""
        prefix = f"{title} " if title else ""
        window = self.body_budget - min(len(title_ids), self.body_budget // 2)
        if body.known(1) == 0:
            if title.strip():
                yield Passage(0, title, 0, 0, self._ids(title_ids) if self.streams else ())
            return
        start, ordinal = 0, 0
        while True:
            known = body.known(start + window + 1)
            end = min(start + window, known)
            char_start, char_end = body.starts(start), body.ends(end - 1)
            passage_text = prefix + text[char_start:char_end]
            yield Passage(ordinal, passage_text, char_start, char_end, self._passage_ids(title_ids, body, start, end, passage_text))
            ordinal += 1
            if end >= known or ordinal == self.max_passages:
                return
            start = body.snap(max(end - self.overlap, start + 1), end)
            body.forget(start)

    def _passage_ids(self, title_ids: list[int], body: _Body, start: int, end: int, text: str) -> tuple[int, ...]:
        """Model input ids of a passage: its window's tokens, or (rarely: a window that had to
        start inside a word longer than the overlap) its text tokenized again; () when not streaming."""
        if not self.streams:
            return ()
        if body.head(start):
            return self._ids(title_ids + body.ids(start, end))
        return tuple(self.tokenizer(text, truncation=True, max_length=self.max_tokens, verbose=False)["input_ids"])

    def _ids(self, tokens: list[int]) -> tuple[int, ...]:
        assert self._wrap is not None
        head, tail = self._wrap
        return (*head, *tokens[: self.body_budget], *tail)


class _Body:
    """One document body's tokens, tokenized window by window as the cutter asks for them.

    Token positions are global (from the body's first token); tokens before
    ``base`` have been forgotten.
    """

    def __init__(self, splitter: Splitter, text: str, first: Any) -> None:
        self.splitter = splitter
        self.text = text
        self.base = 0
        self._ids: list[int] = []
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._heads: list[bool] = []
        self.next_char = 0
        self._take(first, min(len(text), splitter._first_chars(text)))

    def known(self, wanted: int) -> int:
        """Tokenize until ``wanted`` tokens are known or the body ends; return how many are known."""
        while self.base + len(self._ids) < wanted and self.next_char < len(self.text):
            stop = min(self.next_char + self.splitter.window_chars, len(self.text))
            self._take(self.splitter._tokenize([self.text[self.next_char : stop]])[0], stop)
        return self.base + len(self._ids)

    def _take(self, encoding: Any, stop: int) -> None:
        """Keep an encoding of text[next_char:stop], less the words a later window must tokenize again."""
        offset, ids, offsets, words = self.next_char, encoding.ids, encoding.offsets, encoding.word_ids
        keep = len(ids) if stop >= len(self.text) else _safe_count(offsets, words, stop - offset)
        if keep == 0 and stop < len(self.text) and ids:
            wider = min(offset + 2 * (stop - offset), len(self.text))  # one word fills the window: widen it
            self._take(self.splitter._tokenize([self.text[offset:wider]])[0], wider)
            return
        self._ids.extend(ids[:keep])
        self._starts.extend(start + offset for start, _ in offsets[:keep])
        self._ends.extend(end + offset for _, end in offsets[:keep])
        self._heads.extend(k == 0 or words[k] is None or words[k] != words[k - 1] for k in range(keep))
        self.next_char = offset + offsets[keep][0] if keep < len(ids) else stop

    def forget(self, before: int) -> None:
        """Drop tokens before global position ``before`` (no later passage starts there), in large steps."""
        drop = before - self.base
        if drop >= max(4096, len(self._ids) // 2):
            del self._ids[:drop], self._starts[:drop], self._ends[:drop], self._heads[:drop]
            self.base = before

    def starts(self, i: int) -> int:
        return self._starts[i - self.base]

    def ends(self, i: int) -> int:
        return self._ends[i - self.base]

    def head(self, i: int) -> bool:
        """Whether token ``i`` starts a word (so a passage starting there re-tokenizes the same)."""
        return i == 0 or self._heads[i - self.base]

    def ids(self, start: int, end: int) -> list[int]:
        return self._ids[start - self.base : end - self.base]

    def snap(self, start: int, limit: int) -> int:
        """Move a window start forward to the first token of a word, but not past limit."""
        cut = start
        while cut < limit and cut > 0 and not self.head(cut):
            cut += 1
        return cut if cut < limit else start


def _safe_count(offsets: Sequence[tuple[int, int]], words: Sequence[int | None], length: int) -> int:
    """How many leading tokens of a window of ``length`` characters cannot change when the text goes on.

    The last word, and words that start within GUARD_CHARS of the window's end,
    are not safe: the word, or a special-token literal, may continue past it
    (characters the normalizer removes can even join it to the next one).
    """
    keep = len(offsets) - 1
    while keep > 0 and offsets[keep - 1][0] >= length - GUARD_CHARS:
        keep -= 1
    while keep > 0 and words[keep] is not None and words[keep] == words[keep - 1]:
        keep -= 1
    return max(keep, 0)


def _groups(sizes: Sequence[int], budget: int) -> Iterator[list[int]]:
    """Consecutive indices whose sizes add up to at most budget (a larger one alone)."""
    group: list[int] = []
    total = 0
    for i, size in enumerate(sizes):
        if group and total + size > budget:
            yield group
            group, total = [], 0
        group.append(i)
        total += size
    if group:
        yield group


def _streams_exactly(tokenizer: Any) -> bool:
    """Whether windows restarted on a word start tokenize like the whole text (BERT-style WordPiece)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    normalizer = type(backend.normalizer).__name__ if backend.normalizer is not None else "BertNormalizer"
    return (
        type(backend.model).__name__ == "WordPiece"
        and type(backend.pre_tokenizer).__name__ == "BertPreTokenizer"
        and normalizer == "BertNormalizer"
    )


def _special_wrap(tokenizer: Any) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The special ids the tokenizer puts before and after a single text, if that is all it adds."""
    probe = "layerwise probe text"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for at in range(len(full) - len(plain) + 1):
        if full[at : at + len(plain)] == plain:
            head, tail = tuple(full[:at]), tuple(full[at + len(plain) :])
            if len(head) + len(tail) == tokenizer.num_special_tokens_to_add(pair=False):
                return head, tail
    return None
