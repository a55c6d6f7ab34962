"""The knowledge-base server: a FastAPI app over the service layer, and its web page.

``layerwise serve`` builds one :class:`~layerwise.api.Library` for a home and
database, loads each model once and keeps every collection's views warm in
memory; the app in :mod:`layerwise.server.app` answers the JSON API (the same
schema as the CLI's ``--json``) and serves the page in ``static/``. Policy
(tokens, which addresses may be bound, request limits) lives in
:mod:`layerwise.server.security`; starting uvicorn in :mod:`layerwise.server.run`;
the address file a one-shot CLI search finds the server by in
:mod:`layerwise.server.running`. The app is imported on first use, so the CLI can
read that file without importing FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layerwise.server.app import create_app
    from layerwise.server.security import Limits

__all__ = ["create_app", "Limits"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from layerwise.server.app import create_app

        return create_app
    if name == "Limits":
        from layerwise.server.security import Limits

        return Limits
    raise AttributeError(f"module 'layerwise.server' has no attribute '{name}'")
