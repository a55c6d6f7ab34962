"""Starting the server: check the binding, build the library, warm it, announce it in the home (server.json), run uvicorn."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from layerwise import cores
from layerwise.api import Library
from layerwise.server import running
from layerwise.server.app import create_app
from layerwise.server.security import Limits, check_binding

log = logging.getLogger("layerwise.server")


def page_url(host: str, port: int) -> str:
    """The address of the page, with IPv6 hosts bracketed."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def warm(library: Library, then: Callable[[], None] = lambda: None) -> None:
    """Load each collection's query encoder and layer indices so the first searches are fast; then call ``then``."""
    for name in library.names():
        try:
            kb = library.cached(name)
            kb.search_views("warm up", ["all"], 1)
        except Exception as exc:  # noqa: BLE001 - a collection that cannot warm still answers (with its error) later
            log.warning("could not warm collection %s: %s", name, exc)
    then()


def serve(
    home: Path | None = None,
    db: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    limits: Limits = Limits(),
    warm_up: bool = True,
) -> None:
    """Serve a home's collections until interrupted; refuses a non-loopback host without a token."""
    import uvicorn

    cores.spin_briefly()  # before create_app loads torch
    check_binding(host, token)
    library = Library(home, db, device=device, dtype=dtype, query_encoder="full")
    address = running.Address(os.getpid(), host, port, bool(token), running.database_digest(library.store.url))
    app = create_app(library, token=token, limits=limits, lifespan=functools.partial(announced, library, address, warm_up))
    auth = "; every API request needs 'Authorization: Bearer TOKEN'" if token else ""
    print(f"layerwise: serving {library.home} ({len(library.names())} collections) at {page_url(host, port)}{auth}", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@contextlib.asynccontextmanager
async def announced(library: Library, address: running.Address, warm_up: bool, _app: object) -> AsyncIterator[None]:
    """The app's lifespan: warm up in a thread, then publish the address file (CLI searches of this home come
    here); withdraw it at shutdown, before uvicorn re-raises the signal that stopped it."""
    announce = functools.partial(running.publish, library.home, address)
    if warm_up:
        threading.Thread(target=warm, args=(library, announce), name="warm-up", daemon=True).start()
    else:
        announce()
    try:
        yield
    finally:
        running.withdraw(library.home, address.pid)
