"""A description of a collection on disk: model, counts, bytes and views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import distinct, func, select

from layerwise.storage import rowmap
from layerwise.storage.collection import Collection
from layerwise.storage.schema import PassageRow
from layerwise.storage.views import all_views


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def describe(collection: Collection) -> dict[str, Any]:
    """Everything `layerwise info` shows, as plain data."""
    views = [
        {"name": v.name, "spec": v.describe(), "index_bytes": _size(collection.index_path(v.name))}
        for v in all_views(collection)
    ]
    counts = collection.counts()
    return {
        "name": collection.name,
        "model": collection.identity.to_dict(),
        "hidden_states": f"0..{collection.num_states - 1} (0 = embedding output)",
        **counts,
        "vector_dtype": collection.vector_dtype,
        **_bytes(collection, counts["passages"]),
        "default_view": collection.default_view() or "-1",
        "passages_per_document": "max " + str(collection.max_passages) if collection.max_passages else "all",
        "scoring": passage_split(collection)["note"],
        "overlap_tokens": collection.overlap,
        "database": collection.store.url,
        "folder": str(collection.dir),
        "views": views,
    }


def _bytes(collection: Collection, passages: int) -> dict[str, Any]:
    """Bytes on disk of the vectors, the per-row files, the ANN indices and the database, and per live passage."""
    side = _size(rowmap.row_file(collection).path) + _size(rowmap.norm_file(collection).path)
    sizes = {
        "vector_bytes": sum(_size(collection.vector_file(i).path) for i in range(collection.num_states)),
        "row_file_bytes": side,  # each row's document and norms, beside the vectors
        "index_bytes": _size(collection.dir / "indices"),  # ANN files only: exact views search the vectors
    }
    database = _database_bytes(collection)
    per = {k.removesuffix("_bytes"): round(v / passages, 1) for k, v in sizes.items()} if passages else {}
    if database is not None:
        sizes["database_bytes"] = database
        per["database (whole file)"] = round(database / passages, 1) if passages else 0
    return {**sizes, "bytes_per_passage": per}


def _database_bytes(collection: Collection) -> int | None:
    """The SQLite file with its write-ahead log (None for a database server)."""
    url = collection.store.url
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///").split("?")[0])
    return sum(_size(Path(str(path) + suffix)) for suffix in ("", "-wal")) if path.exists() else None


def passage_split(collection: Collection) -> dict[str, Any]:
    """Whether documents were split into passages, how many, and how a document is scored (MaxP)."""
    counts = collection.counts()
    with collection.store.sessions() as s:
        split = int(s.scalar(select(func.count(distinct(PassageRow.document_id)))
                             .where(PassageRow.collection_id == collection.id, PassageRow.ordinal > 0)) or 0)
    limit = collection.identity.max_tokens
    if collection.max_passages == 1:
        note = (f"each document is its first passage, truncated to {limit} tokens (--max-passages 1), "
                "as truncating evaluators (MTEB, BEIR) embed it")
    elif split == 0:
        note = f"no document was split: every one fits in {limit} tokens, so each is one passage"
    else:
        note = (f"{split:,} of {counts['documents']:,} documents were split into passages ({counts['passages']:,} passages "
                f"of at most {limit} tokens); a document scores as its best passage (MaxP). Truncating evaluators "
                "(MTEB, BEIR) see only the first passage: index with --max-passages 1 to compare with them")
    return {"documents": counts["documents"], "passages": counts["passages"], "split_documents": split,
            "max_passages": collection.max_passages, "max_tokens": limit, "scoring": "MaxP", "note": note}
