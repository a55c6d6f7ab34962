"""The indexing run: documents -> passages -> every layer pooled -> stored vectors, rows and indices.

Only new and changed documents (by content hash) are encoded. Each batch is
committed on its own, so an interrupted run keeps what it finished and the next
run resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from layerwise.indexer.encoder import Encoder
from layerwise.indexer.inputs import InputReport
from layerwise.indexer.passages import Splitter
from layerwise.storage.collection import Collection
from layerwise.storage.views import rebuild_all
from layerwise.types import Document


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
        passages = splitter.split_many([d.title for d in chunk], [d.text for d in chunk])
        vectors = encoder.encode([p.text for ps in passages for p in ps]).vectors  # (n, states, d)
        replaced = [d.doc_id for d in chunk if d.doc_id in existing]
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
        summary.indices = rebuild_all(collection, progress)
    summary.seconds = time.perf_counter() - started
    return summary
