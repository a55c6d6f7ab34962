"""The address file of a running server, and when a CLI search is (not) forwarded to it."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from layerwise.server import running

URL = "sqlite:////somewhere/layerwise.db"


def _address(pid: int = os.getpid(), port: int = 9, token: bool = False, url: str = URL) -> running.Address:
    return running.Address(pid, "127.0.0.1", port, token, running.database_digest(url))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_published_address_is_found_for_its_home_and_database_only(tmp_path: Path):
    running.publish(tmp_path, _address())
    assert stat.S_IMODE((tmp_path / running.ADDRESS_FILE).stat().st_mode) == 0o600
    assert running.find(tmp_path, URL) == _address()
    assert running.find(tmp_path, "postgresql://db/other") is None
    assert "somewhere" not in (tmp_path / running.ADDRESS_FILE).read_text()  # a digest, not the URL


@pytest.mark.parametrize("content", [None, "", "{not json", '{"pid": 1}', "[]"])
def test_a_missing_or_damaged_file_names_no_server(tmp_path: Path, content: str | None):
    if content is not None:
        (tmp_path / running.ADDRESS_FILE).write_text(content)
    assert running.find(tmp_path, URL) is None


def test_the_file_of_a_dead_server_names_no_server(tmp_path: Path):
    running.publish(tmp_path, _address(pid=_dead_pid()))
    assert running.find(tmp_path, URL) is None


def test_withdraw_removes_only_its_own_file(tmp_path: Path):
    running.publish(tmp_path, _address())
    running.withdraw(tmp_path, os.getpid() + 1)
    assert running.read(tmp_path) is not None
    running.withdraw(tmp_path, os.getpid())
    assert running.read(tmp_path) is None


def test_a_refused_connection_means_a_local_search(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    running.publish(tmp_path, _address(port=port))
    assert running.forward_search(tmp_path, URL, "c", "q", None, 10) is None


def test_a_server_that_needs_a_token_is_not_asked_without_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LAYERWISE_TOKEN", raising=False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        running.publish(tmp_path, _address(port=listener.getsockname()[1], token=True))
        assert running.forward_search(tmp_path, URL, "c", "q", None, 10) is None
        with pytest.raises(socket.timeout):
            listener.accept()  # no connection was even tried


@pytest.mark.parametrize(("host", "expected"), [("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("[::1]", "::1"), ("10.1.2.3", "10.1.2.3")])
def test_a_wildcard_binding_is_reached_on_loopback(host: str, expected: str):
    assert running.Address(1, host, 1, False, "").connect_host() == expected
