"""Splitting documents into passages that fit the encoder, with character offsets.

A document ``title + " " + text`` is cut into windows of at most the model's
maximum length (special tokens included) with a token overlap between
neighbours. Windows end on token boundaries and later windows start on word
starts, so a passage re-tokenizes to the same tokens. Every passage is prefixed with the title, and the first passage is
exactly what a truncating encoder (MTEB, sentence-transformers) would embed.
Offsets are character positions in the document text, so a hit shows its span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from layerwise.errors import UsageError
from layerwise.types import Passage


@dataclass(frozen=True)
class Splitter:
    """Cuts documents into passages for one tokenizer and length limit."""

    tokenizer: Any
    max_tokens: int
    overlap: int = 32
    max_passages: int | None = None

    def __post_init__(self) -> None:
        if self.max_passages is not None and self.max_passages < 1:
            raise UsageError(f"--max-passages {self.max_passages} must be at least 1")
        if not 0 <= self.overlap < self.body_budget // 2:
            raise UsageError(f"--overlap {self.overlap} must be between 0 and {self.body_budget // 2 - 1} tokens")

    @property
    def body_budget(self) -> int:
        return self.max_tokens - self.tokenizer.num_special_tokens_to_add(pair=False)

    def split_many(self, titles: Sequence[str], texts: Sequence[str]) -> list[list[Passage]]:
        """Passages of each (title, text) document, tokenized in one batch call."""
        bodies = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        title_lengths = self._title_lengths(titles)
        return [
            self._split_one(titles[i], texts[i], bodies[i], title_lengths[i]) for i in range(len(texts))
        ]

    def _title_lengths(self, titles: Sequence[str]) -> list[int]:
        with_title = [i for i, t in enumerate(titles) if t]
        lengths = [0] * len(titles)
        if with_title:
            ids = self.tokenizer([titles[i] for i in with_title], add_special_tokens=False)["input_ids"]
            for i, tokens in zip(with_title, ids):
                lengths[i] = len(tokens)
        return lengths

    def _split_one(self, title: str, text: str, encoding: Any, title_len: int) -> list[Passage]:
        prefix = f"{title} " if title else ""
        offsets, word_ids = encoding.offsets, encoding.word_ids
        window = self.body_budget - min(title_len, self.body_budget // 2)
        if not offsets:
            return [Passage(0, title, 0, 0)] if title.strip() else []
        passages: list[Passage] = []
        start = 0
        while True:
            end = min(start + window, len(offsets))
            passages.append(Passage(len(passages), prefix + text[offsets[start][0] : offsets[end - 1][1]], offsets[start][0], offsets[end - 1][1]))
            if end >= len(offsets) or len(passages) == self.max_passages:
                return passages
            start = _snap_start(word_ids, max(end - self.overlap, start + 1), end)


def _snap_start(word_ids: list[int | None], start: int, limit: int) -> int:
    """Move a window start forward to the first token of a word, but not past limit."""
    cut = start
    while cut < limit and cut > 0 and word_ids[cut] is not None and word_ids[cut] == word_ids[cut - 1]:
        cut += 1
    return cut if cut < limit else start
