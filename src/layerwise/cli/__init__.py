"""The command line: a thin typer app that parses arguments, calls the public API (layerwise.api) and prints
through render.py. Commands live by subject in collections.py, evaluation.py and server.py."""

from __future__ import annotations

import sys

import typer

from layerwise.cli import collections, evaluation, server  # noqa: F401  (registers the commands)
from layerwise.cli.app import app
from layerwise.errors import LayerwiseError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point."""
    try:
        app()
    except LayerwiseError as exc:  # raised outside a command body (e.g. in a callback)
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
