"""The knowledge-base server: a FastAPI app over the service layer, and its web page.

``layerwise serve`` builds one :class:`~layerwise.api.Library` for a home and
database, loads each model once and keeps every collection's views warm in
memory; the app in :mod:`layerwise.server.app` answers the JSON API (the same
schema as the CLI's ``--json``) and serves the page in ``static/``. Policy
(tokens, which addresses may be bound, request limits) lives in
:mod:`layerwise.server.security`; starting uvicorn in :mod:`layerwise.server.run`.
"""

from layerwise.server.app import create_app
from layerwise.server.security import Limits

__all__ = ["create_app", "Limits"]
