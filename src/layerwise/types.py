"""Shared value types: documents, passages, the model identity, layer embeddings and hits.

Every package may import this module; it imports nothing of layerwise but the
error tree, so the arrows between packages run one way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Protocol, Sequence

import numpy as np

from layerwise.errors import LayerRangeError


@dataclass(frozen=True)
class Document:
    """One document: external id, optional title, body text and free metadata."""

    doc_id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the JSON [title, text]; computed once (a 100 MB text takes about a second)."""
        blob = json.dumps([self.title, self.text], ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


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
