"""The indexing run: documents -> passages -> every layer pooled -> stored vectors, rows and indices.

Only new and changed documents (by content hash) are encoded. Each batch is
committed on its own, so an interrupted run keeps what it finished and the next
run resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from layerwise.indexer.encoder import Encoder
from layerwise.indexer.inputs import InputReport
from layerwise.indexer.passages import Splitter
from layerwise.storage.collection import Collection
from layerwise.storage.views import rebuild_all
from layerwise.types import Document, Passage


@dataclass
class IndexSummary:
    """What one indexing run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    passages: int = 0
    seconds: float = 0.0
    indices: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase: split, encode, store, indices

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the time spent inside the block to phase ``name``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - started


def encode_passages(encoder: Encoder, passages: Sequence[Passage]) -> np.ndarray:
    """Vectors (n, states, d) of passages: from the splitter's token ids when every passage has
    them (no second tokenisation), else from their texts."""
    token_ids = [p.token_ids for p in passages]
    if passages and all(token_ids):
        return encoder.encode_ids(token_ids).vectors
    return encoder.encode([p.text for p in passages]).vectors


def plan(documents: Sequence[Document], existing: dict[str, str], report: InputReport) -> list[Document]:
    """New or changed documents, the first of any repeated id kept."""
    seen: set[str] = set()
    todo = []
    for doc in documents:
        if doc.doc_id in seen:
            report.skip(doc.doc_id, "duplicate document id (the first one is kept)")
            continue
        seen.add(doc.doc_id)
        if existing.get(doc.doc_id) != doc.content_hash:
            todo.append(doc)
    return todo


def batched(items: Sequence[Document], size: int) -> Iterator[Sequence[Document]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def index_documents(
    collection: Collection,
    encoder: Encoder,
    documents: Sequence[Document],
    report: InputReport,
    *,
    sync: bool = False,
    batch_docs: int = 512,
    progress: bool = False,
) -> IndexSummary:
    """Encode new and changed documents into the collection and rebuild its indices."""
    started = time.perf_counter()
    collection.check_identity(encoder.identity)
    with collection.writing():
        return _index_locked(collection, encoder, documents, report, sync, batch_docs, progress, started)


def _index_locked(
    collection: Collection, encoder: Encoder, documents: Sequence[Document], report: InputReport,
    sync: bool, batch_docs: int, progress: bool, started: float,
) -> IndexSummary:
    collection.prepare_write()
    existing = collection.document_hashes()
    todo = plan(documents, existing, report)
    summary = IndexSummary(unchanged=len({d.doc_id for d in documents}) - len(todo))
    splitter = Splitter(encoder.tokenizer, encoder.max_tokens, collection.overlap, collection.max_passages)
    bar = tqdm(total=len(todo), unit="doc", desc=f"indexing {collection.name}", disable=not progress)
    for chunk in batched(todo, batch_docs):
        with summary.phase("split"):
            passages = splitter.split_many([d.title for d in chunk], [d.text for d in chunk])
        with summary.phase("encode"):
            vectors = encode_passages(encoder, [p for ps in passages for p in ps])  # (n, states, d)
        replaced = [d.doc_id for d in chunk if d.doc_id in existing]
        with summary.phase("store"):
            collection.commit_batch(chunk, passages, vectors, replace=replaced)
        summary.updated += len(replaced)
        summary.added += len(chunk) - len(replaced)
        summary.passages += len(vectors)
        bar.update(len(chunk))
    bar.close()
    if sync:
        present = {d.doc_id for d in documents}
        summary.removed = collection.delete_documents([d for d in existing if d not in present])
    if collection.indices_stale() or not collection.index_path("layer0").exists():
        with summary.phase("indices"):
            summary.indices = rebuild_all(collection, progress)
    summary.seconds = time.perf_counter() - started
    return summary
