"""Where layerwise keeps its data: the home folder and the database URL.

Home: ``--home``, else ``$LAYERWISE_HOME``, else ``$XDG_DATA_HOME/layerwise``
(``~/.local/share/layerwise``). It holds one folder per collection with the raw
vectors and FAISS index files. Database: ``--db``, else ``$LAYERWISE_DB``, else
SQLite at ``HOME/layerwise.db``; any SQLAlchemy URL is accepted.
"""

from __future__ import annotations

import os
from pathlib import Path

from layerwise.errors import UsageError


def home_dir(explicit: str | Path | None = None) -> Path:
    """The data home, created if missing."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get("LAYERWISE_HOME"):
        path = Path(os.environ["LAYERWISE_HOME"])
    else:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        path = Path(base) / "layerwise"
    path = path.expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UsageError(f"home {path} is a file, not a folder: give --home (or $LAYERWISE_HOME) a folder, new or existing")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a parent is a regular file
        raise UsageError(f"cannot make home folder {path}: part of that path is a file; give --home a folder") from None
    return path


def database_url(explicit: str | None, home: Path) -> str:
    """A SQLAlchemy URL: a bare file path becomes a SQLite URL."""
    url = explicit or os.environ.get("LAYERWISE_DB") or f"sqlite:///{home / 'layerwise.db'}"
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    return url
