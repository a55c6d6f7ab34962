"""A one-shot CLI search forwarded to a running `layerwise serve` of the same home: the same hits as a
search in the CLI's own process, and a local search whenever the server cannot answer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerwise.api import KnowledgeBase
from layerwise.cli import app
from layerwise.server import running
from tests.integration.serving import home_copy

runner = CliRunner()


@pytest.fixture(scope="module")
def home(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the sample home with a real server process running on it (announced once warm)."""
    home = home_copy(sample_home, tmp_path_factory.mktemp("forward") / "home")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "layerwise", "serve", "--home", str(home), "--port", str(port)],
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while running.read(home) is None:
        assert server.poll() is None and time.monotonic() < deadline, f"the server did not announce itself: {server.stderr.read() if server.poll() is not None else 'timeout'}"
        time.sleep(0.1)
    yield home
    server.terminate()
    server.wait(timeout=60)
    assert not (home / running.ADDRESS_FILE).exists(), "a stopped server left its address file behind"


def _search(home: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["search", "sample", "rotate logs", "--view", "all", "-k", "5", "--json", "--home", str(home), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _refuse_local_search(monkeypatch: pytest.MonkeyPatch) -> None:
    def local(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("searched in the CLI's process")

    monkeypatch.setattr(KnowledgeBase, "search_views", local)


def test_the_server_answers_with_the_hits_of_a_local_search(home: Path, monkeypatch: pytest.MonkeyPatch):
    local = _search(home, "--local")
    _refuse_local_search(monkeypatch)
    forwarded = _search(home)
    assert [r["view"] for r in forwarded["results"]] == [r["view"] for r in local["results"]]
    for mine, theirs in zip(forwarded["results"], local["results"]):
        assert [h["doc_id"] for h in mine["hits"]] == [h["doc_id"] for h in theirs["hits"]]
        assert [h["score"] for h in mine["hits"]] == pytest.approx([h["score"] for h in theirs["hits"]], abs=1e-5)
    assert {k: v for k, v in forwarded.items() if k != "results"} == {k: v for k, v in local.items() if k != "results"}


def test_the_table_of_a_forwarded_search_names_the_views(home: Path, monkeypatch: pytest.MonkeyPatch):
    _refuse_local_search(monkeypatch)
    result = runner.invoke(app, ["search", "sample", "rotate logs", "--view", "-1", "--home", str(home)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "layer6" in result.output


def test_local_searches_in_the_cli_process(home: Path, monkeypatch: pytest.MonkeyPatch):
    _refuse_local_search(monkeypatch)
    result = runner.invoke(app, ["search", "sample", "rotate logs", "--json", "--home", str(home), "--local"])
    assert result.exit_code != 0
    assert "AssertionError" in result.output


def test_a_refused_search_gets_the_cli_own_message_and_exit_code(home: Path):
    result = runner.invoke(app, ["search", "sample", "rotate logs", "-k", "0", "--home", str(home)])
    assert result.exit_code == 2
    assert "-k 0 is out of range" in result.output


def test_another_database_is_not_forwarded(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _refuse_local_search(monkeypatch)
    result = runner.invoke(app, ["search", "sample", "rotate logs", "--home", str(home), "--db", str(tmp_path / "other.db")])
    assert result.exit_code != 0  # searched locally: that database has no such collection
    assert "sample" in result.output
