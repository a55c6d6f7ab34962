"""The indexing run: documents -> passages -> every layer pooled -> stored vectors, rows and indices.

Only new and changed documents (by content hash) are encoded. Each batch is
committed on its own, so an interrupted run keeps what it finished and the next
run resumes where it stopped.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from layerwise.errors import UsageError
from layerwise.indexer.inputs import InputReport
from layerwise.indexer.passages import Splitter
from layerwise.storage.collection import Collection
from layerwise.storage.views import needs_update, update_all
from layerwise.types import Document, Passage


ENCODE_PASSAGES = 2048  # passages encoded, and their vectors written, at a time
T = TypeVar("T")

if TYPE_CHECKING:  # torch loads when an encoder is built, not when a search imports this module
    from layerwise.indexer.encoder import Encoder


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

    def timed(self, items: Iterator[T], name: str) -> Iterator[T]:
        """Yield from ``items``, adding the time spent producing them to phase ``name``."""
        while True:
            with self.phase(name):
                item = next(items, None)
            if item is None:
                return
            yield item


def encode_passages(encoder: Encoder, passages: Sequence[Passage], progress: bool = False) -> np.ndarray:
    """Vectors (n, states, d) of passages: from the splitter's token ids when every passage has
    them (no second tokenisation), else from their texts."""
    token_ids = [p.token_ids for p in passages]
    if passages and all(token_ids):
        return encoder.encode_ids(token_ids, progress=progress).vectors
    return encoder.encode([p.text for p in passages], progress=progress).vectors


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


def _return_freed_memory() -> None:
    """Hand the heap that the batches freed (passage texts and rows) back to the OS before the
    indices are built: glibc keeps it otherwise, and a huge document's passages left ~300 MB
    of RSS under the index build. Nothing to do where malloc_trim does not exist."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def check_batch_docs(batch_docs: int) -> None:
    """Refuse a batch size that would index nothing (or loop forever)."""
    if batch_docs < 1:
        raise UsageError(f"--batch-docs {batch_docs} must be at least 1 (documents per committed batch)")


def check_splitting(encoder: Encoder, overlap: int, max_passages: int | None) -> None:
    """Refuse passage options the encoder cannot split with (too short --max-tokens, too large --overlap)."""
    Splitter(encoder.tokenizer, encoder.max_tokens, overlap, max_passages, limit=encoder.model_limit)


def batched(items: Sequence[Document], size: int) -> Iterator[Sequence[Document]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _index_chunk(
    collection: Collection, encoder: Encoder, splitter: Splitter, chunk: Sequence[Document], replaced: list[str], bar: Any,
    summary: IndexSummary,
) -> int:
    """Split, encode and commit one batch of documents; return its passage count.

    Passages are encoded as they are cut, ENCODE_PASSAGES at a time, and their
    vectors appended to the files at once, so a document of any length streams
    through in bounded memory; the batch's rows are committed together at the
    end (a crash before that leaves only uncommitted vector rows, cut off by the
    next writer).
    """
    parts: list[list[Passage]] = [[] for _ in chunk]
    pending: list[tuple[int, Passage]] = []
    cut = summary.timed(splitter.stream([d.title for d in chunk], [d.text for d in chunk]), "split")
    for position, passage in cut:
        pending.append((position, passage))
        if len(pending) == ENCODE_PASSAGES:
            _encode_pending(collection, encoder, pending, parts, summary, not bar.disable)
            bar.set_postfix(passages=sum(map(len, parts)), refresh=True)
    _encode_pending(collection, encoder, pending, parts, summary, not bar.disable)
    with summary.phase("store"):
        collection.commit_rows(chunk, parts, replace=replaced)
    return sum(map(len, parts))


def _encode_pending(
    collection: Collection, encoder: Encoder, pending: list[tuple[int, Passage]], parts: list[list[Passage]],
    summary: IndexSummary, progress: bool,
) -> None:
    """Encode the pending passages, append their vectors, and keep the passages (less their token ids).

    With progress on, the encoder's own bar moves once per batch it runs.
    """
    if not pending:
        return
    with summary.phase("encode"):
        vectors = encode_passages(encoder, [p for _, p in pending], progress)  # (n, states, d)
    with summary.phase("store"):
        collection.append_vectors(vectors)
    for position, passage in pending:
        parts[position].append(replace(passage, token_ids=()))
    pending.clear()


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
    check_batch_docs(batch_docs)
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
        replaced = [d.doc_id for d in chunk if d.doc_id in existing]
        summary.passages += _index_chunk(collection, encoder, splitter, chunk, replaced, bar, summary)
        summary.updated += len(replaced)
        summary.added += len(chunk) - len(replaced)
        bar.update(len(chunk))
    bar.close()
    _return_freed_memory()
    if sync:
        present = {d.doc_id for d in documents}
        summary.removed = collection.delete_documents([d for d in existing if d not in present])
    if needs_update(collection):
        with summary.phase("indices"):
            summary.indices = update_all(collection, progress)
    summary.seconds = time.perf_counter() - started
    return summary
