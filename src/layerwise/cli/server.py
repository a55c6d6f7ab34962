"""The serve command: the HTTP API and the comparison page."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from layerwise.cli.app import DbOpt, DeviceOpt, DtypeOpt, HomeOpt, app, handled
from layerwise.errors import UsageError


@app.command()
@handled
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    token: Annotated[Optional[str], typer.Option(envvar="LAYERWISE_TOKEN", show_envvar=True,
                                                 help="Require 'Authorization: Bearer TOKEN' on every API request (prefer the environment variable).")] = None,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body accepted, in MB.")] = 16,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    db: DbOpt = None,
    home: HomeOpt = None,
) -> None:
    """Serve the home's collections: the JSON API under /api (OpenAPI at /docs) and the comparison page at /."""
    from layerwise.server.run import serve as run_server
    from layerwise.server.security import Limits

    if not 0 < port < 65536:
        raise UsageError(f"--port {port} is not a TCP port: use 1..65535")
    if max_body_mb <= 0:
        raise UsageError(f"--max-body-mb {max_body_mb} must be positive")
    run_server(home, db, host=host, port=port, token=token or None, device=device, dtype=dtype,
               limits=Limits(max_body_bytes=int(max_body_mb * 1024 * 1024)))
