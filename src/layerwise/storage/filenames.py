"""Index file names, made from ids and never from user text.

A layer view's index is ``indices/layerN.faiss`` (N an integer the code made); a
stored view's is ``indices/stored/ID.faiss``, ID its database row id. So no view
name, however it is spelt (``./layer6``, ``../../other-2/indices/layer6``), can
name a path. Collections written before this kept a stored view's index at
``indices/NAME.faiss``: a writer moves those (names that are still valid only) the
first time it holds the lock, and readers find them there until then. Stored views
whose names are no longer valid are never turned into a path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from layerwise.errors import LayerSpecError, ViewNotFound
from layerwise.layers import validate_view_name
from layerwise.storage.schema import ViewRow

if TYPE_CHECKING:
    from layerwise.storage.collection import Collection

INDICES = "indices"
_LAYER_RE = re.compile(r"layer(\d{1,4})")


def layer_relpath(view_name: str) -> str | None:
    """``indices/layerN.faiss`` for a layer view's name, else None."""
    match = _LAYER_RE.fullmatch(view_name)
    return f"{INDICES}/layer{int(match.group(1))}.faiss" if match else None


def stored_relpath(view_id: int) -> str:
    return f"{INDICES}/stored/{int(view_id)}.faiss"


def legacy_relpath(view_name: str) -> str | None:
    """Where an older layerwise kept a stored view's index, for names that are still valid; else None."""
    try:
        validate_view_name(view_name)
    except LayerSpecError:
        return None
    return f"{INDICES}/{view_name}.faiss"


def index_relpath(collection: Collection, view_name: str) -> str:
    """The index file of a view, relative to the collection's folder."""
    layer = layer_relpath(view_name)
    if layer is not None:
        return layer
    view_id = _view_id(collection, view_name)
    if view_id is None:
        raise ViewNotFound(f"no stored view '{view_name}' in collection '{collection.name}'")
    current = stored_relpath(view_id)
    legacy = legacy_relpath(view_name)
    if legacy and not (collection.dir / current).exists() and (collection.dir / legacy).is_file():
        return legacy  # an older collection not written since: found by its old name until a writer moves it
    return current


def _view_id(collection: Collection, view_name: str) -> int | None:
    with collection.store.sessions() as s:
        return s.scalar(select(ViewRow.id).where(ViewRow.collection_id == collection.id, ViewRow.name == view_name))


def upgrade(collection: Collection) -> list[str]:
    """Move index files an older layerwise named after their view to id-based names (a writer, under the lock)."""
    moved = []
    with collection.store.sessions() as s:
        views = s.execute(select(ViewRow.id, ViewRow.name).where(ViewRow.collection_id == collection.id)).all()
    for view_id, name in views:
        legacy = legacy_relpath(name)
        old, new = (collection.dir / legacy if legacy else None), collection.dir / stored_relpath(view_id)
        if old is not None and old.is_file() and not new.exists():
            new.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, new)
            moved.append(name)
    return moved


def inside(folder: Path, relpath: str) -> Path:
    """``folder / relpath``, refusing anything that would resolve outside ``folder``."""
    path = (folder / relpath).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ViewNotFound(f"'{relpath}' is outside {folder}")
    return folder / relpath
