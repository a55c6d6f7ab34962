"""The same collection workflow on SQLite and on a real PostgreSQL server started on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerwise.cli import app
from tests.results import by_view

from tests.integration import postgres

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample"
runner = CliRunner()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request, tmp_path_factory):
    """(db url, home) with the sample indexed as 'notes'."""
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    if request.param == "sqlite":
        yield _indexed(f"sqlite:///{home / 'meta.db'}", home)
        return
    if postgres.binaries() is None:
        pytest.skip("PostgreSQL is not installed (make test installs it)")
    with postgres.server() as url:
        yield _indexed(url, home)


def _indexed(url: str, home: Path) -> tuple[str, Path]:
    result = runner.invoke(app, ["index", str(SAMPLE / "docs"), "-c", "notes", "--db", url, "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 38
    return url, home


def cli(backend, *args):
    url, home = backend
    return runner.invoke(app, [*args, "--db", url, "--home", str(home)])


def test_search_every_layer(backend):
    result = cli(backend, "search", "notes", "how do I rotate the logs", "--layer", "all", "-k", "3", "--json")
    views = by_view(json.loads(result.stdout))
    assert len(views) == 7 and views["layer6"][0]["doc_id"] == "ops/log-rotation.md"


def test_info_and_check(backend):
    info = json.loads(cli(backend, "info", "notes", "--json").stdout)
    assert info["documents"] == 38 and info["database"].split(":")[0] == backend[0].split(":")[0]
    assert cli(backend, "check", "notes").exit_code == 0


def test_reindex_is_incremental_and_delete_keeps_views_consistent(backend):
    again = json.loads(cli(backend, "index", str(SAMPLE / "docs"), "-c", "notes", "--json").stdout)
    assert (again["added"], again["unchanged"]) == (0, 38)
    assert cli(backend, "mix", "notes", "last2", "mean(-2:)").exit_code == 0
    assert cli(backend, "delete", "notes", "ops/cron.md").exit_code == 0
    assert json.loads(cli(backend, "check", "notes", "--json").stdout)["ok"]
    hits = by_view(json.loads(cli(backend, "search", "notes", "cron", "--layer", "last2", "--json").stdout))["last2"]
    assert "ops/cron.md" not in [h["doc_id"] for h in hits]


def test_evaluate_and_saved_run(backend):
    result = cli(backend, "evaluate", "notes", "--queries", str(SAMPLE / "queries.jsonl"), "--qrels", str(SAMPLE / "qrels.tsv"),
                 "--view", "all", "--view", "mean(-4:)", "--trials", "200", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["run_id"] >= 1 and len(data["views"]) == 8


def test_bm25_where_the_database_has_it(backend):
    result = cli(backend, "search", "notes", "logrotate", "--layer", "bm25", "--json")
    if backend[0].startswith("sqlite"):
        assert by_view(json.loads(result.stdout))["bm25"][0]["doc_id"] == "ops/log-rotation.md"
    else:
        assert result.exit_code == 2 and "BM25 needs the SQLite metadata store" in result.stderr
