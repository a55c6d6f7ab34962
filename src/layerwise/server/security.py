"""Sane defaults for a server that holds someone's documents.

* It binds 127.0.0.1 unless told otherwise, and refuses any other address
  without a token: a knowledge base open to the network with no credential is
  not a state one gets into by accident.
* With a token (``--token`` or ``LAYERWISE_TOKEN``) every API request needs
  ``Authorization: Bearer TOKEN``; tokens are compared in constant time.
* Limits bound what one request can ask for: the query's length, the number of
  views, the documents in one upload and the size of a request body, which is
  counted as it streams in, so a missing or false Content-Length does not help.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from layerwise.errors import UsageError
from layerwise.types import JSON_SCHEMA_VERSION

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_query_chars: int = 2_000
    max_views: int = 64
    max_documents: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses; names are not resolved (no DNS traffic)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise UsageError(
            f"refusing to serve on {host} without a token: anyone who can reach it could read and change the "
            "collections. Set LAYERWISE_TOKEN (or --token) to a long random secret, or bind 127.0.0.1"
        )


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries exactly this bearer token."""
    if not header or not header.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


class BodyLimit:
    """ASGI middleware that answers 413 once a request body exceeds ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:  # read the whole body first, counting, then replay it to the app
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is larger than this server's limit of {self.limit:,} bytes: send fewer documents per request"
        body = json.dumps(error_body("PayloadTooLarge", message)).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def error_body(kind: str, message: str) -> dict[str, Any]:
    """The JSON every error response carries."""
    return {"schema_version": JSON_SCHEMA_VERSION, "error": {"type": kind, "message": message}}
