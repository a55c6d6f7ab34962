"""The typer app and what every command shares: options, the error boundary, the library.

Errors become one line and an exit code at one place (``handled``): usage errors
exit 2, a damaged or busy store 1. ``--json`` output follows docs/json.md.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar

import click
import typer

from layerwise import render
from layerwise.errors import LayerwiseError, UsageError
from layerwise.settings import DEVICES, DTYPES, POOLINGS, QUANTIZATIONS

app = typer.Typer(
    help="Semantic search that keeps every layer of a BERT-family encoder.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
F = TypeVar("F", bound=Callable[..., Any])
INDEX_TYPES = ("flat", "hnsw", "ivf", "ivfpq", "auto")

DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL or SQLite path (default: $LAYERWISE_DB, else HOME/layerwise.db).")]
HomeOpt = Annotated[Optional[Path], typer.Option("--home", help="Data folder (default: $LAYERWISE_HOME, else ~/.local/share/layerwise).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (docs/json.md).")]
CollectionArg = Annotated[str, typer.Argument(help="Collection name.")]
QueryArg = Annotated[str, typer.Argument(help="What to look for.")]
KOpt = Annotated[int, typer.Option("-k", help="Documents per view (1..1000).")]
ViewOpt = Annotated[Optional[str], typer.Option("--view", "-v", help="View spec: -1, all, -4:, mean(-4:), bm25, rrf(bm25 | -1), fuse(bm25:0.3 | -1:0.7) or a stored name (default: the collection's default view).")]
LayerAlias = Annotated[Optional[str], typer.Option("--layer", "-l", hidden=True)]
DeviceOpt = Annotated[Literal[DEVICES], typer.Option("--device", help="Where the encoder runs.")]
DtypeOpt = Annotated[Literal[DTYPES], typer.Option("--dtype", help="auto: fp32 on CPU, bf16/fp16 on CUDA; bf16 on a CPU with AMX is ~3x faster.")]
QuantOpt = Annotated[Optional[Literal[QUANTIZATIONS]], typer.Option("--quantize", help="int8: dynamic int8 Linear layers on the CPU (opt-in; changes vectors).")]
PoolingOpt = Annotated[Optional[Literal[POOLINGS]], typer.Option("--pooling", help="How tokens pool into one vector, mask-aware (default: the collection's, else mean).")]
IndexOpt = Annotated[Optional[Literal[INDEX_TYPES]], typer.Option("--index", help="flat, hnsw, ivf, ivfpq or auto (exact below 50k passages, IVF-PQ above).")]


def _version(value: bool) -> None:
    if value:
        from layerwise import __version__

        typer.echo(f"layerwise {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Semantic search that keeps every layer of a BERT-family encoder."""


def handled(func: F) -> F:
    """Turn layerwise errors into one clear line and their exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LayerwiseError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted: committed batches are kept; run the same command again to resume", 130)
        except (typer.Exit, typer.Abort, SystemExit, click.exceptions.ClickException):
            raise
        except OSError as exc:  # disk full, read-only folder, missing permission
            fail(render.os_error(exc), 1)
        except Exception as exc:  # an internal failure: one line, the traceback on demand
            if os.environ.get("LAYERWISE_DEBUG"):
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (set LAYERWISE_DEBUG=1 for the traceback)", 1)

    return wrapper  # type: ignore[return-value]


def fail(message: str, code: int) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def progress() -> bool:
    """Progress bars go to stderr, and only to a terminal."""
    return sys.stderr.isatty()


def open_library(db: str | None, home: Path | None, device: str = "auto", dtype: str = "auto"):  # noqa: ANN202
    from layerwise.api import Library

    return Library(home, db, device=device, dtype=dtype)


def forward_search(db: str | None, home: Path | None, collection: str, query: str, view: str | None, k: int) -> dict[str, Any] | None:
    """A running server's answer to a search in this home and database, or None (search here)."""
    from layerwise.server import running
    from layerwise.storage import location

    folder = location.home_dir(home)
    return running.forward_search(folder, location.database_url(db, folder), collection, query, view, k)


def pick(view: str | None, alias: str | None) -> str | None:
    if view is not None and alias is not None and view != alias:
        raise UsageError("give the view once: --view (--layer is its old spelling)")
    return view if view is not None else alias


