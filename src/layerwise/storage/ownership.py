"""Which store owns a collection's folder: a UUID in the database row and in a marker file in the folder.

Several databases may share one home (``--db`` and ``--home`` are independent), and
two of them can hold a collection of the same name and id. A folder therefore
belongs to exactly one collection of one database: the one whose ``uid`` its
marker names. A new collection claims a folder by creating it (``mkdir`` fails
when it exists, so two stores never claim the same one); a folder that exists
already is never deleted or reused, and the new collection gets a folder of its
own and says so. Collections made before markers existed (``uid`` NULL) claim
their ``NAME-ID`` folder at their first write when no other marker is there.

A writer holds the collection's lock and then checks that the collection still
exists (``drop`` may have run meanwhile) and that the folder is its own, so a
writer never writes into another store's folder or leaves an orphan folder behind.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from layerwise.errors import CollectionNotFound, StorageError
from layerwise.storage import filenames
from layerwise.storage.lock import WriteLock

if TYPE_CHECKING:
    from layerwise.storage.collection import Collection

MARKER = "owner.json"
LOCK = "write.lock"


def new_uid() -> str:
    return uuid.uuid4().hex


def default_folder(name: str, collection_id: int) -> str:
    """The folder of a collection made before folders were recorded."""
    return f"{name}-{collection_id}"


def public_url(url: str) -> str:
    """A database URL fit for a message or a marker: no password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any unparsable URL is shown without its credentials part
        return url.split("@")[-1]


def read_marker(folder: Path) -> dict[str, str] | None:
    """The marker of a folder, or None when it has none (or it cannot be read)."""
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("uid"), str) else None


def write_marker(folder: Path, uid: str, name: str, url: str) -> None:
    """Write the marker atomically (temporary file, fsync, rename)."""
    data = {"uid": uid, "collection": name, "database": public_url(url), "claimed": datetime.now(timezone.utc).isoformat()}
    tmp = folder / f".{MARKER}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=1))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MARKER)


def claim_new_folder(root: Path, name: str, collection_id: int, uid: str, url: str) -> tuple[str, str]:
    """Create a folder for a new collection and mark it; return (folder name, a notice or '').

    ``NAME-ID`` when free; when it exists (another database's collection of the same
    name and id, or files nobody claims) it is left alone and ``NAME-ID-UID`` is used.
    """
    root.mkdir(parents=True, exist_ok=True)
    preferred = default_folder(name, collection_id)
    for folder in (preferred, f"{preferred}-{uid[:8]}", f"{preferred}-{uid}"):
        try:
            (root / folder).mkdir()
        except FileExistsError:
            continue
        write_marker(root / folder, uid, name, url)
        return folder, "" if folder == preferred else _moved(root / preferred, folder, name)
    raise StorageError(f"cannot create a folder for collection '{name}' in {root}: every candidate name exists")


def _moved(taken: Path, folder: str, name: str) -> str:
    other = read_marker(taken)
    whose = (f"collection '{other.get('collection')}' of database {other.get('database')}" if other
             else "files that no collection of this database owns")
    return (f"folder {taken} already holds {whose}; it is left untouched and collection '{name}' "
            f"uses its own folder {taken.parent / folder}")


def foreign(collection: Collection) -> dict[str, str] | None:
    """The marker of another collection in this collection's folder (another database's, sharing this home), or None."""
    marker = read_marker(collection.dir)
    return marker if marker is not None and marker["uid"] != collection.uid else None


def verify(collection: Collection) -> None:
    """Refuse a folder whose marker names another collection."""
    marker = foreign(collection)  # an older collection (no uid yet) never owns a marked folder either
    if marker is not None:
        raise StorageError(_foreign(collection, marker))


def _foreign(collection: Collection, marker: dict[str, str]) -> str:
    return (f"folder {collection.dir} belongs to collection '{marker.get('collection')}' of database "
            f"{marker.get('database')}, not to collection '{collection.name}' of {public_url(collection.store.url)}: "
            "its vectors cannot be trusted for this collection; index it again under a new name")


def claim(collection: Collection) -> None:
    """Mark the folder as this collection's when unmarked (older collections); refuse another's marker."""
    marker = read_marker(collection.dir)
    if marker is None:
        if collection.uid is None:
            collection.adopt_uid(new_uid())
        write_marker(collection.dir, collection.uid or "", collection.name, collection.store.url)
    elif marker["uid"] != collection.uid:
        raise StorageError(_foreign(collection, marker))


@contextmanager
def writer(collection: Collection) -> Iterator[WriteLock]:
    """The single-writer lock, then: the collection still exists and the folder is its own."""
    with WriteLock(collection.dir / LOCK, collection.name) as lock:
        try:
            collection.state()
        except CollectionNotFound:
            _remove_if_only_lock(collection.dir)
            raise
        claim(collection)
        filenames.upgrade(collection)
        yield lock


def _remove_if_only_lock(folder: Path) -> None:
    """Take away a folder the lock just made for a collection dropped meanwhile (never one with other files)."""
    if folder.is_dir() and {p.name for p in folder.iterdir()} <= {LOCK}:
        shutil.rmtree(folder, ignore_errors=True)


def remove_folder(collection: Collection) -> None:
    """Delete a dropped collection's folder, only when it is this collection's (or unmarked and older)."""
    if foreign(collection) is None:  # never another database's collection
        shutil.rmtree(collection.dir, ignore_errors=True)
