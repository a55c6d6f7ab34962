"""A damaged metadata database, said plainly: what is wrong and what to do.

SQLite reports damage ("database disk image is malformed", "file is not a
database") from whichever statement first reads a damaged page. A listener on the
engine turns every such error, wherever it surfaces, into one StorageError naming
the file and the remedy instead of a driver dump. ``problems`` is ``check``'s view
of the database: SQLite's quick_check (integrity_check with ``--deep``) and bytes
after its last page. The database is the source of truth for passages and rows, so
damage to it is refused, never "repaired" by guessing.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from layerwise.errors import StorageError

_DAMAGE = ("malformed", "not a database", "database corruption", "disk image")


def install(engine: Engine, url: str) -> None:
    """Translate damage errors of this engine's statements into a clear StorageError."""
    event.listen(engine, "handle_error", functools.partial(_translate, url))


def _translate(url: str, context: Any) -> None:
    original = context.original_exception
    if is_damage(original):
        raise StorageError(message(url, " ".join(str(original).split()))) from None


def is_damage(exc: BaseException) -> bool:
    text = str(exc).lower()
    return type(exc).__name__ in ("DatabaseError", "OperationalError") and any(word in text for word in _DAMAGE)


def message(url: str, reason: str) -> str:
    path = _sqlite_path(url)
    where = path or url.split("@")[-1]
    recover = (f"or recover what SQLite can still read with `sqlite3 {path} .recover | sqlite3 recovered.db` and use "
               "--db recovered.db, " if path else "")
    return (f"the metadata database {where} is damaged ({reason}): restore it from a backup, {recover}"
            "then run `layerwise check COLLECTION --repair`; vector files alone cannot rebuild it")


def _sqlite_path(url: str) -> str | None:
    if not url.startswith("sqlite"):
        return None
    database = url.split("///", 1)[-1].split("?", 1)[0]
    return database.removeprefix("file:") or None


def problems(engine: Engine, url: str, deep: bool) -> list[str]:
    """What is wrong with a SQLite database file ([] when sound, or for other databases)."""
    if engine.dialect.name != "sqlite":
        return []
    with engine.connect() as connection:
        found = [str(r) for r in connection.exec_driver_sql("PRAGMA integrity_check" if deep else "PRAGMA quick_check").scalars()]
        pages = int(connection.exec_driver_sql("PRAGMA page_count").scalar() or 0)
        page_size = int(connection.exec_driver_sql("PRAGMA page_size").scalar() or 0)
    out = [] if found == ["ok"] else [message(url, "; ".join(found[:3]))]
    path = _sqlite_path(url)
    if path and Path(path).is_file() and Path(path).stat().st_size > pages * page_size:
        extra = Path(path).stat().st_size - pages * page_size
        out.append(f"the metadata database {path} has {extra} bytes after its last page, which SQLite never wrote "
                   f"(something else wrote to the file): check that nothing else uses it, then `sqlite3 {path} VACUUM` "
                   "rewrites it without them, or restore it from a backup")
    return out
