"""A running server's address in its home, and a one-shot CLI search forwarded to it.

While ``layerwise serve`` runs (and once its collections are warm) it keeps
``HOME/server.json``: its pid, host, port, whether it needs a token, and a digest of
its database URL (never the URL or the token). A one-shot ``layerwise search`` in the
same home and database sends its query there instead of loading an encoder and
mapping the files: the server answers from warm indices with the same code and the
same JSON. Anything unexpected means the CLI searches in its own process, as if no
server ran: no file, a dead pid, another database, a refused connection, a server
that needs a token the CLI was not given ($LAYERWISE_TOKEN), a slow answer, or any
status but 200 (so errors keep the CLI's own messages and exit codes).

Only the standard library is imported here: the point is a fast cold CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

ADDRESS_FILE = "server.json"
TIMEOUT_S = 10.0  # a forwarded search slower than this is abandoned and run locally


@dataclass(frozen=True)
class Address:
    """Where a server for one home and database listens."""

    pid: int
    host: str
    port: int
    token: bool  # whether every request needs 'Authorization: Bearer TOKEN'
    database: str  # digest of the database URL

    def connect_host(self) -> str:
        """The address to reach it on: loopback for a wildcard binding."""
        return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host.strip("[]"))


def database_digest(url: str) -> str:
    """A digest that tells two database URLs apart without writing either (or a password) to disk."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def publish(home: Path, address: Address) -> None:
    """Write the address file atomically, readable by its owner only."""
    fd, temp = tempfile.mkstemp(dir=home, prefix=".server.", suffix=".json")
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(address), out)
    os.replace(temp, home / ADDRESS_FILE)


def withdraw(home: Path, pid: int) -> None:
    """Remove the address file if it is still this server's."""
    found = read(home)
    if found is not None and found.pid == pid:
        (home / ADDRESS_FILE).unlink(missing_ok=True)


def read(home: Path) -> Address | None:
    """The address file's contents, or None when it is missing or not ours to read."""
    try:
        return Address(**json.loads((home / ADDRESS_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def find(home: Path, database_url: str) -> Address | None:
    """The live server of this home and database, if its file names one."""
    address = read(home)
    if address is None or address.database != database_digest(database_url) or not _alive(address.pid):
        return None
    return address


def forward_search(home: Path, database_url: str, collection: str, query: str, view: str | None, k: int) -> dict[str, Any] | None:
    """The running server's JSON answer to this search, or None (then search locally)."""
    address = find(home, database_url)
    token = os.environ.get("LAYERWISE_TOKEN")
    if address is None or (address.token and not token):
        return None
    params = urlencode([("q", query), ("k", k), *([("view", view)] if view else [])])
    headers = {"Authorization": f"Bearer {token}"} if address.token else {}
    connection = HTTPConnection(address.connect_host(), address.port, timeout=TIMEOUT_S)
    try:
        connection.request("GET", f"/api/collections/{quote(collection, safe='')}/search?{params}", headers=headers)
        response = connection.getresponse()
        body = response.read()
        return json.loads(body) if response.status == 200 else None
    except (OSError, HTTPException, ValueError):
        return None
    finally:
        connection.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
