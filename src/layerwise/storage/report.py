"""A description of a collection on disk: model, counts, bytes and views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layerwise.storage.collection import Collection
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
    return {
        "name": collection.name,
        "model": collection.identity.to_dict(),
        "hidden_states": f"0..{collection.num_states - 1} (0 = embedding output)",
        **collection.counts(),
        "vector_dtype": collection.vector_dtype,
        "vector_bytes": _size(collection.dir / "vectors"),
        "index_bytes": _size(collection.dir / "indices"),
        "default_view": collection.default_view() or "-1",
        "passages_per_document": "max " + str(collection.max_passages) if collection.max_passages else "all (documents longer than the model's limit are split; a document scores by its best passage, MaxP)",
        "overlap_tokens": collection.overlap,
        "database": collection.store.url,
        "folder": str(collection.dir),
        "views": views,
    }
