"""Shared value types: documents, passages, the model identity, layer embeddings and hits.

Every package may import this module; it imports nothing of layerwise but the
error tree, so the arrows between packages run one way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Protocol, Sequence

import numpy as np

from layerwise.errors import LayerRangeError

JSON_SCHEMA_VERSION = 1  # of every --json output and HTTP answer, documented in docs/json.md


@dataclass(frozen=True)
class Document:
    """One document: external id, optional title, body text and free metadata."""

    doc_id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def content_hash(self) -> str:
        """sha256 of ``json.dumps([title, text], ensure_ascii=False)`` in UTF-8, computed once.

        The JSON is hashed piece by piece without being built (``json_text_pieces``): json.dumps
        took 0.8 s of CPU for a 100 MB text, this 0.25 s, with the same digest (tested), so
        stored hashes stay valid."""
        digest = hashlib.sha256(b'["')
        for piece in json_text_pieces(self.title):
            digest.update(piece)
        digest.update(b'", "')
        for piece in json_text_pieces(self.text):
            digest.update(piece)
        digest.update(b'"]')
        return digest.hexdigest()


_HASH_CHARS = 1 << 22  # characters escaped and hashed at a time
_JSON_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPED = bytes(range(0x20)) + b'"\\'  # what json.dumps(ensure_ascii=False) escapes in a string
_NOT_ESCAPED = bytes(sorted(set(range(256)) - set(_ESCAPED)))


def json_text_pieces(text: str) -> Iterator[bytes]:
    """The UTF-8 bytes of ``json.dumps(text, ensure_ascii=False)`` without its quotes, a chunk at a time.

    A chunk is encoded; bytes.translate lists the bytes in it that JSON escapes (backslash,
    quote, controls: ASCII, so never part of a multi-byte character), and only those are
    replaced, backslash first, with json's own escapes.
    """
    for start in range(0, len(text), _HASH_CHARS):
        chunk = text[start : start + _HASH_CHARS]
        raw = chunk.encode()
        present = set(raw.translate(None, _NOT_ESCAPED))
        if not present:
            yield raw
            continue
        for code in sorted(present, key=lambda c: c != 0x5C):  # the backslash before the escapes that add one
            char = chr(code)
            chunk = chunk.replace(char, _JSON_ESCAPES.get(char, f"\\u{code:04x}"))
        yield chunk.encode()


@dataclass(frozen=True)
class Passage:
    """One window of a document: the text to embed and its span in the document text.

    ``token_ids`` are the model's input ids for ``text`` (special tokens included) when
    the splitter could produce them exactly; empty means the encoder tokenises ``text``.
    """

    ordinal: int
    text: str
    char_start: int
    char_end: int
    token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelIdentity:
    """What a collection records about its encoder; two encoders match when these match."""

    name: str
    config_hash: str
    tokenizer: str
    pooling: str
    max_tokens: int
    num_states: int
    dim: int
    quantize: str | None = None  # int8 vectors differ from fp32 ones: queries must match

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelIdentity":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def differences(self, other: "ModelIdentity") -> list[str]:
        """Fields that differ, as 'field: mine != theirs' lines."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {mine[k]} != {theirs[k]}" for k in mine if k != "name" and mine[k] != theirs[k]]


@dataclass(frozen=True)
class LayerEmbeddings:
    """Vectors shaped (texts, hidden states, dim); ``layers[j]`` labels ``vectors[:, j]``."""

    vectors: np.ndarray  # (n, k, d)
    layers: tuple[int, ...]
    model: ModelIdentity

    @property
    def labels(self) -> list[str]:
        return [f"hidden_states[{i}]" for i in self.layers]

    def layer(self, index: int) -> np.ndarray:
        """Vectors (n, d) of one hidden state, by its model index (negative counts from the end)."""
        state = index % self.model.num_states if index < 0 else index
        if state not in self.layers:
            raise LayerRangeError(f"hidden state {index} was not encoded; these were: {list(self.layers)}")
        return self.vectors[:, self.layers.index(state)]

    def stack(self, indices: Sequence[int]) -> np.ndarray:
        """Vectors (n, len(indices), d) of several hidden states in the given order."""
        return np.stack([self.layer(i) for i in indices], axis=1)


class QueryEncoder(Protocol):
    """What search needs of an encoder: its identity and pooled vectors of chosen hidden states."""

    identity: ModelIdentity

    def encode(self, texts: Sequence[str], layers: Sequence[int] | None = None, progress: bool = False) -> LayerEmbeddings: ...


@dataclass(frozen=True)
class PassageInfo:
    """What a search hit shows: the passage and its document."""

    row: int
    doc_id: str
    title: str
    text: str
    char_start: int
    char_end: int


@dataclass(frozen=True)
class Hit:
    """One search result: a document, its score and its best passage (with its character span)."""

    rank: int
    score: float
    doc_id: str
    title: str
    text: str
    char_start: int
    char_end: int
    row: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
