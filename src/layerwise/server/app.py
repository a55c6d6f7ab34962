"""The FastAPI app: the JSON API over :mod:`layerwise.api` and the web page.

Every endpoint is a thin call into a :class:`~layerwise.api.KnowledgeBase` and
returns its result's ``to_dict()``, the schema of the CLI's ``--json``
(docs/json.md). Endpoints are plain functions, so uvicorn runs them in its
thread pool: searches go on while another request (or another process) indexes,
and the knowledge base swaps in a fresh searcher when the collection's committed
state changes, so new documents are served without a restart.

Errors come back as ``{"schema_version": 1, "error": {"type", "message"}}`` with
the status of the exception class (``errors.py``) and the CLI's message; no
traceback reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from importlib import metadata
from importlib import resources
from typing import Annotated, Any

import pydantic_core
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException  # what routing raises for 404/405
from starlette.types import ASGIApp, Receive, Scope, Send

from layerwise import cores
from layerwise.api import KnowledgeBase, Library
from layerwise.errors import LayerwiseError, UsageError
from layerwise.server.security import BodyLimit, Limits, bearer_ok, error_body
from layerwise.storage.collection import validate_collection_name
from layerwise.types import JSON_SCHEMA_VERSION

log = logging.getLogger("layerwise.server")


def _version() -> str:
    try:
        return metadata.version("layerwise")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
STATIC = resources.files("layerwise.server") / "static"


class NewDocument(BaseModel):
    """One document to add: its id (a new id adds, a known one replaces), its text, optionally a title and metadata."""

    id: str = Field(min_length=1, max_length=1_000)
    text: str
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class AddRequest(BaseModel):
    documents: list[NewDocument]
    create: bool = Field(False, description="Create the collection (default model and settings) if it does not exist.")


class DeleteRequest(BaseModel):
    ids: list[str]


class SearchRequest(BaseModel):
    query: str
    views: list[str] | None = None
    k: int = 10


def create_app(library: Library, *, token: str | None = None, limits: Limits = Limits(), kernel_threads: int | None = 1,
               lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None) -> FastAPI:
    """The app for one library; with a token, every /api request must carry it. ``lifespan`` runs around serving
    (``layerwise serve`` warms up and announces itself in the home there).

    ``kernel_threads`` sets torch's and numpy's BLAS threads per operation: concurrency comes
    from the requests (and a search's views, ranked in threads), and on a small machine eight
    requests with a team of spinning kernel threads each ran slower than eight single-threaded
    ones (None leaves both alone). A search alone on an idle machine still encodes on every core,
    through the one team thread (``indexer.team``, ``cores``).
    """
    if kernel_threads:
        import torch  # the server loads the full encoder anyway
        from threadpoolctl import threadpool_limits

        from layerwise.indexer import team

        torch.set_num_threads(kernel_threads)
        team.take_over()  # a search alone on the machine uses every core through the one team thread
        threadpool_limits(kernel_threads, user_api="blas")  # process-wide: exact search's products over mapped rows
    app = FastAPI(
        lifespan=lifespan,
        title="layerwise",
        version=__version__,
        description="Semantic search over every layer of a BERT-family encoder. Responses follow docs/json.md (schema_version 1).",
    )
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    app.add_middleware(CountedWork)
    _errors(app)

    async def authorized(request: Request) -> None:  # async: a sync dependency would cost each request a thread hop
        if token and not bearer_ok(request.headers.get("authorization"), token):
            missing = request.headers.get("authorization") is None
            raise Unauthorized("this server needs a token: send 'Authorization: Bearer TOKEN'" if missing
                                else "the token is wrong: send the token the server was started with")

    guard = [Depends(authorized)]
    api = _Api(library, limits)
    for path, method, endpoint in api.routes():
        app.add_api_route("/api" + path, endpoint, methods=[method], dependencies=guard)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_api_route("/", lambda: FileResponse(str(STATIC / "index.html")), methods=["GET"], include_in_schema=False)
    return app


class RustJSON(JSONResponse):
    """A search's JSON written by pydantic-core's serializer (Rust): the 66 KB answer of 7 SciFact views in 0.1 ms,
    against 0.6 ms through json.dumps; the same document. A non-finite score would be null, not a 500."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content, inf_nan_mode="null")


class CountedWork:
    """ASGI middleware that counts every HTTP request as work in flight (``cores.working``) until its response is
    sent: a search granted every idle core while another request is still being parsed or answered in the event
    loop would have its kernel threads wait for that core."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with cores.working():
            await self.app(scope, receive, send)


class Unauthorized(LayerwiseError):
    """No token, or the wrong one (401)."""

    http_status = 401


class _Api:
    """The endpoints, bound to one library and its limits."""

    def __init__(self, library: Library, limits: Limits) -> None:
        self.library = library
        self.limits = limits

    def routes(self) -> list[tuple[str, str, Any]]:
        c = "/collections/{name}"
        return [
            ("/health", "GET", self.health),
            ("/collections", "GET", self.collections),
            (c, "GET", self.info),
            (c + "/views", "GET", self.views),
            (c + "/search", "GET", self.search),
            (c + "/search", "POST", self.search_body),
            (c + "/compare", "GET", self.compare),
            (c + "/runs", "GET", self.runs),
            (c + "/documents", "POST", self.add),
            (c + "/documents", "DELETE", self.delete),
        ]

    def base(self, name: str) -> KnowledgeBase:
        return self.library.cached(validate_collection_name(name))

    def health(self) -> dict[str, Any]:
        """Liveness, version and how many collections the home holds."""
        return {"schema_version": JSON_SCHEMA_VERSION, "status": "ok", "version": __version__, "collections": len(self.library.names())}

    def collections(self) -> dict[str, Any]:
        """The names of every collection in the home."""
        return {"schema_version": JSON_SCHEMA_VERSION, "collections": self.library.names()}

    def info(self, name: str) -> dict[str, Any]:
        """What `layerwise info` shows: model, counts, bytes, views, default view."""
        return _redacted(self.base(name).info())

    def views(self, name: str) -> dict[str, Any]:
        """Every layer view and stored view, and the default view."""
        kb = self.base(name)
        return {"schema_version": JSON_SCHEMA_VERSION, "collection": kb.name, "default_view": kb.default_view, "views": kb.views()}

    def search(
        self,
        name: str,
        q: Annotated[str, Query(description="The query text.")],
        view: Annotated[list[str] | None, Query(description="View specs (repeatable): -1, all, mean(-4:), bm25, rrf(bm25 | -1), a stored name.")] = None,
        k: Annotated[int, Query(description="Documents per view (at most 1000).")] = 10,
    ) -> JSONResponse:
        """Top-k documents of every view the specs name, one query encoding for all (default: the default view)."""
        self._check(q, view)
        return RustJSON(self.base(name).search_views(q, view or None, k).to_dict())  # no jsonable_encoder walk over every hit

    def search_body(self, name: str, request: Annotated[SearchRequest, Body()]) -> JSONResponse:
        """The same search with a JSON body, for long queries or many views."""
        return self.search(name, request.query, request.views, request.k)

    def compare(
        self,
        name: str,
        q: Annotated[str, Query(description="The query text.")],
        view: Annotated[list[str] | None, Query(description="View specs (repeatable; default: all layers).")] = None,
        k: Annotated[int, Query(description="Documents per view (at most 1000).")] = 10,
    ) -> JSONResponse:
        """Top-k of several views side by side and the Jaccard@k matrix of every pair."""
        self._check(q, view)
        return RustJSON(self.base(name).compare(q, view or "all", k).to_dict())

    def runs(self, name: str) -> dict[str, Any]:
        """Stored evaluation runs, newest first."""
        kb = self.base(name)
        return {"schema_version": JSON_SCHEMA_VERSION, "collection": kb.name, "runs": kb.runs()}

    def add(self, name: str, request: Annotated[AddRequest, Body()]) -> dict[str, Any]:
        """Index documents (new and changed ones are encoded); with create, make the collection first."""
        docs = request.documents
        if len(docs) > self.limits.max_documents:
            raise UsageError(f"{len(docs)} documents in one request; this server takes at most {self.limits.max_documents}: split them")
        validate_collection_name(name)
        kb = self.library.open(name, create=request.create) if request.create else self.base(name)
        report = kb.add([d.text for d in docs], ids=[d.id for d in docs], titles=[d.title or "" for d in docs],
                        metadata=[d.metadata for d in docs])
        return report.to_dict()

    def delete(self, name: str, request: Annotated[DeleteRequest, Body()]) -> dict[str, Any]:
        """Remove documents by id and rebuild the indices from the stored vectors."""
        kb = self.base(name)
        return {"schema_version": JSON_SCHEMA_VERSION, "collection": kb.name, "deleted": kb.delete(request.ids)}

    def _check(self, query: str, views: list[str] | None) -> None:
        if len(query) > self.limits.max_query_chars:
            raise UsageError(f"the query is {len(query):,} characters long; this server takes at most {self.limits.max_query_chars:,}")
        if views and len(views) > self.limits.max_views:
            raise UsageError(f"{len(views)} views in one request; this server takes at most {self.limits.max_views}")


def _redacted(info: dict[str, Any]) -> dict[str, Any]:
    """Info without a database password or the server's folders."""
    from sqlalchemy.engine import make_url

    out = dict(info)
    if out.get("database"):
        try:
            out["database"] = make_url(out["database"]).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - an unparsable URL is shown as its scheme only
            out["database"] = str(out["database"]).split(":", 1)[0]
    out.pop("folder", None)
    return out


def _errors(app: FastAPI) -> None:
    """JSON errors with the CLI's messages and the status of each exception class; never a traceback."""

    @app.exception_handler(LayerwiseError)
    async def layerwise_error(_request: Request, exc: LayerwiseError) -> JSONResponse:
        status = int(getattr(exc, "http_status", 400 if isinstance(exc, UsageError) else 500))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(type(exc).__name__, str(exc)), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("InvalidRequest", _validation_message(exc)), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = f"no such endpoint: {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(error_body("HTTPError", message), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        if isinstance(exc, OSError):
            return JSONResponse(error_body("StorageError", f"{exc.strerror or exc}"), status_code=503)
        return JSONResponse(error_body("InternalError", f"internal error: {type(exc).__name__} (details in the server log)"), status_code=500)


def _validation_message(exc: RequestValidationError) -> str:
    """One line per problem: where it is and what is wrong."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
