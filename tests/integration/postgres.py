"""A throwaway PostgreSQL server on loopback for the tests: initdb in a temp folder, start, stop."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def binaries() -> str | None:
    """The folder holding initdb and pg_ctl, or None."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return os.path.dirname(os.path.realpath(found))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the 'postgres' user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def server() -> Iterator[str]:
    """Start a server on 127.0.0.1 and yield its SQLAlchemy URL; stop and delete it afterwards."""
    folder = binaries()
    if folder is None:
        raise RuntimeError("PostgreSQL is not installed: `make test` installs Debian's postgresql")
    root = tempfile.mkdtemp(prefix="layerwise-pg-", dir="/tmp")
    os.chmod(root, 0o755)
    data = os.path.join(root, "data")
    os.mkdir(data)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = _free_port()
    run = lambda *args: subprocess.run(_as_server_user(list(args)), check=True, capture_output=True)  # noqa: E731
    run(f"{folder}/initdb", "-D", data, "-A", "trust", "-U", "layerwise", "-E", "UTF8")
    run(f"{folder}/pg_ctl", "-D", data, "-w", "-l", os.path.join(root, "log"), "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql+psycopg://layerwise@127.0.0.1:{port}/postgres"
    finally:
        run(f"{folder}/pg_ctl", "-D", data, "-w", "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)
